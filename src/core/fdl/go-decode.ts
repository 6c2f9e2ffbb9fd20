// OSCAR reads a service with Go's encoding/json into its Service struct; Flotilla must accept
// and refuse what that decoder does (DESIGN §3.1):
// - an object key matches a struct field exactly, else case-insensitively (Go's fold:
//   ASCII case, plus "ſ" for "s" and the Kelvin sign for "k"), so `environment.Variables` is
//   `environment.variables`; when several keys land on one field the last one wins;
// - a value of the wrong JSON type for a field is refused (a number where Go has a string);
// - null leaves a field as it is (here: absent); a null map or list element is its zero value;
// - map keys are data, never folded; unknown fields are kept as written.
// YAML bodies and FDL files are read as oscar-cli's YAML decoder reads them: a scalar where
// Go has a string becomes that string (`cpu: 1` is "1").
// The shapes below are OSCAR's types.Service (contract/oscar-swagger-v4.1.2.yaml, grycap/oscar
// pkg/types) plus Flotilla's own fields (timeout, federation.deployment/revision, members).

export type Shape =
  | { kind: 'string' }
  | { kind: 'bool' }
  | { kind: 'int'; min: number; max: number; what: string }
  /** OSCAR's expose ports: an int in older structs, a list of ints in v4.1 (an int is read as [int]). */
  | { kind: 'int-or-list' }
  | { kind: 'list'; of: Shape }
  | { kind: 'map'; of: Shape }
  | { kind: 'struct'; fields: Record<string, Shape> }
  /** Any JSON object (a struct whose fields Flotilla does not check). */
  | { kind: 'object' }
  /** Anything, null included, left as it is. */
  | { kind: 'any' };

const str: Shape = { kind: 'string' };
const bool: Shape = { kind: 'bool' };
const INT64 = 2 ** 63;
const int: Shape = { kind: 'int', min: -INT64, max: INT64 - 1, what: 'a whole number' };
const int32: Shape = { kind: 'int', min: -(2 ** 31), max: 2 ** 31 - 1, what: 'a 32-bit whole number' };
const uint: Shape = { kind: 'int', min: 0, max: 2 ** 64 - 1, what: 'a whole number of 0 or more' };
const list = (of: Shape): Shape => ({ kind: 'list', of });
const map = (of: Shape): Shape => ({ kind: 'map', of });
const struct = (fields: Record<string, Shape>): Shape => ({ kind: 'struct', fields });
const object: Shape = { kind: 'object' };

const strList = list(str);
const strMap = map(str);

export const STORAGE_IO_SHAPE = struct({
  storage_provider: str,
  path: str,
  prefix: strList,
  suffix: strList,
  options: str,
});

const replicaFields: Record<string, Shape> = {
  type: str,
  cluster_id: str,
  service_name: str,
  url: str,
  ssl_verify: bool,
  priority: uint,
  headers: strMap,
};
const REPLICA_SHAPE: Shape = struct(replicaFields);
// Flotilla's tree topology nests members under members.
replicaFields.members = list(REPLICA_SHAPE);

export const CLUSTER_SHAPE = struct({ endpoint: str, auth_user: str, auth_password: str, ssl_verify: bool });

export const STORAGE_PROVIDERS_SHAPE = struct({
  minio: map(struct({ endpoint: str, verify: bool, access_key: str, secret_key: str, region: str })),
  s3: map(struct({ access_key: str, secret_key: str, region: str })),
  onedata: map(struct({ oneprovider_host: str, token: str, space: str })),
  webdav: map(struct({ hostname: str, login: str, password: str })),
  rucio: map(
    struct({
      account: str,
      auth_host: str,
      host: str,
      oidc_audience: str,
      refresh_token: str,
      rse: str,
      token_endpoint: str,
    }),
  ),
});

export const SERVICE_SHAPE = struct({
  name: str,
  cluster_id: str,
  memory: str,
  cpu: str,
  total_memory: str,
  total_cpu: str,
  enable_gpu: bool,
  enable_sgx: bool,
  image_prefetch: bool,
  synchronous: struct({ min_scale: int, max_scale: int }),
  replicas: list(REPLICA_SHAPE),
  delegation: str,
  rescheduler_threshold: int,
  log_level: str,
  image: str,
  alpine: bool,
  token: str,
  file_stage_in: bool,
  input: list(STORAGE_IO_SHAPE),
  output: list(STORAGE_IO_SHAPE),
  script: str,
  image_pull_secrets: strList,
  expose: struct({
    min_scale: int32,
    max_scale: int32,
    api_port: { kind: 'int-or-list' },
    cpu_threshold: int32,
    rewrite_target: bool,
    nodePort: { kind: 'int-or-list' },
    default_command: bool,
    set_auth: bool,
    health_path: str,
    probe_mode: str,
    auth_type: str,
  }),
  environment: struct({ variables: strMap, secrets: strMap }),
  annotations: strMap,
  vo: str,
  labels: strMap,
  storage_providers: STORAGE_PROVIDERS_SHAPE,
  clusters: map(CLUSTER_SHAPE),
  owner: str,
  namespace: str,
  interlink_node_name: str,
  visibility: str,
  allowed_users: strList,
  isolation_level: str,
  bucket_list: strList,
  mount: STORAGE_IO_SHAPE,
  volume: struct({ name: str, size: str, mount_path: str, lifecycle_policy: str }),
  volume_status: object,
  kserve: object,
  deployment: object,
  federation: struct({
    group_id: str,
    topology: str,
    delegation: str,
    members: list(REPLICA_SHAPE),
    rescheduler_threshold: int,
    deployment: str,
    revision: int,
  }),
  timeout: int,
});

/** Go's case folding of a key, as encoding/json compares field names. */
export const goFold = (key: string): string =>
  key.toLowerCase().replaceAll('ſ', 's').replaceAll('\u212a', 'k');

export interface GoIssue {
  /** "environment.variables.MODE", "input[0].path". */
  path: string;
  message: string;
}

export interface GoDecodeOptions {
  /** oscar-cli's YAML decoding: a number or boolean where Go has a string becomes a string. */
  yamlScalars?: boolean;
}

const kindOf = (v: unknown): string =>
  v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'an object' : `a ${typeof v}`;

const isObj = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/** Sets a key as data, never as a prototype ("__proto__" stays an ordinary key; it is the
 * only key whose assignment does something else on a fresh object). */
const put = (o: Record<string, unknown>, k: string, v: unknown): void => {
  if (k === '__proto__')
    Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  else o[k] = v;
};

const join = (path: string, key: string | number): string =>
  typeof key === 'number' ? `${path}[${key}]` : path ? `${path}.${key}` : key;

/** The struct field a key lands on: an exact match first, then a case-insensitive one. */
const fieldFor = (fields: Record<string, Shape>, key: string): string | undefined => {
  if (Object.hasOwn(fields, key)) return key;
  const folded = goFold(key);
  return Object.keys(fields).find((f) => goFold(f) === folded);
};

const zeroOf = (shape: Shape): unknown => {
  switch (shape.kind) {
    case 'any':
      return null;
    case 'string':
      return '';
    case 'bool':
      return false;
    case 'int':
      return 0;
    case 'list':
    case 'int-or-list':
      return [];
    default:
      return {};
  }
};

/**
 * Reads `value` as Go would into `shape`: keys folded onto the canonical field names, wrong
 * types reported. Returns a new value (unknown fields kept as they were) and every issue.
 */
export const goDecode = (
  value: unknown,
  shape: Shape = SERVICE_SHAPE,
  opts: GoDecodeOptions = {},
): { value: unknown; issues: GoIssue[] } => {
  const issues: GoIssue[] = [];
  const wrong = (path: string, expected: string, got: unknown) =>
    issues.push({ path, message: `must be ${expected}, got ${kindOf(got)}` });

  const walk = (v: unknown, s: Shape, path: string): unknown => {
    switch (s.kind) {
      case 'string':
        if (typeof v === 'string') return v;
        if (opts.yamlScalars && (typeof v === 'number' || typeof v === 'boolean')) return String(v);
        wrong(path, 'a string', v);
        return v;
      case 'bool':
        if (typeof v !== 'boolean') wrong(path, 'true or false', v);
        return v;
      case 'int':
        if (typeof v !== 'number' || !Number.isInteger(v) || v < s.min || v > s.max) {
          issues.push({
            path,
            message:
              typeof v === 'number' ? `must be ${s.what}, got ${v}` : `must be ${s.what}, got ${kindOf(v)}`,
          });
        }
        return v;
      case 'int-or-list':
        // Stored as OSCAR v4.1 holds it: a list (older clients send one port as a number).
        if (typeof v === 'number') return [walk(v, int32, path)];
        if (!Array.isArray(v)) {
          wrong(path, 'a whole number or a list of them', v);
          return v;
        }
        return v.map((e, i) => (e === null ? 0 : walk(e, int32, join(path, i))));
      case 'list':
        if (!Array.isArray(v)) {
          wrong(path, 'a list', v);
          return v;
        }
        return v.map((e, i) => (e === null ? zeroOf(s.of) : walk(e, s.of, join(path, i))));
      case 'map': {
        if (!isObj(v)) {
          wrong(path, 'a map', v);
          return v;
        }
        const out: Record<string, unknown> = {};
        for (const [k, e] of Object.entries(v)) {
          put(out, k, e === null ? zeroOf(s.of) : walk(e, s.of, join(path, k)));
        }
        return out;
      }
      case 'object':
        if (!isObj(v)) wrong(path, 'an object', v);
        return v;
      case 'any':
        return v;
      case 'struct': {
        if (!isObj(v)) {
          wrong(path, 'an object', v);
          return v;
        }
        const out: Record<string, unknown> = {};
        for (const [k, e] of Object.entries(v)) {
          const field = fieldFor(s.fields, k);
          if (field === undefined) {
            put(out, k, e);
            continue;
          }
          // Go's decoder leaves a field as it is for null (absent, or what an earlier key set).
          if (e === null) continue;
          // Re-inserted, so the field sits where its last key was.
          delete out[field];
          put(out, field, walk(e, s.fields[field], join(path, field)));
        }
        return out;
      }
    }
  };

  return { value: walk(value, shape, ''), issues };
};

/**
 * A YAML body or FDL entry as oscar-cli's YAML decoding leaves it: keys folded and scalars
 * where Go has a string turned into strings. Type errors are left for the validator.
 */
export const yamlAsGo = (value: unknown): unknown =>
  isObj(value) ? goDecode(value, SERVICE_SHAPE, { yamlScalars: true }).value : value;
