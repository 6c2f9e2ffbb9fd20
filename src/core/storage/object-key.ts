// The one object-key check, used by presign, the executor's input and output naming, the
// storage triggers and the embedded store. A key is kept byte for byte (S3 keys are opaque)
// but refused when a filesystem-backed store could read it as a path out of its bucket:
// "." or ".." segments, a leading "/", NUL or a backslash (a separator on Windows). Pure.
import { fail } from '../errors.ts';

/** S3's limit on a key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;

const utf8Length = (s: string): number => new TextEncoder().encode(s).length;

/** Why `key` is refused, or undefined when it is a safe key. */
export const objectKeyProblem = (key: string): string | undefined => {
  if (key.length === 0) return 'must not be empty';
  if (utf8Length(key) > MAX_KEY_BYTES) return `must be at most ${MAX_KEY_BYTES} bytes`;
  if (key.startsWith('/')) return 'must not start with "/"';
  if (key.includes('\u0000')) return 'must not contain NUL';
  if (key.includes('\\')) return 'must not contain a backslash';
  if (key.split('/').some((s) => s === '.' || s === '..')) return 'must not contain "." or ".." segments';
  return undefined;
};

/**
 * The key as stores and presigned URLs get it; throws VALIDATION_FAILED (400) naming the
 * field and the key when it is refused.
 */
export const normaliseObjectKey = (key: unknown, field = 'object_key'): string => {
  if (typeof key !== 'string') return fail('VALIDATION_FAILED', `${field}: must be a string`);
  const problem = objectKeyProblem(key);
  if (problem) fail('VALIDATION_FAILED', `${field}: ${JSON.stringify(key)} ${problem}`, { fields: [field] });
  return key;
};

/**
 * A key prefix from a service path ("bucket/<prefix>"): "" or a key without a trailing "/".
 * Refused like a key, so that "<prefix>/<name>" never climbs out either.
 */
export const keyPrefixProblem = (prefix: string): string | undefined =>
  prefix === '' ? undefined : objectKeyProblem(prefix);
