// Named clusters for the client commands (DESIGN §2): ~/.config/flotilla/clusters.yaml,
// written by `flotilla cluster add` (mode 0600), in oscar-cli's own layout so either file can
// be copied to the other; when it is absent, oscar-cli's ~/.oscar-cli/config.yaml is read, so
// an oscar-cli user's clusters just work. The layout (grycap/oscar-cli pkg/config, pkg/cluster):
//   oscar:
//     <name>: {endpoint, auth_user, auth_password, oidc_token, oidc_account_name,
//              oidc_refresh_token, ssl_verify, memory, log_level}
//   default: <name>
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';

export interface NamedCluster {
  endpoint: string;
  auth_user?: string;
  auth_password?: string;
  /** An OIDC access token (Flotilla's `--token`; oscar-cli's `--oidc-token`). */
  oidc_token?: string;
  /** oscar-cli's oidc-agent account and refresh token: Flotilla cannot use these. */
  oidc_account_name?: string;
  oidc_refresh_token?: string;
  ssl_verify?: boolean;
  [other: string]: unknown;
}

export interface ClustersFile {
  oscar: Record<string, NamedCluster>;
  default?: string;
}

export interface LoadedClusters {
  file: ClustersFile;
  /** Where it was read from, or undefined when there is no file at all. */
  path: string | undefined;
  /** Whether it is oscar-cli's file (read only; Flotilla writes its own). */
  fromOscarCli: boolean;
}

export const CLUSTER_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** Flotilla's file: $XDG_CONFIG_HOME/flotilla/clusters.yaml, else ~/.config/flotilla/clusters.yaml. */
export const flotillaClustersPath = (env: NodeJS.ProcessEnv = process.env): string =>
  join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'flotilla', 'clusters.yaml');

export const oscarCliConfigPath = (): string => join(homedir(), '.oscar-cli', 'config.yaml');

const isObj = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/** Reads and checks one file; throws an Error naming the file and the problem. */
const readClustersFile = (path: string): ClustersFile => {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8'), { logLevel: 'error' });
  } catch (e) {
    throw new Error(`${path} is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) return { oscar: {} };
  if (!isObj(doc)) throw new Error(`${path} must be a map with an "oscar" key`);
  const oscar = doc.oscar ?? {};
  if (!isObj(oscar)) throw new Error(`${path}: "oscar" must be a map of cluster name to cluster`);
  for (const [name, c] of Object.entries(oscar)) {
    if (!isObj(c) || typeof c.endpoint !== 'string' || c.endpoint === '') {
      throw new Error(`${path}: cluster "${name}" has no endpoint`);
    }
  }
  const dflt = doc.default;
  if (dflt !== undefined && dflt !== null && typeof dflt !== 'string') {
    throw new Error(`${path}: "default" must be a cluster name`);
  }
  return {
    oscar: oscar as Record<string, NamedCluster>,
    ...(typeof dflt === 'string' && dflt ? { default: dflt } : {}),
  };
};

/** Flotilla's file when it exists, else oscar-cli's, else none. */
export const loadClusters = (env: NodeJS.ProcessEnv = process.env): LoadedClusters => {
  const own = flotillaClustersPath(env);
  if (existsSync(own)) return { file: readClustersFile(own), path: own, fromOscarCli: false };
  const oscarCli = oscarCliConfigPath();
  if (existsSync(oscarCli)) return { file: readClustersFile(oscarCli), path: oscarCli, fromOscarCli: true };
  return { file: { oscar: {} }, path: undefined, fromOscarCli: false };
};

/**
 * Writes Flotilla's file (never oscar-cli's): the directory 0700, the file 0600 (it holds
 * passwords and tokens), replaced in one rename so a reader never sees half a file.
 */
export const saveClusters = (file: ClustersFile, env: NodeJS.ProcessEnv = process.env): string => {
  const path = flotillaClustersPath(env);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  const text = `# Flotilla's named clusters (oscar-cli's layout), written by \`flotilla cluster add\`.\n${toYaml(file)}`;
  writeFileSync(tmp, text, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
  return path;
};

/** How a cluster authenticates, said without its secret. */
export const describeAuth = (c: NamedCluster): string => {
  if (c.oidc_token) return 'token';
  if (c.oidc_account_name) return `oidc-agent (${c.oidc_account_name})`;
  if (c.oidc_refresh_token) return 'refresh token';
  if (c.auth_user) return `basic (${c.auth_user})`;
  return 'none';
};

export interface Target {
  endpoint: string;
  user?: string;
  password?: string;
  token?: string;
  insecure?: boolean;
}

/** What a client command was given, and whether each was given or defaulted. */
export interface TargetFlags {
  endpoint: string;
  endpointGiven: boolean;
  user: string;
  userGiven: boolean;
  password?: string;
  token?: string;
  cluster?: string;
}

/** Where a client command goes and with which credentials (precedence in docs/operations.md). */
export const resolveTarget = (
  flags: TargetFlags,
  clusters: LoadedClusters,
  env: NodeJS.ProcessEnv = process.env,
): Target => {
  const name = flags.cluster ?? (flags.endpointGiven ? undefined : clusters.file.default);
  let named: NamedCluster | undefined;
  if (name !== undefined) {
    named = clusters.file.oscar[name];
    if (!named) {
      const where = clusters.path ?? flotillaClustersPath(env);
      const known = Object.keys(clusters.file.oscar);
      throw new Error(
        `cluster "${name}" is not defined in ${where}${known.length ? ` (known: ${known.join(', ')})` : ''}: add it with \`flotilla cluster add ${name} URL\``,
      );
    }
  }
  const endpoint = flags.endpointGiven || !named ? flags.endpoint : named.endpoint;
  // Explicit credentials win; then the cluster's; then the admin password from the environment.
  if (flags.token) return { endpoint, token: flags.token, insecure: named?.ssl_verify === false };
  if (flags.password !== undefined) {
    return { endpoint, user: flags.user, password: flags.password, insecure: named?.ssl_verify === false };
  }
  if (named?.oidc_token) return { endpoint, token: named.oidc_token, insecure: named.ssl_verify === false };
  if (named && !named.auth_user && (named.oidc_account_name || named.oidc_refresh_token)) {
    throw new Error(
      `cluster "${name}" signs in through ${describeAuth(named)}, which Flotilla cannot use: pass an access token with --token`,
    );
  }
  if (named?.auth_user) {
    return {
      endpoint,
      user: flags.userGiven ? flags.user : named.auth_user,
      password: named.auth_password ?? '',
      insecure: named.ssl_verify === false,
    };
  }
  const password = env.FLOTILLA_ADMIN_PASSWORD ?? env.OSCAR_PASSWORD;
  return {
    endpoint,
    ...(password !== undefined ? { user: flags.user, password } : {}),
    insecure: named?.ssl_verify === false,
  };
};
