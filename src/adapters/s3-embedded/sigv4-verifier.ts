// Signature check in front of the embedded S3 server. s3rver 3.7.1 only looks up the access
// key id of a SigV4 request and never checks its signature, so without this any local process
// knowing the (non-secret) access key could read and write objects.
//
// SigV4: the signature over method, path, query, signed headers and the declared payload hash
// (x-amz-content-sha256) is checked here, and that host and every x-amz-* header are among
// the signed ones; that the body matches that hash is not. SigV2 is
// left to s3rver, which does check it. Clock skew and presigned-URL expiry are checked by
// s3rver after us.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

const ALGORITHM = 'AWS4-HMAC-SHA256';
const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';

export type SigV4Verdict =
  | { ok: true; accessKey: string | null }
  | { ok: false; status: 400 | 403; code: string; message: string };

/** What the client claims: parsed from the Authorization header or the presigned query. */
interface SignedClaim {
  accessKey: string;
  scopeDate: string;
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
  amzDate: string;
  payloadHash: string;
  /** Query parameters that take part in the canonical query (all but X-Amz-Signature). */
  query: [string, string][];
}

/** A SigV2 request, whose signature s3rver checks. */
interface V2Claim {
  ok: true;
  v2AccessKey: string;
}

type ParseResult = SignedClaim | V2Claim | SigV4Verdict;

const deny = (code: string, message: string, status: 400 | 403 = 403): SigV4Verdict => ({
  ok: false,
  status,
  code,
  message,
});

/** RFC 3986 encoding, as SigV4 requires (encodeURIComponent leaves !'()* alone). */
const rfc3986 = (s: string): string =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

const sha256Hex = (data: string): string => createHash('sha256').update(data, 'utf8').digest('hex');
const hmac = (key: string | Buffer, data: string): Buffer =>
  createHmac('sha256', key).update(data, 'utf8').digest();

/** Decodes a raw query string without treating '+' as a space (SigV4 clients send %20). */
const parseQuery = (raw: string): [string, string][] =>
  raw
    .split('&')
    .filter((p) => p.length > 0)
    .map((pair) => {
      const eq = pair.indexOf('=');
      const [k, v] = eq < 0 ? [pair, ''] : [pair.slice(0, eq), pair.slice(eq + 1)];
      return [decodeURIComponent(k), decodeURIComponent(v)];
    });

const canonicalPath = (rawPath: string): string =>
  rawPath
    .split('/')
    .map((segment) => rfc3986(decodeURIComponent(segment)))
    .join('/');

const canonicalQuery = (pairs: [string, string][]): string =>
  pairs
    .map(([k, v]) => [rfc3986(k), rfc3986(v)])
    .sort(([ak, av], [bk, bv]) => (ak === bk ? (av < bv ? -1 : av > bv ? 1 : 0) : ak < bk ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');

const canonicalHeaderValue = (req: IncomingMessage, name: string): string =>
  (req.headersDistinct[name] ?? []).map((v) => v.trim().replace(/\s+/g, ' ')).join(',');

/** "AK/20240101/us-east-1/s3/aws4_request" → parts, or undefined when malformed. */
const parseCredential = (credential: string) => {
  const parts = credential.split('/');
  if (parts.length !== 5 || parts[4] !== 'aws4_request') return undefined;
  const [accessKey, scopeDate, region, service] = parts;
  return { accessKey, scopeDate, region, service };
};

function parseHeaderAuth(req: IncomingMessage, query: [string, string][]): ParseResult {
  const fields = new Map(
    req.headers
      .authorization!.slice(ALGORITHM.length)
      .split(',')
      .map((f) => f.trim())
      .map((f) => [f.slice(0, f.indexOf('=')), f.slice(f.indexOf('=') + 1)] as const),
  );
  const credential = parseCredential(fields.get('Credential') ?? '');
  const amzDate = req.headers['x-amz-date'];
  const payloadHash = req.headers['x-amz-content-sha256'];
  if (
    !credential ||
    !fields.has('SignedHeaders') ||
    !fields.has('Signature') ||
    typeof amzDate !== 'string'
  ) {
    return deny('AuthorizationHeaderMalformed', 'The authorization header is malformed.', 400);
  }
  if (typeof payloadHash !== 'string') {
    return deny('InvalidRequest', 'Missing required header for this request: x-amz-content-sha256', 400);
  }
  return {
    ...credential,
    signedHeaders: fields.get('SignedHeaders')!.split(';'),
    signature: fields.get('Signature')!,
    amzDate,
    payloadHash,
    query,
  };
}

function parsePresignedQuery(query: [string, string][]): ParseResult {
  const get = (name: string) => query.find(([k]) => k === name)?.[1];
  const credential = parseCredential(get('X-Amz-Credential') ?? '');
  const signedHeaders = get('X-Amz-SignedHeaders');
  const signature = get('X-Amz-Signature');
  const amzDate = get('X-Amz-Date');
  if (get('X-Amz-Algorithm') !== ALGORITHM || !credential || !signedHeaders || !signature || !amzDate) {
    return deny(
      'AuthorizationQueryParametersError',
      'Query-string authentication (SigV4) is malformed.',
      400,
    );
  }
  return {
    ...credential,
    signedHeaders: signedHeaders.split(';'),
    signature,
    amzDate,
    payloadHash: get('X-Amz-Content-Sha256') ?? UNSIGNED_PAYLOAD,
    query: query.filter(([k]) => k !== 'X-Amz-Signature'),
  };
}

function expectedSignature(
  req: IncomingMessage,
  rawPath: string,
  claim: SignedClaim,
  secret: string,
): string {
  const canonicalRequest = [
    req.method ?? 'GET',
    canonicalPath(rawPath),
    canonicalQuery(claim.query),
    ...claim.signedHeaders.map((h) => `${h}:${canonicalHeaderValue(req, h)}`),
    '',
    claim.signedHeaders.join(';'),
    claim.payloadHash,
  ].join('\n');
  const scope = `${claim.scopeDate}/${claim.region}/${claim.service}/aws4_request`;
  const stringToSign = [ALGORITHM, claim.amzDate, scope, sha256Hex(canonicalRequest)].join('\n');
  const signingKey = [claim.scopeDate, claim.region, claim.service, 'aws4_request'].reduce<string | Buffer>(
    (key, part) => hmac(key, part),
    `AWS4${secret}`,
  );
  return hmac(signingKey, stringToSign).toString('hex');
}

const sameHex = (a: string, b: string): boolean =>
  a.length === b.length && timingSafeEqual(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

function parseClaim(req: IncomingMessage, query: [string, string][]): ParseResult {
  if (req.headers.authorization?.startsWith(`${ALGORITHM} `)) return parseHeaderAuth(req, query);
  if (query.some(([k]) => k === 'X-Amz-Algorithm')) return parsePresignedQuery(query);
  const v2AccessKey = sigV2AccessKey(req, query);
  if (v2AccessKey !== undefined) return { ok: true, v2AccessKey };
  // Browsers never sign CORS preflights; s3rver answers them from the bucket's CORS config.
  if (req.method === 'OPTIONS') return { ok: true, accessKey: null };
  return deny('AccessDenied', 'Anonymous requests are not accepted.');
}

const unknownAccessKey = (): SigV4Verdict =>
  deny('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.');

const checkV2Key = (accessKey: string, secretFor: (accessKey: string) => string | undefined): SigV4Verdict =>
  secretFor(accessKey) === undefined ? unknownAccessKey() : { ok: true, accessKey };

/**
 * The headers SigV4 requires to be signed: host, and every x-amz-* header the request carries
 * (x-amz-date, x-amz-content-sha256, x-amz-copy-source, x-amz-meta-*…); a signed header that
 * is absent is refused too. The client's SignedHeaders list alone is not trusted: a header it
 * leaves out could change what the request does after it was signed.
 */
function unsignedHeaders(req: IncomingMessage, claim: SignedClaim): SigV4Verdict | undefined {
  const signed = new Set(claim.signedHeaders);
  if (!signed.has('host')) return deny('AccessDenied', 'The host header must be signed.');
  const missing = Object.keys(req.headers).filter((h) => h.startsWith('x-amz-') && !signed.has(h));
  if (missing.length > 0) {
    return deny(
      'AccessDenied',
      `There were headers present in the request which were not signed: ${missing.sort().join(', ')}`,
    );
  }
  const absent = claim.signedHeaders.filter((h) => req.headersDistinct[h] === undefined);
  if (absent.length > 0) {
    return deny('AccessDenied', `Signed headers are missing from the request: ${absent.join(', ')}`);
  }
  return undefined;
}

function checkClaim(
  req: IncomingMessage,
  rawPath: string,
  claim: SignedClaim,
  secretFor: (accessKey: string) => string | undefined,
): SigV4Verdict {
  const secret = secretFor(claim.accessKey);
  if (secret === undefined) return unknownAccessKey();
  const unsigned = unsignedHeaders(req, claim);
  if (unsigned) return unsigned;
  if (!claim.amzDate.startsWith(claim.scopeDate)) {
    return deny('SignatureDoesNotMatch', 'The credential scope date does not match the request date.');
  }
  if (!sameHex(expectedSignature(req, rawPath, claim, secret), claim.signature)) {
    return deny(
      'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided.',
    );
  }
  return { ok: true, accessKey: claim.accessKey };
}

/** The access key of a SigV2 request (header `AWS key:sig` or presigned `AWSAccessKeyId`). */
function sigV2AccessKey(req: IncomingMessage, query: [string, string][]): string | undefined {
  const header = /^AWS ([^:]+):/.exec(req.headers.authorization ?? '');
  if (header) return header[1];
  const get = (name: string) => query.find(([k]) => k === name)?.[1];
  return get('Signature') !== undefined ? get('AWSAccessKeyId') : undefined;
}

/**
 * Checks a request's signature against its access key's secret: SigV4 (header or presigned URL)
 * here. SigV2 (boto3's default for presigned URLs on custom endpoints) s3rver checks itself,
 * against the secret registered for the key; here only that the key is ours, since s3rver's
 * key registry is process-wide and holds its well-known S3RVER key.
 */
export function verifySigV4(
  req: IncomingMessage,
  secretFor: (accessKey: string) => string | undefined,
): SigV4Verdict {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  try {
    const claim = parseClaim(req, parseQuery(q < 0 ? '' : url.slice(q + 1)));
    if ('v2AccessKey' in claim) return checkV2Key(claim.v2AccessKey, secretFor);
    if ('ok' in claim) return claim;
    return checkClaim(req, q < 0 ? url : url.slice(0, q), claim, secretFor);
  } catch {
    // decodeURIComponent on a malformed escape
    return deny('InvalidURI', 'Could not parse the specified URI.', 400);
  }
}
