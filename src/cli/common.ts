// Shared CLI plumbing: client options, output (human or --json), and error exit codes.
import { type Command, Option } from 'commander';
import { ApiError, FlotillaClient } from '../../client/api-client.ts';
import { isFlotillaError } from '../core/errors.ts';
import { loadClusters, resolveTarget, type Target } from './clusters.ts';

export interface ClientFlags {
  endpoint: string;
  user: string;
  password?: string;
  token?: string;
  /** A named cluster (`flotilla cluster add`, or oscar-cli's config). */
  cluster?: string;
  json?: boolean;
}

/** Whether --endpoint and --user were given (flag or environment) or left at their default. */
const given = new WeakMap<object, { endpoint: boolean; user: boolean }>();

/** Adds -c/--cluster, --endpoint, --user, --password, --token and --json to a client command. */
export const withClientOptions = (cmd: Command): Command =>
  cmd
    .addOption(
      new Option('-c, --cluster <name>', 'a named cluster (flotilla cluster list)').env('FLOTILLA_CLUSTER'),
    )
    .addOption(
      new Option(
        '--endpoint <url>',
        'manager URL (default: the default named cluster, else http://127.0.0.1:8080)',
      )
        .env('FLOTILLA_ENDPOINT')
        .default('http://127.0.0.1:8080'),
    )
    .addOption(new Option('--user <user>', 'Basic auth user').default('oscar'))
    .addOption(
      new Option(
        '--password <password>',
        'Basic auth password (env FLOTILLA_ADMIN_PASSWORD or OSCAR_PASSWORD)',
      ),
    )
    .addOption(new Option('--token <token>', 'OIDC bearer token').env('FLOTILLA_TOKEN'))
    .option('--json', 'print JSON')
    .hook('preAction', (_cmd, action) => {
      given.set(action.opts(), {
        endpoint: action.getOptionValueSource('endpoint') !== 'default',
        user: action.getOptionValueSource('user') !== 'default',
      });
    });

/** Whether the command was told its endpoint (flag or FLOTILLA_ENDPOINT). */
export const endpointGiven = (flags: ClientFlags): boolean => given.get(flags)?.endpoint ?? true;

/** Where a client command goes, from its flags and the named clusters. */
export const targetOf = (flags: ClientFlags, opts: { cluster?: string | null } = {}): Target => {
  const g = given.get(flags) ?? { endpoint: true, user: true };
  const cluster = opts.cluster === null ? undefined : (opts.cluster ?? flags.cluster);
  return resolveTarget(
    {
      endpoint: flags.endpoint,
      endpointGiven: g.endpoint,
      user: flags.user,
      userGiven: g.user,
      password: flags.password,
      token: flags.token,
      cluster,
    },
    loadClusters(),
  );
};

export const clientFor = (t: Target): FlotillaClient =>
  new FlotillaClient({
    endpoint: t.endpoint,
    user: t.user,
    password: t.password,
    token: t.token,
    insecure: t.insecure,
  });

export const clientFrom = (flags: ClientFlags): FlotillaClient => clientFor(targetOf(flags));

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
