// The OSCAR service model: schema, defaults and normalisation. Unknown fields are kept
// (loose objects) so that a client's FDL round-trips unchanged. Keys and JSON types are
// first read as OSCAR's Go decoder reads them (go-decode.ts), then checked here.
import { z } from 'zod';
import { fail } from '../errors.ts';
import { assertNoHijackVariables } from './environment-policy.ts';
import { goDecode } from './go-decode.ts';
import { formatCpu, parseCpuMillis, parseMemoryBytes } from './quantity.ts';

export const SERVICE_NAME_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const LOG_LEVELS = ['CRITICAL', 'ERROR', 'WARNING', 'INFO', 'DEBUG', 'NOTSET'] as const;
export const VISIBILITIES = ['private', 'public', 'restricted'] as const;
export const DEFAULT_CPU = '0.2';
export const DEFAULT_MEMORY = '256Mi';
export const DEFAULT_LOG_LEVEL = 'INFO';
export const DEFAULT_STORAGE_PROVIDER = 'minio.default';
/**
 * S3 bucket naming: 3-63 characters; dot-separated labels of lowercase letters, digits and
 * "-", each starting and ending with a letter or digit; not an IP address.
 */
export const S3_BUCKET_RE =
  /^(?=.{3,63}$)(?!\d{1,3}(\.\d{1,3}){3}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;

// YAML scalars (numbers, booleans) were turned into strings by yamlAsGo before this point.
const stringMap = z.record(z.string(), z.string());

export const serviceNameSchema = z
  .string()
  .min(1, 'must be 1 to 39 characters')
  .max(39, 'must be 1 to 39 characters')
  .regex(
    SERVICE_NAME_RE,
    'must be a DNS label: lowercase letters, digits and "-", starting and ending with a letter or digit',
  );

export const STORAGE_PROVIDER_KINDS = ['minio', 's3', 'onedata', 'webdav', 'rucio'] as const;

/**
 * OSCAR's reading of a provider reference: the kind before the first "." (any case), the id
 * after it, "default" when there is none (`minio` is `minio.default`).
 */
export const normalizeProviderRef = (ref: string): string => {
  const text = ref.trim();
  const dot = text.indexOf('.');
  const kind = (dot < 0 ? text : text.slice(0, dot)).toLowerCase();
  const id = dot < 0 ? 'default' : text.slice(dot + 1);
  return (STORAGE_PROVIDER_KINDS as readonly string[]).includes(kind) ? `${kind}.${id}` : text;
};

const storageProviderRef = z
  .string()
  .transform(normalizeProviderRef)
  .pipe(
    z
      .string()
      .regex(
        /^(minio|s3|onedata|webdav|rucio)\.[A-Za-z0-9_.-]+$/,
        'must be "<provider>.<id>" ("minio" alone is "minio.default"), e.g. "minio.default"',
      ),
  );

export const storageIoSchema = z.looseObject({
  storage_provider: storageProviderRef.default(DEFAULT_STORAGE_PROVIDER),
  path: z
    .string()
    .min(1, 'is required')
    .refine(
      (p) => S3_BUCKET_RE.test(p.replace(/^\/+/, '').split('/')[0]),
      'must start with a bucket name (3-63 lowercase letters, digits, "." or "-"; dot-separated parts start and end with a letter or digit), e.g. "mybucket/in"',
    ),
  prefix: z.array(z.string()).optional(),
  suffix: z.array(z.string()).optional(),
});

export const clusterSchema = z.looseObject({
  endpoint: z.string().url('must be a URL'),
  auth_user: z.string().optional(),
  auth_password: z.string().optional(),
  ssl_verify: z.boolean().optional(),
});

const CPU_MESSAGE = 'must be a positive number of cores ("0.5") or millicores ("500m")';
const MEMORY_MESSAGE = 'must be a positive quantity such as "256Mi" or "1Gi"';

const cpuSchema = z
  .string(CPU_MESSAGE)
  .refine((v) => {
    const m = parseCpuMillis(v);
    return m !== undefined && m > 0;
  }, CPU_MESSAGE)
  .transform((v) => formatCpu(parseCpuMillis(v)!));

const memorySchema = z
  .string(MEMORY_MESSAGE)
  .refine((v) => {
    const b = parseMemoryBytes(v);
    return b !== undefined && b > 0;
  }, MEMORY_MESSAGE)
  .transform((v) => v.trim());

export const replicaSchema = z.looseObject({
  type: z.enum(['oscar', 'endpoint'], 'must be "oscar" or "endpoint"').default('oscar'),
  cluster_id: z.string().optional(),
  service_name: z.string().optional(),
  url: z.string().optional(),
  ssl_verify: z.boolean().optional(),
  priority: z.number().int('must be an integer').min(0, 'must be 0 or more').optional(),
  headers: z.record(z.string(), z.string()).optional(),
  get members() {
    return z.array(replicaSchema).optional();
  },
});

export const federationSchema = z.looseObject({
  group_id: z.string().optional(),
  topology: z.string().optional(),
  delegation: z.string().optional(),
  rescheduler_threshold: z.number().int().min(0).optional(),
  deployment: z.string().optional(),
  members: z.array(replicaSchema).optional(),
  revision: z.number().int().min(0).optional(),
});

/** Fields the client sends. token and owner are the server's and are overwritten. */
export const serviceInputSchema = z.looseObject({
  name: serviceNameSchema,
  cluster_id: z.string().optional(),
  // Required, as OSCAR's `binding:"required"` (an empty string counts as missing).
  image: z.string().min(1, 'is required'),
  script: z.string().min(1, 'is required'),
  cpu: cpuSchema.optional(),
  memory: memorySchema.optional(),
  log_level: z
    .string()
    .transform((v) => v.toUpperCase())
    .pipe(z.enum(LOG_LEVELS, `must be one of ${LOG_LEVELS.join(', ')}`))
    .optional(),
  input: z.array(storageIoSchema).optional(),
  output: z.array(storageIoSchema).optional(),
  storage_providers: z.record(z.string(), z.record(z.string(), z.looseObject({}))).optional(),
  clusters: z.record(z.string(), clusterSchema).optional(),
  environment: z
    .looseObject({
      variables: stringMap.optional(),
      secrets: stringMap.optional(),
    })
    .optional(),
  annotations: stringMap.optional(),
  labels: stringMap.optional(),
  vo: z.string().optional(),
  visibility: z.enum(VISIBILITIES, `must be one of ${VISIBILITIES.join(', ')}`).optional(),
  allowed_users: z.array(z.string()).optional(),
  isolation_level: z.string().optional(),
  timeout: z.number().int('must be an integer').positive('must be positive').optional(),
  federation: federationSchema.optional(),
  token: z.string().optional(),
  owner: z.string().optional(),
});

export type ServiceInput = z.infer<typeof serviceInputSchema>;
export type StorageIO = z.infer<typeof storageIoSchema>;
export type Replica = z.infer<typeof replicaSchema>;
export type Federation = z.infer<typeof federationSchema>;
export type ClusterRef = z.infer<typeof clusterSchema>;

/** A stored service: the input with defaults applied and the server's fields set. */
/** For the stored type only: services stored before `image` was required have none. */
const storedServiceSchema = serviceInputSchema.extend({ image: z.string().optional() });

export type Service = z.infer<typeof storedServiceSchema> & {
  cpu: string;
  memory: string;
  log_level: string;
  visibility: (typeof VISIBILITIES)[number];
  token: string;
  owner: string;
  environment: { variables: Record<string, string>; secrets: Record<string, string> };
};

/** "a.b[2].c" from a zod path, so a message names the field at fault. */
export const formatPath = (path: readonly PropertyKey[]): string =>
  path.reduce<string>((acc, key) => {
    if (typeof key === 'number') return `${acc}[${key}]`;
    return acc ? `${acc}.${String(key)}` : String(key);
  }, '');

/** Turns zod issues into one readable sentence naming every field at fault. */
export const describeIssues = (error: z.ZodError): string =>
  error.issues
    .slice(0, 5)
    .map((i) => {
      const where = formatPath(i.path);
      const msg = i.code === 'invalid_type' && i.input === undefined ? 'is required' : i.message;
      return where ? `${where}: ${msg}` : msg;
    })
    .join('; ');

/** Deeper definitions are refused: OSCAR's model nests a few levels (a federation tree 8). */
export const MAX_DEFINITION_DEPTH = 64;

// NUL characters and lone UTF-16 surrogates cannot be stored (PostgreSQL jsonb refuses them)
// and are never meaningful in a service definition.
const UNSTORABLE_TEXT = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

const kindOf = (v: unknown): string =>
  v === undefined ? 'an empty body' : v === null ? 'null' : Array.isArray(v) ? 'an array' : `a ${typeof v}`;

/** Any character UNSTORABLE_TEXT could match: most strings are ruled out by this cheap test. */
const MAYBE_UNSTORABLE = /[\u0000\ud800-\udfff]/;
const unstorable = (text: string): boolean => MAYBE_UNSTORABLE.test(text) && UNSTORABLE_TEXT.test(text);

/** A node of the walk: its parent link makes the path, built only for an error. */
interface Visit {
  node: unknown;
  key: PropertyKey | undefined;
  parent: Visit | undefined;
  depth: number;
}

const pathOf = (v: Visit | undefined): PropertyKey[] => {
  const out: PropertyKey[] = [];
  for (let at = v; at?.key !== undefined; at = at.parent) out.push(at.key);
  return out.reverse();
};

// A function of the visit, not a closure made at every node (made only for an error).
const whereOf = (v: Visit): string => formatPath(pathOf(v)) || 'service definition';

/**
 * Refuses what no schema can: nesting beyond MAX_DEFINITION_DEPTH and unstorable text, naming
 * where. Linear in the definition's size (a worker of a mesh lists every member: it runs once
 * per member per change, so no per-node path copies).
 */
export const checkStorable = (raw: unknown): void => {
  const stack: Visit[] = [{ node: raw, key: undefined, parent: undefined, depth: 0 }];
  while (stack.length > 0) {
    const visit = stack.pop()!;
    const { node } = visit;
    if (typeof node === 'string') {
      if (unstorable(node)) {
        fail(
          'VALIDATION_FAILED',
          `invalid service: ${whereOf(visit)}: must not contain NUL characters or invalid Unicode`,
          {
            fields: [formatPath(pathOf(visit))],
          },
        );
      }
      continue;
    }
    if (node === null || typeof node !== 'object') continue;
    if (visit.depth >= MAX_DEFINITION_DEPTH) {
      const field = formatPath(pathOf(visit).slice(0, 4));
      fail(
        'VALIDATION_FAILED',
        `invalid service: ${field}…: nested more than ${MAX_DEFINITION_DEPTH} levels deep`,
        {
          fields: [field],
        },
      );
    }
    const isArray = Array.isArray(node);
    for (const k in node) {
      if (!Object.hasOwn(node, k)) continue;
      if (!isArray && unstorable(k)) {
        fail(
          'VALIDATION_FAILED',
          `invalid service: ${whereOf(visit)}: a key contains NUL characters or invalid Unicode`,
          {
            fields: [formatPath(pathOf(visit))],
          },
        );
      }
      const child = (node as Record<string, unknown>)[k];
      // Leaves that cannot hold text need no visit.
      if (child === null || (typeof child !== 'object' && typeof child !== 'string')) continue;
      stack.push({ node: child, key: isArray ? Number(k) : k, parent: visit, depth: visit.depth + 1 });
    }
  }
};

/** Fields where an empty string means "the default" (OSCAR fills them in). */
const DEFAULTED_WHEN_EMPTY = ['cpu', 'memory', 'log_level', 'visibility', 'cluster_id'] as const;

/**
 * oscar-cli marshals OSCAR's whole Go struct, so fields it was not given arrive as zero values
 * ("" for cpu, memory, log_level, visibility, an input's storage_provider): OSCAR reads them as
 * not set, and so does Flotilla.
 */
const withoutGoZeroValues = (value: unknown): unknown => {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const out = { ...(value as Record<string, unknown>) };
  for (const k of DEFAULTED_WHEN_EMPTY) if (out[k] === '') delete out[k];
  for (const k of ['input', 'output'] as const) {
    if (!Array.isArray(out[k])) continue;
    out[k] = (out[k] as unknown[]).map((io) => {
      if (io === null || typeof io !== 'object' || (io as Record<string, unknown>).storage_provider !== '')
        return io;
      const { storage_provider: _empty, ...rest } = io as Record<string, unknown>;
      return rest;
    });
  }
  return out;
};

/** Validates a client's service definition; throws VALIDATION_FAILED naming the field. */
export const parseServiceInput = (raw: unknown): ServiceInput => {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    fail('VALIDATION_FAILED', `service definition must be a JSON object, got ${kindOf(raw)}`);
  }
  checkStorable(raw);
  // Keys and JSON types as OSCAR's Go decoder reads them: a wrong type is a 400 naming it.
  const decoded = goDecode(raw);
  if (decoded.issues.length > 0) {
    const code = decoded.issues[0].path === 'name' ? 'INVALID_NAME' : 'VALIDATION_FAILED';
    const text = decoded.issues
      .slice(0, 5)
      .map((i) => `${i.path}: ${i.message}`)
      .join('; ');
    fail(code, `invalid service: ${text}`, { fields: decoded.issues.map((i) => i.path) });
  }
  // reportInput: a wrong type is told apart from a missing field ("is required").
  const result = serviceInputSchema.safeParse(withoutGoZeroValues(decoded.value), { reportInput: true });
  if (!result.success) {
    const first = result.error.issues[0];
    const code = first && first.path[0] === 'name' ? 'INVALID_NAME' : 'VALIDATION_FAILED';
    fail(code, `invalid service: ${describeIssues(result.error)}`, {
      fields: result.error.issues.map((i) => formatPath(i.path)),
    });
  }
  assertNoHijackVariables((result.data as ServiceInput).environment);
  return result.data as ServiceInput;
};

/** The label OSCAR puts on every service (and its jobs): `oscar_service: <name>`. */
export const SERVICE_LABEL = 'oscar_service';

/**
 * Defaults that OSCAR applies on create (cpu 0.2, memory 256Mi, log_level INFO, private, the
 * `oscar_service` label; OSCAR's test suite finds services by it).
 */
export const applyDefaults = (input: ServiceInput, server: { token: string; owner: string }): Service => ({
  ...input,
  labels: { ...(input.labels ?? {}), [SERVICE_LABEL]: input.name },
  cpu: input.cpu ?? DEFAULT_CPU,
  memory: input.memory ?? DEFAULT_MEMORY,
  log_level: input.log_level ?? DEFAULT_LOG_LEVEL,
  visibility: input.visibility ?? 'private',
  environment: {
    ...(input.environment ?? {}),
    variables: input.environment?.variables ?? {},
    secrets: input.environment?.secrets ?? {},
  },
  token: server.token,
  owner: server.owner,
});

export const serviceCpuMillis = (s: Pick<Service, 'cpu'>): number => parseCpuMillis(s.cpu) ?? 200;
export const serviceMemoryBytes = (s: Pick<Service, 'memory'>): number =>
  parseMemoryBytes(s.memory) ?? 256 * 1024 ** 2;
