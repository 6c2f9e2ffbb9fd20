// Object storage for the tier: the embedded S3-compatible server on loopback (its keys
// kept in the store), or a configured S3/MinIO endpoint. Also resolves the storage
// providers a service names ("minio.default", "s3.<id>", ...) to object stores.
import { createHmac } from 'node:crypto';
import { join } from 'node:path';
import type { Logger } from 'pino';
import {
  type EmbeddedS3,
  generateAccessKey,
  generateSecretKey,
  type S3Access,
  startEmbeddedS3,
} from '../adapters/s3-embedded/embedded-s3.ts';
import type { JobInputs } from '../app/job-inputs.ts';
import type { StorageResolver } from '../app/jobs/job-execution.ts';
import type { Config } from '../config/config.ts';
import type { Principal } from '../core/auth/principal.ts';
import { FlotillaError } from '../core/errors.ts';
import type { ObjectStore, PeerClient, SettingsStore, StorageCredentials } from '../core/ports.ts';
import { isLocalProvider } from '../core/storage/paths.ts';
import { lazyS3ObjectStore } from './lazy-object-store.ts';

export interface ObjectStorage {
  /** This cluster's own object store ("minio.default"). */
  readonly local: ObjectStore;
  readonly embedded: EmbeddedS3 | undefined;
  /** Storage keys for a caller of /system/config: the admin's, or keys whose every request
   * the embedded store checks with `allows` (users, delegations). */
  credentialsFor(
    p: Principal,
    allows: (p: Principal, access: S3Access) => Promise<boolean>,
  ): StorageCredentials | undefined;
  /** Keys for the jobs of a service running outside this process (a Kubernetes pod), checked
   * request by request with `allows`. On an external S3 there are no per-caller keys: the
   * configured ones with `--job-storage-keys manager`, else undefined. */
  jobCredentials(
    service: string,
    allows: (access: S3Access) => Promise<boolean>,
  ): StorageCredentials | undefined;
  onObjectCreated(cb: (e: { bucket: string; key: string; size: number }) => void): void;
  close(): Promise<void>;
}

/** Stable per-identity keys derived from the store's secret: nothing to keep, same after a restart. */
const deriveKeys = (master: string, identity: string) => {
  const mac = (label: string) => createHmac('sha256', master).update(`${label}:${identity}`).digest();
  return {
    accessKey: `F${mac('access').toString('hex').slice(0, 19).toUpperCase()}`,
    secretKey: mac('secret').toString('base64url'),
  };
};

/**
 * Resolves storage provider references to object stores: this cluster's own store; a
 * delegated job's origin store (keys fetched from the origin's /system/config with the
 * token it gave); and providers a service defines itself (endpoint and keys).
 */
export const createStorageResolver = (deps: {
  local: ObjectStore;
  clusterId: string;
  peers: PeerClient;
  /** The one input check, run before every download. */
  inputs: JobInputs;
}): StorageResolver & { close(): Promise<void> } => {
  const stores = new Map<string, ObjectStore>();
  const cached = (key: string, make: () => ObjectStore) => {
    let store = stores.get(key);
    if (!store) {
      store = make();
      stores.set(key, store);
    }
    return store;
  };
  const fromCredentials = (c: StorageCredentials) =>
    cached(`${c.endpoint}|${c.access_key}`, () =>
      lazyS3ObjectStore({
        endpoint: c.endpoint,
        accessKey: c.access_key,
        secretKey: c.secret_key,
        region: c.region,
        verify: c.verify,
      }),
    );
  const resolver: StorageResolver & { close(): Promise<void> } = {
    async resolveInput(ref, service, origin) {
      const input = await deps.inputs.check(service, ref, { origin: origin?.cluster });
      return { store: await resolver.resolve(ref.provider, service, origin), input };
    },
    async resolve(provider, service, origin) {
      const local = isLocalProvider(provider, deps.clusterId);
      if (origin && (local || provider === `minio.${origin.cluster}`)) {
        const endpoint = service.clusters?.[origin.cluster]?.endpoint;
        if (!endpoint || !origin.token) {
          throw new FlotillaError(
            'UNAVAILABLE',
            `no way to reach the storage of origin cluster ${origin.cluster}`,
          );
        }
        const creds = await deps.peers.storageConfig(
          {
            clusterId: origin.cluster,
            endpoint,
            sslVerify: service.clusters?.[origin.cluster]?.ssl_verify !== false,
            auth: { kind: 'bearer', token: origin.token },
          },
          AbortSignal.timeout(5000),
        );
        return fromCredentials(creds);
      }
      if (local) return deps.local;
      const kind = provider.slice(0, provider.indexOf('.'));
      const id = provider.slice(provider.indexOf('.') + 1);
      const cfg = (service.storage_providers?.[kind]?.[id] ?? undefined) as ProviderConfig | undefined;
      if (!cfg?.access_key || !cfg.secret_key) return undefined;
      const endpoint =
        cfg.endpoint ?? (kind === 's3' ? `https://s3.${cfg.region ?? 'us-east-1'}.amazonaws.com` : undefined);
      if (!endpoint) return undefined;
      return fromCredentials({
        endpoint,
        access_key: cfg.access_key,
        secret_key: cfg.secret_key,
        region: cfg.region ?? 'us-east-1',
        verify: cfg.verify !== false,
      });
    },
    async close() {
      for (const s of stores.values()) await s.close().catch(() => {});
    },
  };
  return resolver;
};

type ProviderConfig = {
  endpoint?: string;
  access_key?: string;
  secret_key?: string;
  region?: string;
  verify?: boolean;
};

export const openObjectStorage = async (
  config: Config,
  settings: SettingsStore,
  logger: Logger,
): Promise<ObjectStorage> => {
  let embedded: EmbeddedS3 | undefined;
  let local: ObjectStore;
  if (config.s3) {
    local = lazyS3ObjectStore({
      endpoint: config.s3.endpoint,
      accessKey: config.s3.accessKey,
      secretKey: config.s3.secretKey,
      region: config.s3.region,
    });
  } else {
    if (config.tier !== 'local') {
      logger.warn(
        'no --s3-endpoint: using the embedded S3 store in the data dir; set FLOTILLA_S3_ENDPOINT for production',
      );
    }
    const accessKey = await settings.setSettingIfAbsent('s3_access_key', generateAccessKey());
    const secretKey = await settings.setSettingIfAbsent('s3_secret_key', generateSecretKey());
    embedded = await startEmbeddedS3({
      dataDir: join(config.dataDir, 's3'),
      host: '127.0.0.1',
      port: config.s3Port,
      accessKey,
      secretKey,
    });
    local = lazyS3ObjectStore({
      endpoint: embedded.endpoint,
      accessKey,
      secretKey,
      region: embedded.region,
    });
  }

  return {
    local,
    embedded,
    credentialsFor(p, allows) {
      if (p.kind === 'admin') return local.credentials;
      const none = { ...local.credentials, access_key: '', secret_key: '' };
      // Scoped keys need the embedded store's own signature check; an external S3 has no
      // per-caller keys here, so users and delegations get none rather than the admin's.
      if (!embedded || (p.kind !== 'user' && p.kind !== 'delegation')) return none;
      const identity = p.kind === 'user' ? `user:${p.issuer}:${p.sub}` : `delegation:${p.service}`;
      const { accessKey, secretKey } = deriveKeys(embedded.secretKey, identity);
      embedded.addScopedKey(accessKey, secretKey, (access) => allows(p, access));
      return { ...local.credentials, access_key: accessKey, secret_key: secretKey };
    },
    jobCredentials(service, allows) {
      if (!embedded) {
        // No per-caller keys on an external S3: the configured keys only when the operator
        // chose so (--job-storage-keys manager, OSCAR's behaviour), else none.
        const manager = config.executor.kind === 'kubernetes' && config.executor.jobStorageKeys === 'manager';
        return manager ? local.credentials : undefined;
      }
      const { accessKey, secretKey } = deriveKeys(embedded.secretKey, `job:${service}`);
      embedded.addScopedKey(accessKey, secretKey, allows);
      return { ...local.credentials, access_key: accessKey, secret_key: secretKey };
    },
    onObjectCreated(cb) {
      embedded?.onObjectCreated(cb);
    },
    async close() {
      await local.close().catch(() => {});
      await embedded?.stop();
    },
  };
};
