// Shared CLI plumbing: client options, output (human or --json), and error exit codes.
import { type Command, Option } from 'commander';
import { ApiError, FlotillaClient } from '../../client/api-client.ts';
import { isFlotillaError } from '../core/errors.ts';

export interface ClientFlags {
  endpoint: string;
  user: string;
  password?: string;
  token?: string;
  json?: boolean;
}

/** Adds --endpoint, --user, --password, --token and --json to a client command. */
export const withClientOptions = (cmd: Command): Command =>
  cmd
    .addOption(
      new Option('--endpoint <url>', 'manager URL').env('FLOTILLA_ENDPOINT').default('http://127.0.0.1:8080'),
    )
    .addOption(new Option('--user <user>', 'Basic auth user').default('oscar'))
    .addOption(
      new Option(
        '--password <password>',
        'Basic auth password (env FLOTILLA_ADMIN_PASSWORD or OSCAR_PASSWORD)',
      ),
    )
    .addOption(new Option('--token <token>', 'OIDC bearer token').env('FLOTILLA_TOKEN'))
    .option('--json', 'print JSON');

export const clientFrom = (flags: ClientFlags): FlotillaClient =>
  new FlotillaClient({
    endpoint: flags.endpoint,
    user: flags.user,
    password: flags.password ?? process.env.FLOTILLA_ADMIN_PASSWORD ?? process.env.OSCAR_PASSWORD,
    token: flags.token,
  });

export const printJson = (value: unknown): void => {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
};

/** A plain table with padded columns. */
export const printTable = (headers: string[], rows: string[][]): void => {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (c ?? '').padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  process.stdout.write(`${line(headers)}\n`);
  for (const r of rows) process.stdout.write(`${line(r)}\n`);
};

/** Progress goes to stderr so --json output on stdout stays clean. */
export const progress = (msg: string): void => {
  process.stderr.write(`${msg}\n`);
};

/** Runs a command body; prints errors as one line (or JSON) and sets the exit code. */
export const run =
  <A extends unknown[]>(fn: (...args: A) => Promise<void>) =>
  async (...args: A): Promise<void> => {
    try {
      await fn(...args);
    } catch (e) {
      const cmd = args[args.length - 1] as Command | undefined;
      const json = typeof cmd?.opts === 'function' && (cmd.opts() as { json?: boolean }).json;
      const code = e instanceof ApiError || isFlotillaError(e) ? e.code : 'ERROR';
      const message = (e as Error).message;
      if (json) process.stdout.write(`${JSON.stringify({ error: { code, message } })}\n`);
      else process.stderr.write(`error: ${message}${code !== 'ERROR' ? ` (${code})` : ''}\n`);
      process.exitCode = 1;
    }
  };
