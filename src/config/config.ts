// The only reader of flags and environment. Every setting is validated here, so a bad
// value stops start-up with a message naming the flag (and its environment twin).
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { MAX_HOLD_SECONDS } from '../core/delegation/hand-over.ts';
import { parseCpuMillis, parseMemoryBytes } from '../core/fdl/quantity.ts';
import { parsePeerAllow } from '../core/federation/peer-allow.ts';
import { TIERS, type Tier } from '../core/tier.ts';

export { TIERS, type Tier };

export interface Config {
  /** What /system/config calls the deployment (OSCAR's `config.name`, default "oscar"). */
  name: string;
  port: number;
  host: string;
  clusterId: string;
  /** This manager among the replicas of one cluster (default: from the data dir, stable across restarts). */
  replicaId: string;
  dataDir: string;
  /** Where job work dirs live: outside the data dir, reachable by the sandbox user. */
  workDir: string;
  /** Port of the embedded S3 server (0: any free port). */
  s3Port: number;
  /** undefined: generated at first start and kept (hashed) in the store. */
  adminPassword: string | undefined;
  cpusMillis: number;
  memoryBytes: number;
  nodes: number;
  tier: Tier;
  /** This manager's address for other clusters, as configured or derived. Without
   * `--public-url` and with port 0 its port is only known once listening: consumers read the
   * manager's `publicUrl()`, never this field after start. */
  publicUrl: string;
  /** Whether `publicUrl` was configured (else derived from host and port). */
  publicUrlConfigured: boolean;
  databaseUrl: string | undefined;
  valkeyUrl: string | undefined;
  oidcIssuers: string[];
  /** The client this manager uses to exchange refresh tokens at the issuer. */
  oidcClient:
    | { clientId: string; clientSecret: string | undefined; resource: string | undefined }
    | undefined;
  secretKey: string | undefined;
  s3: { endpoint: string; accessKey: string; secretKey: string; region: string } | undefined;
  jobTimeoutMs: number;
  /** Seconds replicas hold a job delegated from here for the confirm (ADR 13). */
  delegationHoldSeconds: number;
  /** The jobs' network: isolated (outside, not the host's loopback), host, or none. */
  jobNetwork: JobNetwork;
  /** The uids a root manager gives its running jobs, one each. */
  jobUids: { first: number; last: number };
  bodyLimitBytes: number;
  logLevel: string;
  /** Where jobs run: processes on this machine, or Jobs on a Kubernetes cluster. */
  executor:
    | { kind: 'process' }
    | {
        kind: 'kubernetes';
        kubeconfig: string | undefined;
        namespace: string;
        /** Whose keys pods get for this cluster's store when no scoped keys exist (external S3). */
        jobStorageKeys: 'scoped' | 'manager';
        /** Host of exposed services' Ingress rules (OSCAR's INGRESS_HOST); undefined: host-less. */
        ingressHost?: string;
      };
  /** The mTLS peer channel (§6): undefined when `--peer-listen off`. `explicit`: configured,
   * so failing to bind is fatal; the default (public port + 1) only warns. */
  peerListen: { host: string; port: number; explicit: boolean } | undefined;
  /** Addresses and host names peers may have (`--peer-allow`); undefined: any. */
  peerAllow: string[] | undefined;
  /** Audit rows older than this move to the cold table (default 90 days). */
  auditColdAfterMs: number;
}

export const JOB_NETWORKS = ['isolated', 'host', 'none'] as const;
export type JobNetwork = (typeof JOB_NETWORKS)[number];

/** Raw values as commander hands them over (strings), keyed by flag name. */
export type FlagValues = Partial<Record<keyof typeof FLAGS, string | undefined>>;

/** Each setting: its flag, its environment twins (first wins), its default. */
export const FLAGS = {
  name: { flag: '--name', env: ['FLOTILLA_NAME'], default: 'oscar' },
  port: { flag: '--port', env: ['FLOTILLA_PORT'], default: '8080' },
  host: { flag: '--host', env: ['FLOTILLA_HOST'], default: '127.0.0.1' },
  clusterId: { flag: '--cluster-id', env: ['FLOTILLA_CLUSTER_ID'], default: 'local' },
  replicaId: { flag: '--replica-id', env: ['FLOTILLA_REPLICA_ID'], default: undefined },
  dataDir: { flag: '--data-dir', env: ['FLOTILLA_DATA_DIR'], default: './.flotilla' },
  workDir: { flag: '--work-dir', env: ['FLOTILLA_WORK_DIR'], default: undefined },
  s3Port: { flag: '--s3-port', env: ['FLOTILLA_S3_PORT'], default: '0' },
  adminPassword: {
    flag: '--admin-password',
    env: ['FLOTILLA_ADMIN_PASSWORD', 'OSCAR_PASSWORD'],
    default: undefined,
  },
  cpus: { flag: '--cpus', env: ['FLOTILLA_CPUS'], default: '4' },
  memory: { flag: '--memory', env: ['FLOTILLA_MEMORY'], default: '4Gi' },
  nodes: { flag: '--nodes', env: ['FLOTILLA_NODES'], default: '1' },
  tier: { flag: '--tier', env: ['FLOTILLA_TIER'], default: undefined },
  publicUrl: { flag: '--public-url', env: ['FLOTILLA_PUBLIC_URL'], default: undefined },
  databaseUrl: { flag: '--database-url', env: ['DATABASE_URL'], default: undefined },
  valkeyUrl: { flag: '--valkey-url', env: ['VALKEY_URL', 'REDIS_URL'], default: undefined },
  oidcIssuers: { flag: '--oidc-issuers', env: ['FLOTILLA_OIDC_ISSUERS'], default: '' },
  oidcClientId: { flag: '--oidc-client-id', env: ['FLOTILLA_OIDC_CLIENT_ID'], default: undefined },
  oidcClientSecret: {
    flag: '--oidc-client-secret',
    env: ['FLOTILLA_OIDC_CLIENT_SECRET'],
    default: undefined,
  },
  oidcResource: { flag: '--oidc-resource', env: ['FLOTILLA_OIDC_RESOURCE'], default: undefined },
  secretKey: { flag: '--secret-key', env: ['FLOTILLA_SECRET_KEY'], default: undefined },
  s3Endpoint: { flag: '--s3-endpoint', env: ['FLOTILLA_S3_ENDPOINT'], default: undefined },
  s3AccessKey: { flag: '--s3-access-key', env: ['FLOTILLA_S3_ACCESS_KEY'], default: undefined },
  s3SecretKey: { flag: '--s3-secret-key', env: ['FLOTILLA_S3_SECRET_KEY'], default: undefined },
  s3Region: { flag: '--s3-region', env: ['FLOTILLA_S3_REGION'], default: 'us-east-1' },
  jobTimeout: { flag: '--job-timeout', env: ['FLOTILLA_JOB_TIMEOUT'], default: '300' },
  delegationHold: { flag: '--delegation-hold', env: ['FLOTILLA_DELEGATION_HOLD'], default: '120' },
  jobNetwork: { flag: '--job-network', env: ['FLOTILLA_JOB_NETWORK'], default: 'isolated' },
  jobUids: { flag: '--job-uids', env: ['FLOTILLA_JOB_UIDS'], default: '10000000-10065535' },
  bodyLimit: { flag: '--body-limit', env: ['FLOTILLA_BODY_LIMIT'], default: '50Mi' },
  logLevel: { flag: '--log-level', env: ['FLOTILLA_LOG_LEVEL'], default: 'info' },
  executor: { flag: '--executor', env: ['FLOTILLA_EXECUTOR'], default: 'process' },
  kubeconfig: { flag: '--kubeconfig', env: ['KUBECONFIG'], default: undefined },
  ingressHost: { flag: '--ingress-host', env: ['FLOTILLA_INGRESS_HOST'], default: undefined },
  namespace: { flag: '--namespace', env: ['FLOTILLA_NAMESPACE'], default: 'flotilla-svc' },
  peerListen: { flag: '--peer-listen', env: ['FLOTILLA_PEER_LISTEN'], default: undefined },
  peerAllow: { flag: '--peer-allow', env: ['FLOTILLA_PEER_ALLOW'], default: undefined },
  jobStorageKeys: { flag: '--job-storage-keys', env: ['FLOTILLA_JOB_STORAGE_KEYS'], default: 'scoped' },
  auditColdAfter: { flag: '--audit-cold-after', env: ['FLOTILLA_AUDIT_COLD_AFTER'], default: '7776000' },
} as const;

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const name = (key: keyof typeof FLAGS): string => `${FLAGS[key].flag} (${FLAGS[key].env.join(' or ')})`;

const pick = (key: keyof typeof FLAGS, flags: FlagValues, env: NodeJS.ProcessEnv): string | undefined => {
  const fromFlag = flags[key];
  if (fromFlag !== undefined) return fromFlag;
  for (const e of FLAGS[key].env) if (env[e] !== undefined && env[e] !== '') return env[e];
  return FLAGS[key].default;
};

const int = (key: keyof typeof FLAGS, raw: string, min: number, max: number): number => {
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new ConfigError(`${name(key)} must be a whole number from ${min} to ${max}, got "${raw}"`);
  }
  return n;
};

const url = (key: keyof typeof FLAGS, raw: string, protocols: string[]): string => {
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    // Never echo a URL that may carry credentials.
    throw new ConfigError(`${name(key)} is not a valid URL`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(`${name(key)} must use ${protocols.join(' or ')}, got ${parsed.protocol}`);
  }
  return raw;
};

const clusterIdSchema = z.string().regex(/^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/);

/** Reads and validates the configuration; throws ConfigError naming the first bad setting. */
export const loadConfig = (flags: FlagValues, env: NodeJS.ProcessEnv = process.env): Config => {
  const get = (key: keyof typeof FLAGS) => pick(key, flags, env);

  const deploymentName = get('name')!;
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(deploymentName)) {
    throw new ConfigError(
      `${name('name')} must be a DNS label (1-63 lowercase letters, digits or "-"), got "${deploymentName}"`,
    );
  }
  const port = int('port', get('port')!, 0, 65535);
  const host = get('host')!;
  const clusterId = get('clusterId')!;
  if (!clusterIdSchema.safeParse(clusterId).success) {
    throw new ConfigError(
      `${name('clusterId')} must be 1-63 letters, digits, "-", "_" or ".", got "${clusterId}"`,
    );
  }
  const dataDir = resolve(get('dataDir')!);
  const workDirRaw = get('workDir');
  // Default: a folder per data dir under the system temp dir (the data dir is 0700, so a
  // sandboxed job could not reach a work dir inside it).
  const workDir = workDirRaw
    ? resolve(workDirRaw)
    : join(tmpdir(), 'flotilla-work', createHash('sha256').update(dataDir).digest('hex').slice(0, 12));
  if (workDir === dataDir || workDir.startsWith(`${dataDir}/`)) {
    throw new ConfigError(`${name('workDir')} must be outside the data dir ${dataDir}`);
  }
  const s3Port = int('s3Port', get('s3Port')!, 0, 65535);
  const replicaId =
    get('replicaId') ?? `${clusterId}-${createHash('sha256').update(dataDir).digest('hex').slice(0, 8)}`;
  if (!clusterIdSchema.safeParse(replicaId).success) {
    throw new ConfigError(`${name('replicaId')} must be 1-63 letters, digits, "-", "_" or "."`);
  }

  const adminPassword = get('adminPassword');
  if (adminPassword !== undefined && adminPassword.length < 2) {
    throw new ConfigError(`${name('adminPassword')} must have at least 2 characters`);
  }

  const cpusRaw = get('cpus')!;
  const cpusMillis = parseCpuMillis(cpusRaw);
  if (!cpusMillis || cpusMillis <= 0)
    throw new ConfigError(`${name('cpus')} must be a positive number of cores, got "${cpusRaw}"`);
  const memRaw = get('memory')!;
  const memoryBytes = parseMemoryBytes(memRaw);
  if (!memoryBytes || memoryBytes <= 0)
    throw new ConfigError(`${name('memory')} must be a quantity such as 4Gi, got "${memRaw}"`);
  const nodes = int('nodes', get('nodes')!, 1, 1000);

  const databaseUrl = get('databaseUrl');
  if (databaseUrl) url('databaseUrl', databaseUrl, ['postgres:', 'postgresql:']);
  const valkeyUrl = get('valkeyUrl');
  if (valkeyUrl) url('valkeyUrl', valkeyUrl, ['redis:', 'rediss:', 'valkey:', 'valkeys:']);

  const tierRaw = get('tier');
  let tier: Tier;
  if (tierRaw !== undefined) {
    if (!(TIERS as readonly string[]).includes(tierRaw)) {
      throw new ConfigError(`${name('tier')} must be one of ${TIERS.join(', ')}, got "${tierRaw}"`);
    }
    tier = tierRaw as Tier;
  } else tier = databaseUrl ? (valkeyUrl ? 'federated' : 'standalone') : 'local';
  if (tier !== 'local' && !databaseUrl) {
    throw new ConfigError(`tier "${tier}" needs a PostgreSQL URL: set ${name('databaseUrl')}`);
  }
  if (tier === 'federated' && !valkeyUrl) {
    throw new ConfigError(`tier "federated" needs Valkey/Redis: set ${name('valkeyUrl')}`);
  }

  // A wildcard listens everywhere: others reach it on loopback; an IPv6 literal needs brackets.
  const publicHost = (h: string) =>
    h === '0.0.0.0' || h === '::' ? '127.0.0.1' : h.includes(':') ? `[${h}]` : h;
  const publicUrlRaw = get('publicUrl');
  const publicUrl = publicUrlRaw
    ? url('publicUrl', publicUrlRaw, ['http:', 'https:']).replace(/\/+$/, '')
    : `http://${publicHost(host)}:${port}`;

  const oidcIssuers = (get('oidcIssuers') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => url('oidcIssuers', s, ['http:', 'https:']).replace(/\/+$/, ''));

  const clientId = get('oidcClientId');
  const oidcClient = clientId
    ? { clientId, clientSecret: get('oidcClientSecret'), resource: get('oidcResource') }
    : undefined;

  const secretKey = get('secretKey');
  if (
    secretKey !== undefined &&
    !/^[0-9a-fA-F]{64}$/.test(secretKey) &&
    !/^[A-Za-z0-9+/]{43}=$/.test(secretKey)
  ) {
    throw new ConfigError(`${name('secretKey')} must be 32 bytes as 64 hex characters or base64`);
  }

  const s3Endpoint = get('s3Endpoint');
  let s3: Config['s3'];
  if (s3Endpoint) {
    url('s3Endpoint', s3Endpoint, ['http:', 'https:']);
    const accessKey = get('s3AccessKey');
    const secret = get('s3SecretKey');
    if (!accessKey) throw new ConfigError(`${name('s3AccessKey')} is required with ${FLAGS.s3Endpoint.flag}`);
    if (!secret) throw new ConfigError(`${name('s3SecretKey')} is required with ${FLAGS.s3Endpoint.flag}`);
    s3 = { endpoint: s3Endpoint.replace(/\/+$/, ''), accessKey, secretKey: secret, region: get('s3Region')! };
  }
  // Without an S3 endpoint every tier uses the embedded store in the data dir (the start-up
  // log says so); production deployments set one.

  const jobTimeoutMs = int('jobTimeout', get('jobTimeout')!, 1, 7 * 24 * 3600) * 1000;
  const delegationHoldSeconds = int('delegationHold', get('delegationHold')!, 1, MAX_HOLD_SECONDS);
  const jobNetwork = get('jobNetwork')! as JobNetwork;
  if (!(JOB_NETWORKS as readonly string[]).includes(jobNetwork)) {
    throw new ConfigError(
      `${name('jobNetwork')} must be one of ${JOB_NETWORKS.join(', ')}, got "${jobNetwork}"`,
    );
  }
  const uidsRaw = get('jobUids')!;
  const uidsMatch = uidsRaw.trim().match(/^(\d+)-(\d+)$/);
  const jobUids = uidsMatch ? { first: Number(uidsMatch[1]), last: Number(uidsMatch[2]) } : undefined;
  // Not 0 or the system accounts, and within what setuid takes (int32).
  if (!jobUids || jobUids.first < 1000 || jobUids.last < jobUids.first || jobUids.last > 2 ** 31 - 2) {
    throw new ConfigError(
      `${name('jobUids')} must be a range FIRST-LAST of unused uids from 1000 to ${2 ** 31 - 2}, got "${uidsRaw}"`,
    );
  }
  const bodyRaw = get('bodyLimit')!;
  const bodyLimitBytes = parseMemoryBytes(bodyRaw);
  if (!bodyLimitBytes || bodyLimitBytes < 1024) {
    throw new ConfigError(`${name('bodyLimit')} must be a size of at least 1Ki, got "${bodyRaw}"`);
  }
  const logLevel = get('logLevel')!;
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    throw new ConfigError(
      `${name('logLevel')} must be one of fatal, error, warn, info, debug, trace, silent`,
    );
  }

  const executorKind = get('executor')!;
  if (executorKind !== 'process' && executorKind !== 'kubernetes') {
    throw new ConfigError(`${name('executor')} must be process or kubernetes, got "${executorKind}"`);
  }
  const namespace = get('namespace')!;
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(namespace)) {
    throw new ConfigError(
      `${name('namespace')} must be a DNS label (a-z, 0-9, "-", at most 63), got "${namespace}"`,
    );
  }
  // Without --kubeconfig (or KUBECONFIG) the in-cluster service account is used.
  if (executorKind === 'kubernetes' && !get('kubeconfig') && !env.KUBERNETES_SERVICE_HOST) {
    throw new ConfigError(
      `--executor kubernetes needs ${name('kubeconfig')} when not running inside a cluster (no KUBERNETES_SERVICE_HOST)`,
    );
  }
  const jobStorageKeys = get('jobStorageKeys')!;
  if (jobStorageKeys !== 'scoped' && jobStorageKeys !== 'manager') {
    throw new ConfigError(`${name('jobStorageKeys')} must be scoped or manager, got "${jobStorageKeys}"`);
  }
  const ingressHost = get('ingressHost') || undefined;
  if (
    ingressHost !== undefined &&
    !/^(?=.{1,253}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/.test(
      ingressHost,
    )
  ) {
    throw new ConfigError(`${name('ingressHost')} must be a DNS name (lowercase), got "${ingressHost}"`);
  }
  const executor: Config['executor'] =
    executorKind === 'process'
      ? { kind: 'process' }
      : {
          kind: 'kubernetes',
          kubeconfig: get('kubeconfig') ? resolve(get('kubeconfig')!) : undefined,
          namespace,
          jobStorageKeys,
          ingressHost,
        };
  const peerRaw = get('peerListen');
  let peerListen: Config['peerListen'];
  if (peerRaw === 'off') peerListen = undefined;
  else if (peerRaw === undefined) peerListen = { host, port: port === 0 ? 0 : port + 1, explicit: false };
  else {
    const m = /^(.+):(\d{1,5})$/.exec(peerRaw);
    if (!m) throw new ConfigError(`${name('peerListen')} must be HOST:PORT or off, got "${peerRaw}"`);
    peerListen = {
      host: m[1].replace(/^\[(.*)\]$/, '$1'),
      port: int('peerListen', m[2], 0, 65535),
      explicit: true,
    };
  }
  if (peerListen && peerListen.port > 65535) peerListen = undefined;
  // Peers the manager may call: CIDRs, addresses, host names, *.domain (default any).
  const peerAllowRaw = get('peerAllow');
  let peerAllow: string[] | undefined;
  if (peerAllowRaw !== undefined && peerAllowRaw.trim() !== '') {
    try {
      peerAllow = [...parsePeerAllow(peerAllowRaw).entries];
    } catch (e) {
      throw new ConfigError(`${name('peerAllow')}: ${(e as Error).message}`);
    }
  }

  // Seconds; the default is 90 days.
  const auditColdAfterMs = int('auditColdAfter', get('auditColdAfter')!, 1, 100 * 365 * 86400) * 1000;

  return {
    auditColdAfterMs,
    peerListen,
    name: deploymentName,
    port,
    host,
    clusterId,
    replicaId,
    dataDir,
    workDir,
    s3Port,
    adminPassword,
    cpusMillis,
    memoryBytes,
    nodes,
    tier,
    publicUrl,
    publicUrlConfigured: publicUrlRaw !== undefined && publicUrlRaw !== '',
    databaseUrl,
    valkeyUrl,
    oidcIssuers,
    oidcClient,
    secretKey,
    s3,
    jobTimeoutMs,
    delegationHoldSeconds,
    jobNetwork,
    jobUids,
    bodyLimitBytes,
    logLevel,
    executor,
    peerAllow,
  };
};
