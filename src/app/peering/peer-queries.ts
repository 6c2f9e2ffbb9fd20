// What a peer reads over the channel, after the guard: rows the grant's subject may see on
// its own (OSCAR's visibility rules), narrowed by the effective filter, capped and paged.
import { canUse } from '../../core/auth/principal.ts';
import { FlotillaError } from '../../core/errors.ts';
import type { Service } from '../../core/fdl/service.ts';
import type { Grant } from '../../core/trust/grant.ts';
import { type NarrowFilter, passesFilter } from '../../core/trust/scope.ts';

const encode = (name: string) => Buffer.from(name).toString('base64url');
const decode = (cursor: unknown): string | undefined => {
  if (cursor === undefined || cursor === null) return undefined;
  if (typeof cursor !== 'string' || cursor.length > 400 || !/^[A-Za-z0-9_-]+$/.test(cursor))
    throw new FlotillaError('VALIDATION_FAILED', 'cursor: an opaque cursor from a previous answer');
  return Buffer.from(cursor, 'base64url').toString();
};

export class PeerQueries {
  constructor(private readonly services: { listServices(): Promise<Service[]> }) {}

  async listServices(grant: Grant, filter: NarrowFilter, limit: number, cursor: unknown) {
    const after = decode(cursor);
    const subject = { kind: 'user' as const, sub: grant.subjectUser, issuer: 'peer' };
    const rows = (await this.services.listServices())
      .filter((s) => canUse(subject, s))
      .filter((s) =>
        passesFilter(filter, { owner: s.owner, group: s.federation?.group_id }, grant.subjectUser),
      )
      .sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0))
      .filter((s) => after === undefined || s.name > after);
    const page = rows.slice(0, limit);
    return {
      // A projection: never the definition (secrets, tokens, environment).
      rows: page.map((s) => ({
        name: s.name,
        owner: s.owner,
        visibility: s.visibility ?? 'private',
        cpu: s.cpu,
        memory: s.memory,
        group_id: s.federation?.group_id ?? null,
      })),
      next_cursor: rows.length > limit ? encode(page[page.length - 1].name) : null,
    };
  }
}
