// The FDL file layout of oscar-cli:
//   functions: { oscar: [ { <cluster-id>: <service> }, ... ] }
//   storage_providers: {...}   clusters: {...}     (top level, embedded into each service)
// The entry may also be a bare service (the layout of OSCAR's federation quickstart).
// Keys match as OSCAR's decoder matches them (`Script`, `environment.Variables`) and YAML
// scalars where OSCAR has a string are strings (`cpu: 1` is "1"), as oscar-cli sends them.
// Pure: the caller reads the file and the scripts.
import { parse as parseYaml } from 'yaml';
import { fail } from '../errors.ts';
import { CLUSTER_SHAPE, goDecode, goFold, STORAGE_PROVIDERS_SHAPE, yamlAsGo } from './go-decode.ts';

/** oscar-cli's FDL struct: functions.oscar plus the shared blocks. */
const FDL_SHAPE = {
  kind: 'struct',
  fields: {
    functions: { kind: 'struct', fields: { oscar: { kind: 'list', of: { kind: 'any' } } } },
    storage_providers: STORAGE_PROVIDERS_SHAPE,
    clusters: { kind: 'map', of: CLUSTER_SHAPE },
  },
} as const;

export interface FdlEntry {
  /** The cluster id the entry is keyed by, or undefined for a bare service. */
  clusterId: string | undefined;
  /** The service as written, with top-level storage_providers and clusters merged in. */
  service: Record<string, unknown>;
  /** `script` as written: a path relative to the FDL file. */
  scriptPath: string | undefined;
}

export interface FdlFile {
  entries: FdlEntry[];
}

const isObj = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/** Parses YAML text; throws INVALID_YAML with the parser's first line. */
export const parseYamlText = (text: string, what = 'FDL'): unknown => {
  try {
    // logLevel 'error': the text is the caller's, so its warnings must not reach our stderr.
    return parseYaml(text, { maxAliasCount: 100, prettyErrors: true, logLevel: 'error' });
  } catch (e) {
    return fail('INVALID_YAML', `${what} is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
};

/** A deep copy, so that every entry owns its blocks (editing one never changes another). */
const copyOf = <T>(value: T): T => {
  try {
    return structuredClone(value);
  } catch {
    return fail('VALIDATION_FAILED', 'FDL is nested too deeply');
  }
};

const mergeMaps = (
  top: unknown,
  own: unknown,
  field: string,
  where: string,
): Record<string, unknown> | undefined => {
  if (top === undefined && own === undefined) return undefined;
  if (top !== undefined && !isObj(top)) fail('VALIDATION_FAILED', `${field} must be a map`);
  if (own !== undefined && !isObj(own)) fail('VALIDATION_FAILED', `${where}.${field} must be a map`);
  const out: Record<string, unknown> = {};
  // Per provider kind (minio, s3, ...) the service's own entries win over the file's.
  for (const source of [copyOf(top), own] as Array<Record<string, unknown> | undefined>) {
    for (const [k, v] of Object.entries(source ?? {})) {
      out[k] =
        isObj(out[k]) && isObj(v) && field === 'storage_providers' ? { ...(out[k] as object), ...v } : v;
    }
  }
  return out;
};

/** Splits an FDL document into services, each with the file's shared blocks embedded. */
export const parseFdl = (text: string): FdlFile => {
  const parsed = parseYamlText(text);
  if (!isObj(parsed)) fail('VALIDATION_FAILED', 'FDL must be a map with a "functions" key');
  // Only folds keys and turns scalars into strings here; types are the server's to check.
  const doc = goDecode(parsed, FDL_SHAPE, { yamlScalars: true }).value;
  const functions = (doc as Record<string, unknown>).functions;
  if (!isObj(functions)) fail('VALIDATION_FAILED', 'FDL must have "functions: {oscar: [...]}"');
  const list = (functions as Record<string, unknown>).oscar;
  if (!Array.isArray(list) || list.length === 0) {
    fail('VALIDATION_FAILED', 'FDL "functions.oscar" must be a non-empty list');
  }
  const { storage_providers: topProviders, clusters: topClusters } = doc as Record<string, unknown>;
  const entries = (list as unknown[]).map((item, i): FdlEntry => {
    const where = `functions.oscar[${i}]`;
    if (!isObj(item)) return fail('VALIDATION_FAILED', `${where} must be a map`);
    let clusterId: string | undefined;
    let raw: Record<string, unknown>;
    const keys = Object.keys(item);
    const bare = keys.some((k) => goFold(k) === 'name');
    if (keys.length === 1 && isObj(item[keys[0]]) && !bare) {
      clusterId = keys[0];
      raw = yamlAsGo(item[keys[0]]) as Record<string, unknown>;
    } else if (bare) {
      raw = yamlAsGo(item) as Record<string, unknown>;
    } else {
      return fail(
        'VALIDATION_FAILED',
        `${where} must be "{<cluster-id>: <service>}" or a service with a name`,
      );
    }
    const where2 = clusterId ? `${where}.${clusterId}` : where;
    if (raw.script !== undefined && typeof raw.script !== 'string') {
      fail('VALIDATION_FAILED', `${where2}.script must be a file path`);
    }
    const service: Record<string, unknown> = { ...raw };
    const providers = mergeMaps(topProviders, raw.storage_providers, 'storage_providers', where2);
    if (providers) service.storage_providers = providers;
    const clusters = mergeMaps(topClusters, raw.clusters, 'clusters', where2);
    if (clusters) service.clusters = clusters;
    if (clusterId && service.cluster_id === undefined) service.cluster_id = clusterId;
    return { clusterId, service, scriptPath: raw.script as string | undefined };
  });
  return { entries };
};
