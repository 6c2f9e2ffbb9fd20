// An ObjectStore whose adapter is made at its first use. The S3 adapter brings the AWS SDK
// (~200 ms and ~10 MB to load); a manager whose services never touch storage never loads it.

import type { S3ObjectStoreOptions } from '../adapters/objectstore-s3/s3-object-store.ts';
import type { ObjectStore, StorageCredentials } from '../core/ports.ts';

export const lazyObjectStore = (
  credentials: StorageCredentials,
  make: () => Promise<ObjectStore>,
): ObjectStore => {
  let made: Promise<ObjectStore> | undefined;
  const store = () => {
    // A failed load is retried by the next call rather than remembered.
    made ??= make().catch((err) => {
      made = undefined;
      throw err;
    });
    return made;
  };
  return {
    credentials,
    ensureBucket: async (bucket) => (await store()).ensureBucket(bucket),
    bucketExists: async (bucket) => (await store()).bucketExists(bucket),
    deleteBucket: async (bucket, opts) => (await store()).deleteBucket(bucket, opts),
    listBuckets: async () => (await store()).listBuckets(),
    listObjects: async (bucket, opts) => (await store()).listObjects(bucket, opts),
    putObject: async (bucket, key, body, size) => (await store()).putObject(bucket, key, body, size),
    getObject: async (bucket, key) => (await store()).getObject(bucket, key),
    headObject: async (bucket, key) => (await store()).headObject(bucket, key),
    deleteObject: async (bucket, key) => (await store()).deleteObject(bucket, key),
    presign: async (bucket, key, op, expires) => (await store()).presign(bucket, key, op, expires),
    async close() {
      const loaded = made && (await made.catch(() => undefined));
      await loaded?.close();
    },
  };
};

/** The S3 adapter, loaded at first use; its credentials are known without it. */
export const lazyS3ObjectStore = (options: S3ObjectStoreOptions): ObjectStore =>
  lazyObjectStore(
    {
      endpoint: options.endpoint,
      verify: options.verify ?? true,
      access_key: options.accessKey,
      secret_key: options.secretKey,
      region: options.region ?? 'us-east-1',
    },
    async () => (await import('../adapters/objectstore-s3/s3-object-store.ts')).createS3ObjectStore(options),
  );
