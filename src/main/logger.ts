// One pino logger per manager. Secrets never reach a log line: known secret paths are
// censored, and use cases never log tokens, passwords or keys in messages. The latest lines
// are also kept in memory (bounded) for GET /system/logs, already censored.
import pino, { type Logger } from 'pino';

/** The latest log lines (pino's JSON, one per line), at most `maxLines` and `maxBytes`. */
export class LogRing {
  private readonly items: string[] = [];
  private bytes = 0;

  constructor(
    private readonly maxLines = 2000,
    private readonly maxBytes = 1024 * 1024,
  ) {}

  /** pino's destination interface. */
  write(chunk: string): void {
    for (const line of chunk.split('\n')) {
      if (!line) continue;
      // One huge line must not push every other line out.
      const kept = line.length > 16_384 ? `${line.slice(0, 16_384)}…` : line;
      this.items.push(kept);
      this.bytes += kept.length;
    }
    while (this.items.length > this.maxLines || this.bytes > this.maxBytes) {
      this.bytes -= this.items.shift()?.length ?? 0;
    }
  }

  lines(): string[] {
    return [...this.items];
  }
}

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
  /** Also keeps the lines here (the manager's own log, GET /system/logs). */
  ring?: LogRing;
}): Logger =>
  pino(
    {
      level: opts.level,
      base: { cluster: opts.clusterId },
      redact: { paths: REDACT_PATHS, censor: '***' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.ring
      ? pino.multistream([
          { level: 'trace', stream: opts.destination ?? process.stdout },
          { level: 'trace', stream: opts.ring },
        ])
      : opts.destination,
  );
