// `flotilla cluster add NAME URL [--user U --password P | --token T]`, `cluster default NAME`,
// `cluster list`, `cluster remove NAME`: the named clusters of the client commands (-c NAME).
// Kept in ~/.config/flotilla/clusters.yaml (mode 0600, oscar-cli's layout); while that file
// does not exist oscar-cli's ~/.oscar-cli/config.yaml is read, and the first change here
// starts Flotilla's file from its clusters.
import type { Command } from 'commander';
import {
  CLUSTER_NAME_RE,
  type ClustersFile,
  describeAuth,
  loadClusters,
  type NamedCluster,
  saveClusters,
} from '../clusters.ts';
import { printJson, printTable, progress, run } from '../common.ts';

/** The file to change: Flotilla's, or a copy of oscar-cli's the first time. */
const editable = (): ClustersFile => {
  const { file } = loadClusters();
  return { oscar: { ...file.oscar }, ...(file.default ? { default: file.default } : {}) };
};

const checkName = (name: string): void => {
  if (!CLUSTER_NAME_RE.test(name)) {
    throw new Error(
      `cluster name "${name}" must be 1-63 letters, digits, ".", "_" or "-", starting with a letter or digit`,
    );
  }
};

export const registerCluster = (program: Command): void => {
  const cluster = program.command('cluster').description('named clusters for the client commands (-c NAME)');

  cluster
    .command('add')
    .description('add (or replace) a named cluster; the first one becomes the default')
    .argument('<name>')
    .argument('<url>', 'the manager URL, e.g. https://oscar.example.org')
    .option('--user <user>', 'Basic auth user (with --password)')
    .option('--password <password>', 'Basic auth password')
    .option('--token <token>', 'OIDC access token')
    .option('--insecure', 'do not verify the TLS certificate (ssl_verify: false)')
    .option('--json', 'print JSON')
    .action(
      run(
        async (
          name: string,
          url: string,
          opts: { user?: string; password?: string; token?: string; insecure?: boolean; json?: boolean },
        ) => {
          checkName(name);
          let parsed: URL;
          try {
            parsed = new URL(url);
          } catch {
            throw new Error(
              `"${url}" is not a URL: give the manager's address, e.g. https://oscar.example.org`,
            );
          }
          if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
            throw new Error(`the URL must be http or https, got ${parsed.protocol}`);
          }
          if (opts.token && (opts.user || opts.password)) {
            throw new Error('give either --user and --password, or --token');
          }
          if (opts.password !== undefined && !opts.user) throw new Error('--password needs --user');
          if (opts.user && opts.password === undefined) throw new Error('--user needs --password');
          const entry: NamedCluster = {
            endpoint: url.replace(/\/+$/, ''),
            ...(opts.user ? { auth_user: opts.user, auth_password: opts.password } : {}),
            ...(opts.token ? { oidc_token: opts.token } : {}),
            ssl_verify: !opts.insecure,
          };
          const file = editable();
          file.oscar[name] = entry;
          if (Object.keys(file.oscar).length === 1 || !file.default) file.default = name;
          const path = saveClusters(file);
          if (opts.json) return printJson({ added: name, default: file.default, file: path });
          process.stdout.write(
            `added cluster ${name} (${entry.endpoint})${file.default === name ? ', the default' : ''}\n`,
          );
          progress(`saved to ${path}`);
        },
      ),
    );

  cluster
    .command('default')
    .description('make a named cluster the default of the client commands')
    .argument('<name>')
    .action(
      run(async (name: string) => {
        const file = editable();
        if (!file.oscar[name]) {
          throw new Error(
            `cluster "${name}" is not defined: add it with \`flotilla cluster add ${name} URL\``,
          );
        }
        file.default = name;
        saveClusters(file);
        process.stdout.write(`default cluster: ${name}\n`);
      }),
    );

  cluster
    .command('remove')
    .description('forget a named cluster')
    .argument('<name>')
    .action(
      run(async (name: string) => {
        const file = editable();
        if (!file.oscar[name]) throw new Error(`cluster "${name}" is not defined`);
        delete file.oscar[name];
        if (file.default === name) delete file.default;
        saveClusters(file);
        process.stdout.write(`removed cluster ${name}\n`);
      }),
    );

  cluster
    .command('list')
    .description('list the named clusters (never their passwords or tokens)')
    .option('--json', 'print JSON')
    .action(
      run(async (opts: { json?: boolean }) => {
        const { file, path, fromOscarCli } = loadClusters();
        const rows = Object.entries(file.oscar).map(([name, c]) => ({
          name,
          endpoint: c.endpoint,
          auth: describeAuth(c),
          ssl_verify: c.ssl_verify !== false,
          default: file.default === name,
        }));
        if (opts.json) return printJson({ file: path ?? null, from_oscar_cli: fromOscarCli, clusters: rows });
        if (path) progress(`clusters from ${path}${fromOscarCli ? " (oscar-cli's config)" : ''}`);
        else progress('no named clusters yet: add one with `flotilla cluster add NAME URL`');
        printTable(
          ['NAME', 'ENDPOINT', 'AUTH', 'TLS', 'DEFAULT'],
          rows.map((r) => [
            r.name,
            r.endpoint,
            r.auth,
            r.ssl_verify ? 'verify' : 'insecure',
            r.default ? '*' : '',
          ]),
        );
      }),
    );
};
