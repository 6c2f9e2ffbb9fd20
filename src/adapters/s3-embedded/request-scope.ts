// What an S3 request to the embedded store touches, read from its whole path, its method and
// its x-amz-copy-source (header or query, as s3rver reads either): the bucket, the key and
// read, write or manage, plus a read of the copy source. Paths that could climb out of a
// bucket ("." / ".." segments, encoded or not, backslashes, NUL) are refused here, before
// the signature check and before s3rver joins anything.
import { objectKeyProblem } from '../../core/storage/object-key.ts';

export interface S3Access {
  bucket: string;
  /** Absent for bucket-level requests (list, delete bucket, multi-object delete). */
  key?: string;
  action: 'read' | 'write' | 'manage';
}

export type RequestScope =
  /** `accesses` null: the service root (list every bucket), which scoped keys may not use. */
  { ok: true; accesses: S3Access[] | null } | { ok: false; code: string; message: string };

const refused = (code: string, message: string): RequestScope => ({ ok: false, code, message });

/** A bucket segment s3rver would join as a directory: anything but a plain name is refused. */
const bucketProblem = (bucket: string): string | undefined =>
  bucket === '' || bucket === '.' || bucket === '..' || /[/\\\u0000]/.test(bucket)
    ? `"${bucket}" is not a bucket name`
    : undefined;

const decodeSegments = (rawPath: string): string[] | undefined => {
  try {
    return rawPath.split('/').map((s) => decodeURIComponent(s));
  } catch {
    return undefined;
  }
};

/** The copy source as s3rver parses it ("/bucket/key", decodeURI), checked the same way. */
const copySourceAccess = (raw: string): S3Access | RequestScope => {
  let decoded: string;
  let strict: string;
  try {
    decoded = decodeURI(raw);
    strict = decodeURIComponent(raw);
  } catch {
    return refused('InvalidArgument', 'x-amz-copy-source is not a valid URI');
  }
  for (const form of [decoded, strict]) {
    const source = form.startsWith('/') ? form.slice(1) : form;
    const [bucket, ...rest] = source.split('/');
    const key = rest.join('/');
    const problem = bucketProblem(bucket) ?? objectKeyProblem(key);
    if (problem) return refused('InvalidArgument', `x-amz-copy-source ${JSON.stringify(raw)}: ${problem}`);
  }
  const source = decoded.startsWith('/') ? decoded.slice(1) : decoded;
  const [bucket, ...rest] = source.split('/');
  return { bucket, key: rest.join('/'), action: 'read' };
};

const queryParam = (rawQuery: string, name: string): string | undefined => {
  for (const pair of rawQuery.split('&')) {
    const eq = pair.indexOf('=');
    const k = eq < 0 ? pair : pair.slice(0, eq);
    let key: string;
    try {
      key = decodeURIComponent(k);
    } catch {
      continue;
    }
    if (key.toLowerCase() !== name) continue;
    try {
      return decodeURIComponent(eq < 0 ? '' : pair.slice(eq + 1));
    } catch {
      return undefined;
    }
  }
  return undefined;
};

/** The accesses a request makes, or why its path or copy source is refused (400). */
export const requestScope = (
  method: string,
  url: string,
  headers: Record<string, string | string[] | undefined>,
): RequestScope => {
  const q = url.indexOf('?');
  const rawPath = q < 0 ? url : url.slice(0, q);
  const rawQuery = q < 0 ? '' : url.slice(q + 1);
  if (!rawPath.startsWith('/')) return refused('InvalidURI', 'Could not parse the specified URI.');
  const segments = decodeSegments(rawPath);
  if (!segments) return refused('InvalidURI', 'Could not parse the specified URI.');
  if (segments.length === 2 && segments[1] === '') return { ok: true, accesses: null };
  const bucket = segments[1];
  const bucketIssue = bucketProblem(bucket);
  if (bucketIssue) return refused('InvalidBucketName', `The specified bucket is not valid: ${bucketIssue}.`);
  const key = segments.length > 2 ? segments.slice(2).join('/') : '';
  if (key !== '') {
    const problem = objectKeyProblem(key);
    if (problem) return refused('InvalidArgument', `Object key ${JSON.stringify(key)} ${problem}.`);
  }
  if (method === 'OPTIONS') return { ok: true, accesses: [] };
  const read = method === 'GET' || method === 'HEAD';
  const accesses: S3Access[] = [];
  if (key === '') {
    // Bucket level: listing reads; a multi-object delete writes; anything else (create,
    // delete, configure the bucket) is the owner's.
    accesses.push({ bucket, action: read ? 'read' : method === 'POST' ? 'write' : 'manage' });
  } else {
    accesses.push({ bucket, key, action: read ? 'read' : 'write' });
  }
  const header = headers['x-amz-copy-source'];
  const copySource = typeof header === 'string' ? header : queryParam(rawQuery, 'x-amz-copy-source');
  if (copySource !== undefined) {
    const source = copySourceAccess(copySource);
    if ('ok' in source) return source;
    accesses.push(source);
  }
  return { ok: true, accesses };
};
