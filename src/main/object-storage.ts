// Object storage for the tier: the embedded S3-compatible server on loopback (its keys
// kept in the store), or a configured S3/MinIO endpoint. Also resolves the storage
// providers a service names ("minio.default", "s3.<id>", ...) to object stores.
import { join } from 'node:path';
import type { Logger } from 'pino';
import { createS3ObjectStore } from '../adapters/objectstore-s3/s3-object-store.ts';
import {
  type EmbeddedS3,
  generateAccessKey,
  generateSecretKey,
  startEmbeddedS3,
} from '../adapters/s3-embedded/embedded-s3.ts';
import type { StorageResolver } from '../app/jobs/job-execution.ts';
import { isLocalProvider } from '../app/storage-triggers.ts';
import type { Config } from '../config/config.ts';
import type { Principal } from '../core/auth/principal.ts';
import type { Service } from '../core/fdl/service.ts';
import type { ObjectStore, SettingsStore, StorageCredentials } from '../core/ports.ts';

export interface ObjectStorage {
  /** This cluster's own object store ("minio.default"). */
  readonly local: ObjectStore;
  readonly embedded: EmbeddedS3 | undefined;
  readonly resolver: StorageResolver;
  /** Storage keys for a caller of /system/config. */
  credentialsFor(p: Principal): StorageCredentials | undefined;
  onObjectCreated(cb: (e: { bucket: string; key: string; size: number }) => void): void;
  close(): Promise<void>;
}

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
    local = createS3ObjectStore({
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
    local = createS3ObjectStore({
      endpoint: embedded.endpoint,
      accessKey,
      secretKey,
      region: embedded.region,
    });
  }

  // Stores for providers a service defines itself, keyed by endpoint and access key.
  const external = new Map<string, ObjectStore>();
  const resolver: StorageResolver = {
    async resolve(provider: string, service: Service) {
      if (isLocalProvider(provider, config.clusterId)) return local;
      const [kind, id] = [
        provider.slice(0, provider.indexOf('.')),
        provider.slice(provider.indexOf('.') + 1),
      ];
      const cfg = (service.storage_providers?.[kind]?.[id] ?? undefined) as ProviderConfig | undefined;
      if (!cfg?.access_key || !cfg.secret_key) return undefined;
      const endpoint =
        cfg.endpoint ?? (kind === 's3' ? `https://s3.${cfg.region ?? 'us-east-1'}.amazonaws.com` : undefined);
      if (!endpoint) return undefined;
      const key = `${endpoint}|${cfg.access_key}`;
      let store = external.get(key);
      if (!store) {
        store = createS3ObjectStore({
          endpoint,
          accessKey: cfg.access_key,
          secretKey: cfg.secret_key,
          region: cfg.region,
          verify: cfg.verify,
        });
        external.set(key, store);
      }
      return store;
    },
  };

  return {
    local,
    embedded,
    resolver,
    credentialsFor(p) {
      // Admin gets the store's keys. Per-user keys for bearer callers come with delegation;
      // until then a user gets the endpoint only, never the admin keys.
      if (p.kind === 'admin') return local.credentials;
      return { ...local.credentials, access_key: '', secret_key: '' };
    },
    onObjectCreated(cb) {
      embedded?.onObjectCreated(cb);
    },
    async close() {
      for (const s of external.values()) await s.close().catch(() => {});
      await local.close().catch(() => {});
      await embedded?.stop();
    },
  };
};
