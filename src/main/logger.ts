// One pino logger per manager. Secrets never reach a log line: known secret paths are
// censored, and use cases never log tokens, passwords or keys in messages.
import pino, { type Logger } from 'pino';

export const REDACT_PATHS = [
  'req.headers.authorization',
  'headers.authorization',
  '*.password',
  '*.auth_password',
  '*.secret_key',
  '*.secretKey',
  '*.refresh_token',
  '*.refreshToken',
  '*.token',
  '*.private_key',
  '*.privateKey',
];

export const createLogger = (opts: {
  level: string;
  clusterId: string;
  destination?: pino.DestinationStream;
}): Logger =>
  pino(
    {
      level: opts.level,
      base: { cluster: opts.clusterId },
      redact: { paths: REDACT_PATHS, censor: '***' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.destination,
  );
