// Federated queries (DESIGN §6): the request a user sends its own manager, the body a peer
// sends over the channel, the rows each resource shows (never a secret), and how the answers
// of several sources merge. Pure: parsing, projection and merging; no I/O.
import { z } from 'zod';
import type { Service } from '../fdl/service.ts';
import { MAX_ROWS_LIMIT, RESOURCES, type Resource } from './scope.ts';

export const QUERY_VERBS = ['list', 'get', 'search'] as const;
export type QueryVerb = (typeof QUERY_VERBS)[number];
/** What search ranks: text a user wrote (service names and images, bucket names, job logs). */
export const SEARCHABLE: readonly Resource[] = ['services', 'logs', 'buckets'];
export const MAX_QUERY_TEXT = 500;
/** Rows a local answer holds at most per page (a peer's own cap is its grant's). */
export const DEFAULT_QUERY_LIMIT = 100;

// Letters, digits and the few separators names, job ids and bucket names use: no "/", "..",
// NUL or control characters, so an id is never a path.
const idSchema = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[A-Za-z0-9][-A-Za-z0-9_.:@]*$/, 'a name or id of letters, digits, "-", "_", ".", ":" or "@"');
const textSchema = z
  .string()
  .min(1)
  .max(MAX_QUERY_TEXT)
  .regex(/^[^\u0000-\u001f\u007f]*$/u, 'text without control characters');
const cursorSchema = z
  .string()
  .min(1)
  .max(8192)
  .regex(/^[A-Za-z0-9_.-]+$/, 'an opaque cursor');
const sourceSchema = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/, '"local", "all" or a peer name');

/** POST /system/federation/query. */
export const federationQuerySchema = z
  .strictObject({
    verb: z.enum(QUERY_VERBS),
    resource: z.enum(RESOURCES).optional(),
    id: idSchema.optional(),
    q: textSchema.optional(),
    source: sourceSchema.default('local'),
    cursor: cursorSchema.optional(),
    limit: z.number().int().min(1).max(MAX_ROWS_LIMIT).optional(),
  })
  .superRefine((b, ctx) => {
    if (b.verb !== 'search' && !b.resource)
      ctx.addIssue({ code: 'custom', path: ['resource'], message: `is required for ${b.verb}` });
    if (b.verb === 'search' && b.resource && !SEARCHABLE.includes(b.resource))
      ctx.addIssue({ code: 'custom', path: ['resource'], message: `search covers ${SEARCHABLE.join(', ')}` });
    if (b.verb === 'get' && !b.id)
      ctx.addIssue({ code: 'custom', path: ['id'], message: 'is required for get' });
    if (b.verb !== 'get' && b.id) ctx.addIssue({ code: 'custom', path: ['id'], message: 'is only for get' });
    if (b.verb === 'search' && !b.q)
      ctx.addIssue({ code: 'custom', path: ['q'], message: 'is required for search' });
    if (b.verb !== 'search' && b.q)
      ctx.addIssue({ code: 'custom', path: ['q'], message: 'is only for search' });
    if (b.verb === 'get' && b.cursor)
      ctx.addIssue({ code: 'custom', path: ['cursor'], message: 'get answers one page' });
  });

export type FederationQuery = z.infer<typeof federationQuerySchema>;

/** The body of a search over the peer channel (list bodies are read by the peer guard). */
export const peerSearchSchema = z.object({
  q: textSchema,
  resources: z.array(z.enum(RESOURCES)).max(RESOURCES.length).optional(),
  cursor: cursorSchema.optional(),
  limit: z.number().int().min(1).optional(),
  filter: z.unknown().optional(),
});

export const peerCursorSchema = z.object({ cursor: cursorSchema.optional() }).loose();
export const idParamSchema = idSchema;

/** "field: problem" for the first issues of a zod error (a 400 that names the field). */
export const describeIssues = (issues: z.core.$ZodIssue[]): string =>
  issues
    .slice(0, 5)
    .map((i) => {
      const keys = (i as { keys?: string[] }).keys;
      const path = i.path.map(String).join('.') || 'body';
      return keys?.length
        ? `${path}: unknown key ${keys.map((k) => `"${k}"`).join(', ')}`
        : `${path}: ${i.message}`;
    })
    .join('; ');

// ------------------------------------------------------------------ rows (never a secret)

/** A service in a list: who owns it, how it is shared and what it asks for. */
export const serviceRow = (s: Service) => ({
  name: s.name,
  owner: s.owner,
  visibility: s.visibility ?? 'private',
  image: s.image ?? null,
  cpu: s.cpu,
  memory: s.memory,
  group_id: s.federation?.group_id ?? null,
});

/** A service in a get: the definition with every secret masked and no token, deployment or
 * cluster credentials (the answer leaves the cluster). `redacted` is redactService's copy. */
export const serviceDetail = (redacted: Service) => {
  const {
    token: _t,
    deployment: _d,
    clusters: _c,
    federation,
    ...rest
  } = redacted as Service & {
    deployment?: unknown;
  };
  // Of the federation block only what names it: its members' endpoints and credentials stay.
  const f = federation as { group_id?: string; topology?: string } | undefined;
  return {
    ...rest,
    group_id: f?.group_id ?? null,
    ...(f ? { federation: { group_id: f.group_id ?? null, topology: f.topology ?? null } } : {}),
  };
};

export interface JobFacts {
  id: string;
  service: string;
  status: string;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  exitCode: number | null;
  delegatedTo: string | null;
}

export const jobRow = (j: JobFacts) => ({
  id: j.id,
  service: j.service,
  status: j.status,
  creation_time: j.createdAt.toISOString(),
  start_time: j.startedAt?.toISOString() ?? null,
  finish_time: j.finishedAt?.toISOString() ?? null,
  exit_code: j.exitCode,
  delegated_to: j.delegatedTo,
});

export const logRow = (j: JobFacts) => ({
  id: j.id,
  service: j.service,
  status: j.status,
  finish_time: j.finishedAt?.toISOString() ?? null,
});

// ------------------------------------------------------------------ merging

export type Row = Record<string, unknown>;

export interface SourceAnswer {
  source: string;
  ok: boolean;
  rows?: Row[];
  /** The source's own cursor for its next page, or null when it has no more. */
  next?: string | null;
  cached?: boolean;
}

/**
 * One answer from several sources: rows tagged with `_source` (and `_cached` when a peer's
 * answer came from the cache), search rows ordered by `_rank` across sources, the failing
 * sources in `_partial`, and the sources that have more rows (their cursors) for the next page.
 */
export const mergeAnswers = (
  verb: QueryVerb,
  answers: SourceAnswer[],
): { rows: Row[]; more: Record<string, string>; partial: string[] } => {
  const rows: Row[] = [];
  const more: Record<string, string> = {};
  const partial: string[] = [];
  for (const a of answers) {
    if (!a.ok) {
      partial.push(a.source);
      continue;
    }
    for (const r of a.rows ?? [])
      rows.push({ ...r, _source: a.source, ...(a.cached ? { _cached: true } : {}) });
    if (a.next) more[a.source] = a.next;
  }
  if (verb === 'search')
    rows.sort(
      (x, y) =>
        Number(y._rank ?? 0) - Number(x._rank ?? 0) || String(x._source).localeCompare(String(y._source)),
    );
  return { rows, more, partial: partial.sort() };
};
