// Maps every error to the one JSON shape {code, message, statusCode}. Known errors keep
// their status; anything unexpected is a 500 with a generic message (details only logged).
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_CODES, type ErrorCode, isFlotillaError } from '../core/errors.ts';

export interface ErrorBody {
  code: ErrorCode;
  message: string;
  statusCode: number;
  details?: Record<string, unknown>;
}

export const errorBody = (
  code: ErrorCode,
  message: string,
  details?: Record<string, unknown>,
): ErrorBody => ({
  code,
  message,
  statusCode: ERROR_CODES[code].status,
  ...(details ? { details } : {}),
});

// PostgreSQL: too many connections, admin shutdown, connection failures; Node: refused/reset.
const UNAVAILABLE_CODES = new Set([
  '53300',
  '57P01',
  '57P03',
  '08000',
  '08001',
  '08003',
  '08006',
  'ECONNREFUSED',
  'ECONNRESET',
]);

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_INVALID_JSON_BODY: 'INVALID_JSON',
  FST_ERR_BAD_URL: 'BAD_REQUEST',
  FST_ERR_MAX_PARAM_LENGTH: 'BAD_REQUEST',
  FST_ERR_ASYNC_CONSTRAINT: 'BAD_REQUEST',
};

const describeValidation = (err: FastifyError): string => {
  const part = (err as { validationContext?: string }).validationContext ?? 'request';
  const items = (err.validation ?? []).slice(0, 5).map((v) => {
    const where = v.instancePath ? v.instancePath.replace(/^\//, '').replaceAll('/', '.') : '';
    return where ? `${where}: ${v.message}` : String(v.message);
  });
  return `invalid ${part}: ${items.join('; ')}`;
};

export const toErrorBody = (err: unknown): ErrorBody => {
  if (isFlotillaError(err)) return errorBody(err.code, err.message, err.details);
  const fe = err as FastifyError;
  if (fe?.validation) return errorBody('VALIDATION_FAILED', describeValidation(fe));
  const mapped = fe?.code ? FASTIFY_CODES[fe.code] : undefined;
  if (mapped === 'PAYLOAD_TOO_LARGE') return errorBody(mapped, 'request body is larger than the limit');
  if (mapped === 'INVALID_JSON') return errorBody(mapped, `malformed JSON body: ${fe.message}`);
  if (mapped) return errorBody(mapped, fe.message);
  if (fe instanceof SyntaxError || fe?.statusCode === 400) return errorBody('BAD_REQUEST', fe.message);
  if (typeof fe?.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    const code = (Object.keys(ERROR_CODES) as ErrorCode[]).find(
      (c) => ERROR_CODES[c].status === fe.statusCode,
    );
    return errorBody(code ?? 'BAD_REQUEST', fe.message);
  }
  // The database (or another dependency) refusing or dropping connections is not a bug.
  const code =
    (err as { code?: string; cause?: { code?: string } })?.code ??
    (err as { cause?: { code?: string } })?.cause?.code;
  if (code && UNAVAILABLE_CODES.has(code))
    return errorBody('UNAVAILABLE', 'a dependency of the manager is unavailable; try again');
  return errorBody('INTERNAL', 'internal error; see the manager log');
};

/** Database errors quote the query's parameters (service definitions, tokens, secrets): never log them. */
export const scrubForLog = (text: string | undefined): string | undefined =>
  text?.replace(/\nparams: [\s\S]*?(?=\n\s+at |$)/g, '\nparams: [redacted]');

const sendError = (err: FastifyError, req: FastifyRequest, reply: FastifyReply): void => {
  const body = toErrorBody(err);
  // 501 is an answer (this manager cannot do that), not a failure to log.
  if (body.statusCode >= 500 && body.code !== 'NOT_IMPLEMENTED') {
    const logged = { message: scrubForLog(err.message), code: err.code, stack: scrubForLog(err.stack) };
    req.log.error({ err: logged }, 'request failed');
  }
  if (body.code === 'UNSUPPORTED_MEDIA_TYPE') {
    const type = String(req.headers['content-type'] ?? '').slice(0, 100);
    body.message = `unsupported Content-Type "${type}": send application/json or application/yaml`;
  }
  if (body.statusCode === 401) reply.header('www-authenticate', 'Basic realm="flotilla", Bearer');
  reply.status(body.statusCode).send(body);
};

/** Fastify's `frameworkErrors` option: errors raised before routing (bad URL encoding, long params). */
export const frameworkErrorHandler = (err: FastifyError, req: FastifyRequest, reply: FastifyReply): void =>
  sendError(err, req, reply);

export const installErrorHandling = (app: FastifyInstance): void => {
  app.setErrorHandler(sendError);
  app.setNotFoundHandler((req, reply) => {
    reply.status(404).send(errorBody('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`));
  });
};
