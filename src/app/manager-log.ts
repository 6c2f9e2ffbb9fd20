// GET /system/logs: the manager's own recent log, for the admin (OSCAR serves its manager
// pod's log there). Lines come from the logger already censored (no tokens, passwords or
// keys); they are shown as text, one event a line, with the time when asked for.
import type { Principal } from '../core/auth/principal.ts';
import { fail } from '../core/errors.ts';

const LEVELS: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};

/** One pino JSON line as text: "LEVEL message {other fields}". */
export const formatLogLine = (line: string, timestamps: boolean): string => {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  if (record === null || typeof record !== 'object') return line;
  const { level, time, msg, pid: _pid, hostname: _host, cluster: _cluster, ...rest } = record;
  const head =
    `${LEVELS[level as number] ?? String(level ?? '')} ${typeof msg === 'string' ? msg : ''}`.trim();
  const tail = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : '';
  return `${timestamps && typeof time === 'string' ? `${time} ` : ''}${head}${tail}`;
};

export class ManagerLog {
  constructor(private readonly ring: { lines(): string[] } | undefined) {}

  /**
   * The latest lines, oldest first. `previous` asks for the log of the manager's previous
   * run, which is not kept (it lived in that process): an empty text, as OSCAR answers for a
   * pod that did not restart.
   */
  read(principal: Principal, opts: { timestamps: boolean; previous: boolean }): string {
    if (principal.kind !== 'admin') fail('FORBIDDEN', "only the admin may read the manager's log");
    if (opts.previous) return '';
    const lines = this.ring?.lines() ?? [];
    return lines.map((l) => formatLogLine(l, opts.timestamps)).join('\n') + (lines.length ? '\n' : '');
  }
}
