// One registry of error codes. Every error Flotilla answers with is one of these, so
// clients can rely on `code` and the HTTP layer maps code → status in one place.

export const ERROR_CODES = {
  BAD_REQUEST: { status: 400, title: 'bad request' },
  VALIDATION_FAILED: { status: 400, title: 'validation failed' },
  INVALID_JSON: { status: 400, title: 'malformed JSON' },
  INVALID_YAML: { status: 400, title: 'malformed YAML' },
  INVALID_NAME: { status: 400, title: 'invalid name' },
  FEDERATION_INVALID: { status: 400, title: 'invalid federation block' },
  UNAUTHORIZED: { status: 401, title: 'unauthorized' },
  FORBIDDEN: { status: 403, title: 'forbidden' },
  NOT_FOUND: { status: 404, title: 'not found' },
  SERVICE_NOT_FOUND: { status: 404, title: 'service not found' },
  JOB_NOT_FOUND: { status: 404, title: 'job not found' },
  BUCKET_NOT_FOUND: { status: 404, title: 'bucket not found' },
  OBJECT_NOT_FOUND: { status: 404, title: 'object not found' },
  METHOD_NOT_ALLOWED: { status: 405, title: 'method not allowed' },
  SERVICE_EXISTS: { status: 409, title: 'service already exists' },
  CONFLICT: { status: 409, title: 'conflict' },
  STALE_REVISION: { status: 409, title: 'stale revision' },
  /** A delegated job's hold was abandoned by its origin or expired: it never runs here (ADR 13). */
  DELEGATION_DROPPED: { status: 409, title: 'delegation hand-over dropped' },
  /** An abandon of a delegated job that its origin had already confirmed here (ADR 13). */
  DELEGATION_CONFIRMED: { status: 409, title: 'delegation hand-over already confirmed' },
  GONE: { status: 410, title: 'gone' },
  LENGTH_REQUIRED: { status: 411, title: 'length required' },
  PAYLOAD_TOO_LARGE: { status: 413, title: 'payload too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'unsupported media type' },
  RATE_LIMITED: { status: 429, title: 'too many requests' },
  JOB_FAILED: { status: 502, title: 'job failed' },
  PEER_UNREACHABLE: { status: 502, title: 'peer unreachable' },
  FEDERATION_FAILED: { status: 502, title: 'federation change failed' },
  /** What this manager cannot do as it runs (most often: it needs the kubernetes executor). */
  NOT_IMPLEMENTED: { status: 501, title: 'not implemented' },
  UNAVAILABLE: { status: 503, title: 'service unavailable' },
  TIMEOUT: { status: 504, title: 'timed out' },
  INTERNAL: { status: 500, title: 'internal error' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An error that knows its stable code; the message is safe to show to the caller. */
export class FlotillaError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'FlotillaError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.details = details;
  }
}

export const fail = (code: ErrorCode, message: string, details?: Record<string, unknown>): never => {
  throw new FlotillaError(code, message, details);
};

export const isFlotillaError = (e: unknown): e is FlotillaError => e instanceof FlotillaError;
