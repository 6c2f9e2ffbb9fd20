// Which object a job may read (DESIGN §3.2): only one under an input path of its service,
// on the store that path names. An S3-style event naming any other bucket or key is
// refused before anything is downloaded. Also the scope of a delegation's storage keys: a
// cluster running a delegated job reads under the service's inputs and writes under its
// outputs, nothing else. Pure.
import type { Service, StorageIO } from '../fdl/service.ts';
import { objectKeyProblem } from './object-key.ts';
import { isLocalProvider, keyUnderPrefix, matchesInput, splitPath } from './paths.ts';
import { isolatedBucketName, isUserIsolated } from './service-buckets.ts';

/** The object an event names, and the storage provider it names it on. */
export interface InputRef {
  provider: string;
  bucket: string;
  key: string;
}

/** This cluster's store, the store of the cluster that delegated the job, or one the service configures. */
export type InputStorage = 'local' | 'origin' | 'external';

export interface CoveredInput {
  storage: InputStorage;
  /** The input path under which the object is. */
  io: StorageIO;
  /** Under isolation_level USER: the user whose own bucket holds the object. */
  isolatedFor?: string;
}

export type InputVerdict = { ok: true; input: CoveredInput } | { ok: false; reason: string };

const ios = (s: Service, kind: 'input' | 'output'): StorageIO[] => (s[kind] ?? []) as StorageIO[];

/** The isolated buckets a path stands for: "<bucket>-<uid>" per user of the service's bucket_list. */
const isolatedVariants = (s: Service, io: StorageIO): Array<{ bucket: string; user: string }> => {
  if (!isUserIsolated(s)) return [];
  const list = (s as { bucket_list?: unknown }).bucket_list;
  if (!Array.isArray(list)) return [];
  const base = splitPath(io.path).bucket;
  return (s.allowed_users ?? [])
    .map((user) => ({ bucket: isolatedBucketName(base, user), user }))
    .filter((v) => list.includes(v.bucket));
};

/** Whether the path (or, for a user, their isolated copy of it) covers bucket/key. */
const pathCovers = (
  s: Service,
  io: StorageIO,
  bucket: string,
  key: string,
): { isolatedFor?: string } | undefined => {
  const p = splitPath(io.path);
  if (!keyUnderPrefix(p.prefix, key)) return undefined;
  if (p.bucket === bucket) return {};
  const variant = isolatedVariants(s, io).find((v) => v.bucket === bucket);
  return variant ? { isolatedFor: variant.user } : undefined;
};

/**
 * Where the event's object is and which input covers it; refused when the key is unsafe or
 * no input path of the service covers it on that store. `origin` is the cluster that
 * delegated the job, whose store "minio.<origin>" (and "minio.default") then means.
 */
export const coverInput = (
  service: Service,
  ref: InputRef,
  ctx: { clusterId: string; origin?: string },
): InputVerdict => {
  const where = `${ref.provider}:${ref.bucket}/${ref.key}`;
  const keyProblem = objectKeyProblem(ref.key);
  if (keyProblem)
    return { ok: false, reason: `the event's object key ${JSON.stringify(ref.key)} ${keyProblem}` };
  const local = isLocalProvider(ref.provider, ctx.clusterId);
  const storage: InputStorage =
    ctx.origin !== undefined && (local || ref.provider === `minio.${ctx.origin}`)
      ? 'origin'
      : local
        ? 'local'
        : 'external';
  const sameStore = (io: StorageIO) =>
    storage === 'external'
      ? io.storage_provider === ref.provider
      : isLocalProvider(io.storage_provider, ctx.clusterId) ||
        (storage === 'origin' && io.storage_provider === `minio.${ctx.origin}`);
  for (const io of ios(service, 'input')) {
    if (!sameStore(io)) continue;
    const hit = pathCovers(service, io, ref.bucket, ref.key);
    if (hit) return { ok: true, input: { storage, io, ...hit } };
  }
  return {
    ok: false,
    reason: `the event names ${where}, which is not under an input path of service "${service.name}"`,
  };
};

/**
 * The input an object created on this cluster's store triggers (path, prefix and suffix
 * filters, as OSCAR's webhook), with the user whose isolated bucket it landed in.
 */
export const triggeredInput = (
  service: Service,
  bucket: string,
  key: string,
  clusterId: string,
): { io: StorageIO; isolatedFor?: string } | undefined => {
  for (const io of ios(service, 'input')) {
    if (!isLocalProvider(io.storage_provider, clusterId)) continue;
    if (matchesInput(io, bucket, key)) return { io };
    const variant = isolatedVariants(service, io).find((v) => matchesInput(io, bucket, key, v.bucket));
    if (variant) return { io, isolatedFor: variant.user };
  }
  return undefined;
};

/** One access a storage request makes: bucket-level when `key` is absent. */
export interface StorageAccess {
  bucket: string;
  key?: string;
  action: 'read' | 'write' | 'manage';
}

/**
 * The scope of a delegation's keys on this cluster's store: objects under the service's
 * local inputs (read) and outputs (write); no bucket-level access, no management.
 */
export const delegationMayAccess = (service: Service, a: StorageAccess, clusterId: string): boolean => {
  if (a.key === undefined || a.action === 'manage' || objectKeyProblem(a.key) !== undefined) return false;
  const key = a.key;
  const covers = (kind: 'input' | 'output') =>
    ios(service, kind).some(
      (io) => isLocalProvider(io.storage_provider, clusterId) && pathCovers(service, io, a.bucket, key),
    );
  if (a.action === 'read') return covers('input');
  if (covers('output')) return true;
  // An isolated job writes its outputs into the user's bucket, under the output paths' prefixes.
  return ios(service, 'output').some((out) => {
    const prefix = splitPath(out.path).prefix;
    return (
      isLocalProvider(out.storage_provider, clusterId) &&
      keyUnderPrefix(prefix, key) &&
      ios(service, 'input').some((io) => isolatedVariants(service, io).some((v) => v.bucket === a.bucket))
    );
  });
};
