// Maps S3 SDK errors to FlotillaError. The SDK error object carries the raw request and
// response, so only its code, status and a redacted message cross this boundary.
import { type ErrorCode, FlotillaError } from '../../core/errors.ts';

export interface S3ErrorContext {
  op: string;
  bucket?: string;
  key?: string;
}

interface SdkErrorShape {
  name?: string;
  Code?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

/** The S3 error code (NoSuchKey, NotFound, ...) or the network error code (ECONNREFUSED). */
export const s3ErrorCode = (err: unknown): string => {
  const e = (err ?? {}) as SdkErrorShape;
  return e.Code ?? e.code ?? e.name ?? 'Error';
};

export const s3HttpStatus = (err: unknown): number | undefined =>
  (err as SdkErrorShape | undefined)?.$metadata?.httpStatusCode;

const MISSING_BUCKET = new Set(['NoSuchBucket']);
const MISSING_OBJECT = new Set(['NoSuchKey', 'NotFound']);
const CREDENTIAL_REJECTED = new Set(['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch']);

const describe = (ctx: S3ErrorContext): string =>
  ctx.key === undefined ? `bucket "${ctx.bucket ?? ''}"` : `object "${ctx.bucket}/${ctx.key}"`;

/** Removes every occurrence of each secret from text. */
export const redact = (text: string, secrets: readonly string[]): string =>
  secrets.filter((s) => s.length > 0).reduce((acc, s) => acc.split(s).join('***'), text);

const classify = (code: string, status: number | undefined): ErrorCode => {
  if (MISSING_BUCKET.has(code)) return 'BUCKET_NOT_FOUND';
  if (MISSING_OBJECT.has(code)) return 'OBJECT_NOT_FOUND';
  if (code === 'BucketNotEmpty') return 'CONFLICT';
  if (code === 'InvalidBucketName') return 'INVALID_NAME';
  if (CREDENTIAL_REJECTED.has(code)) return 'UNAVAILABLE';
  if (status !== undefined && status >= 400 && status < 500) return 'BAD_REQUEST';
  // Network failures and 5xx: the storage is not usable right now.
  return 'UNAVAILABLE';
};

export const toFlotillaError = (
  err: unknown,
  ctx: S3ErrorContext,
  secrets: readonly string[],
): FlotillaError => {
  if (err instanceof FlotillaError) return err;
  const code = s3ErrorCode(err);
  const status = s3HttpStatus(err);
  const flotillaCode = classify(code, status);
  const what = describe(ctx);
  const message =
    flotillaCode === 'BUCKET_NOT_FOUND'
      ? `bucket "${ctx.bucket}" not found`
      : flotillaCode === 'OBJECT_NOT_FOUND'
        ? `${what} not found`
        : `object storage ${ctx.op} on ${what} failed: ${code}: ${(err as SdkErrorShape | undefined)?.message ?? ''}`;
  return new FlotillaError(flotillaCode, redact(message, secrets), { s3Code: code, httpStatus: status });
};
