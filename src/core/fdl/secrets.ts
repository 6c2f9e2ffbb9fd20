// Secret values in a service definition: shown as "***" on read, and kept when a client
// sends "***" back (OSCAR clients GET, edit and PUT a whole service) or leaves
// `environment.secrets` out of a PUT (OSCAR keeps the stored secrets then).

export const MASK = '***';

const PROVIDER_SECRET_KEYS = new Set([
  'secret_key',
  'password',
  'token',
  'refresh_token',
  'access_key_secret',
]);

type Obj = Record<string, any>;

const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Visits every secret slot of a service: (container, key). */
const eachSecretSlot = (svc: Obj, visit: (container: Obj, key: string) => void): void => {
  const secrets = svc.environment?.secrets;
  if (isObj(secrets)) for (const k of Object.keys(secrets)) visit(secrets, k);
  if (isObj(svc.clusters)) {
    for (const c of Object.values(svc.clusters)) {
      if (isObj(c) && 'auth_password' in c) visit(c, 'auth_password');
    }
  }
  if (isObj(svc.storage_providers)) {
    for (const kind of Object.values(svc.storage_providers)) {
      if (!isObj(kind)) continue;
      for (const provider of Object.values(kind)) {
        if (!isObj(provider)) continue;
        for (const k of Object.keys(provider)) if (PROVIDER_SECRET_KEYS.has(k)) visit(provider, k);
      }
    }
  }
};

/** A deep copy of the service with every secret value replaced by "***". */
export const redactService = <T extends Obj>(svc: T): T => {
  const copy = structuredClone(svc);
  eachSecretSlot(copy, (container, key) => {
    if (container[key] !== undefined && container[key] !== null && container[key] !== '')
      container[key] = MASK;
  });
  return copy;
};

const getPath = (root: Obj, path: string[]): unknown =>
  path.reduce<unknown>((acc, k) => (isObj(acc) ? acc[k] : undefined), root);

const SECRET_PLACES = ['environment', 'clusters', 'storage_providers'];

const holdsMask = (node: unknown): boolean =>
  isObj(node) && Object.values(node).some((v) => v === MASK || holdsMask(v));

/** Whether restoreMaskedSecrets has anything to do (most definitions, a worker's every
 * update included, carry no mask: they need no copy). */
const needsRestoring = (incoming: Obj, stored: Obj | undefined): boolean => {
  if (SECRET_PLACES.some((top) => holdsMask(incoming[top]))) return true;
  const kept = stored?.environment?.secrets;
  if (isObj(kept) && Object.keys(kept).length > 0 && incoming.environment?.secrets === undefined) return true;
  return isDefaultMinioView(incoming);
};

/**
 * Replaces every "***" in `incoming` with the stored value at the same place. A mask with
 * no stored value behind it is dropped rather than stored as a literal "***". A copy, or
 * `incoming` itself when there is nothing to restore.
 */
export const restoreMaskedSecrets = <T extends Obj>(incoming: T, stored: Obj | undefined): T => {
  if (!needsRestoring(incoming, stored)) return incoming;
  const walk = (node: unknown, path: string[]): void => {
    if (!isObj(node)) return;
    for (const [k, v] of Object.entries(node)) {
      if (v === MASK) {
        const prev = stored ? getPath(stored, [...path, k]) : undefined;
        if (typeof prev === 'string' && prev !== MASK) node[k] = prev;
        else delete node[k];
      } else if (isObj(v)) walk(v, [...path, k]);
    }
  };
  const copy = structuredClone(incoming);
  for (const top of SECRET_PLACES) {
    if (isObj(copy[top])) walk(copy[top], [top]);
  }
  const kept = stored?.environment?.secrets;
  if (isObj(kept) && Object.keys(kept).length > 0 && copy.environment?.secrets === undefined) {
    (copy as Obj).environment = {
      ...(isObj(copy.environment) ? copy.environment : {}),
      secrets: { ...kept },
    };
  }
  dropDefaultMinioView(copy);
  return copy;
};

/** Whether the service carries `storage_providers.minio.default` as GET shows it (no keys). */
const isDefaultMinioView = (svc: Obj): boolean => {
  const own = svc.storage_providers?.minio?.default;
  return isObj(own) && !own.access_key && !own.secret_key;
};

/**
 * `storage_providers.minio.default` as GET shows it when the service has none of its own:
 * the cluster's storage, keys masked. Sent back in a PUT it carries no keys: it is dropped,
 * so the service keeps using the cluster's storage rather than storing an empty provider.
 */
const dropDefaultMinioView = (svc: Obj): void => {
  if (!isDefaultMinioView(svc)) return;
  const minio = svc.storage_providers.minio;
  delete minio.default;
  if (Object.keys(minio).length === 0) delete svc.storage_providers.minio;
  if (Object.keys(svc.storage_providers).length === 0) delete svc.storage_providers;
};

/** The cluster's own storage as `minio.default` shows it in a service (no keys). */
export interface DefaultMinioView {
  endpoint: string;
  region: string;
  verify: boolean;
}

/**
 * A redacted service as GET answers it: `storage_providers` is always an object with
 * `minio.default` in it (oscar_python's storage client indexes both without a check).
 */
export const withStorageProviders = <T extends Obj>(svc: T, minio: DefaultMinioView): T => {
  const providers = isObj(svc.storage_providers) ? { ...svc.storage_providers } : {};
  const kinds = isObj(providers.minio) ? { ...providers.minio } : {};
  if (!isObj(kinds.default)) {
    kinds.default = {
      endpoint: minio.endpoint,
      verify: minio.verify,
      access_key: MASK,
      secret_key: MASK,
      region: minio.region,
    };
  }
  return { ...svc, storage_providers: { ...providers, minio: kinds } };
};

/** Every secret value of a service, for checks that none of them leaks. */
export const secretValues = (svc: Obj): string[] => {
  const out: string[] = [];
  eachSecretSlot(svc, (c, k) => {
    if (typeof c[k] === 'string' && c[k] && c[k] !== MASK) out.push(c[k]);
  });
  return out;
};
