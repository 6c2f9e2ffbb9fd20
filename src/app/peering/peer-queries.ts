// What a peer reads over the channel, after the guard: the rows the grant's subject may see
// here on its own (the same use cases as the user routes), narrowed by the effective filter,
// capped at max_rows_per_query and paged by a signed cursor bound to the grant, the subject
// and the query (a peer cannot edit one into another subject's rows or another query).
import { FlotillaError } from '../../core/errors.ts';
import type { Grant } from '../../core/trust/grant.ts';
import { DENIAL_MESSAGE } from '../../core/trust/peer-guard.ts';
import {
  describeIssues,
  idParamSchema,
  peerSearchSchema,
  type Row,
  SEARCHABLE,
} from '../../core/trust/query.ts';
import {
  allowsResource,
  type NarrowFilter,
  narrowFilter,
  type Resource,
  rowLimit,
} from '../../core/trust/scope.ts';
import { subjectOf } from './peer-federation.ts';
import type { CursorSigner } from './query-cursor.ts';
import type { Position, QueryRows } from './query-rows.ts';

const bindOf = (g: Grant, verb: string, resource: string, extra: unknown) =>
  JSON.stringify([g.id, g.subjectUser, verb, resource, extra]);

const validId = (raw: unknown): string => {
  const r = idParamSchema.safeParse(raw);
  if (!r.success) throw new FlotillaError('VALIDATION_FAILED', `id: ${r.error.issues[0]?.message}`);
  return r.data;
};

export class PeerQueries {
  constructor(
    private readonly rows: QueryRows,
    private readonly cursors: CursorSigner,
  ) {}

  async list(
    g: Grant,
    resource: Resource,
    filter: NarrowFilter,
    limit: number,
    cursor: unknown,
  ): Promise<{ rows: Row[]; next_cursor: string | null }> {
    // The cursor is bound to the effective filter too: a narrower page cannot continue wider.
    const bind = bindOf(g, 'list', resource, filter);
    const after =
      cursor === undefined || cursor === null ? undefined : (this.cursors.open(bind, cursor) as Position);
    const page = await this.rows.list(subjectOf(g), resource, { filter, limit, after });
    return { rows: page.rows, next_cursor: page.next === null ? null : this.cursors.seal(bind, page.next) };
  }

  async get(g: Grant, resource: Resource, rawId: unknown, filter: NarrowFilter): Promise<{ row: Row }> {
    const row = await this.rows.get(subjectOf(g), resource, validId(rawId), filter);
    if (!row) throw new FlotillaError('NOT_FOUND', 'not found');
    return { row };
  }

  /** Search over the searchable resources the grant gives (resources asked for narrow them);
   * each with its own effective filter. None left: the generic 403. */
  async search(g: Grant, body: unknown): Promise<{ rows: Row[]; next_cursor: string | null }> {
    const parsed = peerSearchSchema.safeParse(body ?? {});
    if (!parsed.success) throw new FlotillaError('VALIDATION_FAILED', describeIssues(parsed.error.issues));
    const b = parsed.data;
    const resources = SEARCHABLE.filter(
      (r) =>
        allowsResource(g.scope, r) &&
        g.scope.verbs.includes('search') &&
        (b.resources === undefined || b.resources.includes(r)),
    );
    if (resources.length === 0) throw new FlotillaError('FORBIDDEN', DENIAL_MESSAGE[403]);
    const asked = (b.filter ?? undefined) as NarrowFilter | undefined;
    const limit = rowLimit(g.scope, b.limit);
    const bind = bindOf(g, 'search', resources.join(','), [b.q, asked ?? null]);
    const offset = b.cursor === undefined ? 0 : Number(this.cursors.open(bind, b.cursor));
    if (!Number.isSafeInteger(offset) || offset < 0)
      throw new FlotillaError('VALIDATION_FAILED', 'cursor: not a cursor this manager gave for this query');
    const page = await this.rows.search(
      subjectOf(g),
      b.q,
      resources,
      (r: Resource) => narrowFilter(g.scope, r, asked),
      limit,
      offset,
    );
    return { rows: page.rows, next_cursor: page.next === null ? null : this.cursors.seal(bind, page.next) };
  }
}
