// Service storage paths ("bucket/prefix/..."), input matching and output naming, as OSCAR
// does them. Pure.
import type { StorageIO } from '../fdl/service.ts';
import { objectKeyProblem } from './object-key.ts';

export interface BucketPath {
  bucket: string;
  /** Key prefix inside the bucket, without leading or trailing "/" ("" for the whole bucket). */
  prefix: string;
}

export const splitPath = (path: string): BucketPath => {
  const clean = path.replace(/^\/+/, '').replace(/\/+$/, '');
  const slash = clean.indexOf('/');
  return slash < 0
    ? { bucket: clean, prefix: '' }
    : { bucket: clean.slice(0, slash), prefix: clean.slice(slash + 1) };
};

const passesFilters = (name: string, io: Pick<StorageIO, 'prefix' | 'suffix'>): boolean => {
  const base = name.split('/').pop() ?? name;
  const prefixes = io.prefix?.filter(Boolean) ?? [];
  const suffixes = io.suffix?.filter(Boolean) ?? [];
  if (prefixes.length && !prefixes.some((p) => base.startsWith(p) || name.startsWith(p))) return false;
  if (suffixes.length && !suffixes.some((s) => name.endsWith(s))) return false;
  return true;
};

/** Providers that name this cluster's own object store. */
export const isLocalProvider = (provider: string, clusterId: string): boolean =>
  provider === 'minio.default' || provider === `minio.${clusterId}`;

/** Is the key (already checked by the object-key normaliser) under the path's prefix? */
export const keyUnderPrefix = (prefix: string, key: string): boolean =>
  prefix === '' ? key.length > 0 : key.startsWith(`${prefix}/`) && key.length > prefix.length + 1;

/**
 * Does an object (bucket, key) land under this input (path, prefix, suffix)? `inBucket`
 * stands in for the path's own bucket (a user's bucket under isolation_level USER).
 */
export const matchesInput = (io: StorageIO, bucket: string, key: string, inBucket?: string): boolean => {
  const p = splitPath(io.path);
  if ((inBucket ?? p.bucket) !== bucket) return false;
  if (objectKeyProblem(key) !== undefined || !keyUnderPrefix(p.prefix, key)) return false;
  const rest = p.prefix ? key.slice(p.prefix.length + 1) : key;
  return passesFilters(rest, io);
};

/**
 * The key an output file gets under an output path, or undefined when filtered out. The
 * caller checks the key with the object-key normaliser. `inBucket` replaces the path's
 * bucket (a user's bucket under isolation_level USER).
 */
export const outputKey = (
  io: StorageIO,
  relPath: string,
  inBucket?: string,
): { bucket: string; key: string } | undefined => {
  if (!passesFilters(relPath, io)) return undefined;
  const p = splitPath(io.path);
  return { bucket: inBucket ?? p.bucket, key: p.prefix ? `${p.prefix}/${relPath}` : relPath };
};

/** S3 bucket naming rules: the one definition, shared with service validation. */
export { S3_BUCKET_RE as BUCKET_NAME_RE } from '../fdl/service.ts';
