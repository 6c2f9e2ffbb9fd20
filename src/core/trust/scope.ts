// The grant scope: what a peer may do here. Closed lists; unknown keys or values are 400
// naming the field; filters can only narrow what the resource list already allows.
import { z } from 'zod';
import { FlotillaError } from '../errors.ts';
import { parseCpuMillis } from '../fdl/quantity.ts';

export const RESOURCES = ['services', 'jobs', 'logs', 'status', 'buckets'] as const;
export const VERBS = ['list', 'get', 'search', 'replicate', 'delegate'] as const;
export type Resource = (typeof RESOURCES)[number];
export type Verb = (typeof VERBS)[number];

export const MAX_ROWS_LIMIT = 10_000;

const groupId = z
  .string()
  .regex(/^[A-Za-z0-9][-A-Za-z0-9_.]{0,62}$/, 'a group id of letters, digits, "-", "_", "."');

const filterSchema = z.strictObject({
  include_groups: z.array(groupId).max(100).optional(),
  include_personal: z.boolean().optional(),
});

const unique = <T>(xs: T[]) => new Set(xs).size === xs.length;

export const scopeSchema = z
  .strictObject({
    resources: z.array(z.enum(RESOURCES)).min(1).refine(unique, 'must not repeat'),
    verbs: z.array(z.enum(VERBS)).min(1).refine(unique, 'must not repeat'),
    excluded_resources: z.array(z.enum(RESOURCES)).refine(unique, 'must not repeat').default([]),
    filters: z
      .strictObject({
        services: filterSchema.optional(),
        jobs: filterSchema.optional(),
        buckets: filterSchema.optional(),
      })
      .default({}),
    max_rows_per_query: z.number().int().min(1).max(MAX_ROWS_LIMIT).default(1000),
    max_cpu: z
      .string()
      .max(16)
      .refine((s) => (parseCpuMillis(s) ?? 0) > 0, 'a positive CPU quantity such as "8" or "500m"')
      .optional(),
    rate_per_minute: z.number().int().min(1).max(100_000).default(600),
  })
  .superRefine((s, ctx) => {
    // A filter on a resource the grant does not give would widen nothing but hides a mistake.
    for (const r of Object.keys(s.filters) as Resource[]) {
      if (s.filters[r as 'services'] && !s.resources.includes(r))
        ctx.addIssue({
          code: 'custom',
          path: ['filters', r],
          message: `filters a resource not in resources`,
        });
    }
  });

export type Scope = z.infer<typeof scopeSchema>;

const describe = (issues: z.core.$ZodIssue[]): string =>
  issues
    .slice(0, 5)
    .map((i) => {
      const path = ['scope', ...i.path.map(String)].join('.');
      const keys = (i as { keys?: string[] }).keys;
      return keys?.length
        ? `${path}: unknown key ${keys.map((k) => `"${k}"`).join(', ')}`
        : `${path}: ${i.message}`;
    })
    .join('; ');

/** Parses a scope; VALIDATION_FAILED (400) naming the first bad fields. */
export const parseScope = (raw: unknown): Scope => {
  const r = scopeSchema.safeParse(raw);
  if (!r.success) throw new FlotillaError('VALIDATION_FAILED', `invalid scope: ${describe(r.error.issues)}`);
  return r.data;
};

export const allowsResource = (s: Scope, r: Resource): boolean =>
  s.resources.includes(r) && !s.excluded_resources.includes(r);

export interface NarrowFilter {
  include_groups?: string[];
  include_personal?: boolean;
}

/** The filter a request runs with: the request may narrow the grant's filter, never widen it. */
export const narrowFilter = (s: Scope, r: Resource, requested: NarrowFilter = {}): NarrowFilter => {
  const granted = (s.filters as Record<string, NarrowFilter | undefined>)[r] ?? {};
  const groups =
    granted.include_groups === undefined
      ? requested.include_groups
      : requested.include_groups === undefined
        ? granted.include_groups
        : requested.include_groups.filter((g) => granted.include_groups!.includes(g));
  const personal =
    granted.include_personal === false ? false : (requested.include_personal ?? granted.include_personal);
  return {
    ...(groups !== undefined ? { include_groups: groups } : {}),
    ...(personal !== undefined ? { include_personal: personal } : {}),
  };
};

/** Rows a query may return: what was asked, capped by the grant. */
export const rowLimit = (s: Scope, requested?: number): number =>
  Math.max(1, Math.min(requested ?? s.max_rows_per_query, s.max_rows_per_query));

/** A replica or delegated job asking for more CPU than the grant allows is refused. */
export const withinCpu = (s: Scope, cpu: string | undefined): boolean => {
  if (!s.max_cpu) return true;
  const want = cpu === undefined ? 0 : parseCpuMillis(cpu);
  return want !== undefined && want <= (parseCpuMillis(s.max_cpu) ?? 0);
};

/** Whether a row passes the effective filter: no filter passes all; otherwise the subject's
 * own rows (include_personal) or rows of a listed group. */
export const passesFilter = (
  f: NarrowFilter,
  row: { owner: string; group?: string },
  subject: string,
): boolean => {
  if (f.include_groups === undefined && f.include_personal === undefined) return true;
  if (f.include_personal === true && row.owner === subject) return true;
  return row.group !== undefined && (f.include_groups ?? []).includes(row.group);
};
