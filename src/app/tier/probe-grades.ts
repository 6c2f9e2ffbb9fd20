// What the probes' observations mean for an operator: green, yellow or red, one sentence
// naming the service, host and port, and a remedy. Nothing returned carries a password or
// a URL's user info: messages are built from host, port, database and user name, and every
// text that came from a server or the OS is scrubbed of the URL's secrets.
import { describePostgresUrl, describeValkeyUrl } from '../../core/connection-urls.ts';
import type {
  DataDirObservation,
  PostgresObservation,
  S3Observation,
  ValkeyObservation,
} from '../../core/ports.ts';
import { redact, urlSecrets } from '../../core/redaction.ts';
import type { Probe, ProbeLevel, ProbeService } from '../../core/tier.ts';

const LOW_DISK_BYTES = 1024 ** 3;
const PG_MIN_VERSION_NUM = 150000;

const fmtMs = (ms: number): string => (ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${ms} ms`);

const levelFor = (latency: number, slowMs: number): ProbeLevel => (latency > slowMs ? 'yellow' : 'green');

const slowRemedy = (service: string, host: string, port: number, latency: number, slowMs: number) =>
  `${service} at ${host}:${port} answered in ${fmtMs(latency)} (over ${fmtMs(slowMs)}): check the network path ` +
  'and the server load; run the manager close to it';

export const red = (
  service: ProbeService,
  host: string,
  port: number | null,
  message: string,
  remedy: string,
  latency: number | null = null,
): Probe => ({ service, host, port, ok: false, latency_ms: latency, level: 'red', message, remedy });

// ------------------------------------------------------------------ PostgreSQL

/** Host and port of a PostgreSQL URL, or the red probe for a URL that does not parse. */
export const postgresTarget = (url: string): ReturnType<typeof describePostgresUrl> | Probe => {
  try {
    return describePostgresUrl(url);
  } catch {
    return red(
      'postgres',
      'unknown',
      null,
      'DATABASE_URL is not a valid URL',
      'fix DATABASE_URL (--database-url)',
    );
  }
};

export const gradePostgres = (
  url: string,
  target: ReturnType<typeof describePostgresUrl>,
  obs: PostgresObservation,
  slowMs: number,
): Probe => {
  const secrets = urlSecrets(url);
  const { host, port, database } = target;
  const where = `PostgreSQL at ${host}:${port}`;
  if (obs.reached) {
    const info = obs.server;
    const latency = obs.latencyMs;
    const version = info.version.split(' ')[0];
    const base = `${where} (database ${info.database}, user ${info.user}): PostgreSQL ${version}`;
    if (!info.migrated && (!info.canCreateTables || (!info.hasMigrationSchema && !info.canCreateSchema))) {
      return red(
        'postgres',
        host,
        port,
        `${base}, but user ${info.user} may not create the tables (no CREATE on ${
          info.canCreateTables ? `database ${info.database}` : 'schema public'
        }) and they do not exist yet`,
        `as a superuser: ALTER DATABASE ${info.database} OWNER TO ${info.user}; or GRANT CREATE ON DATABASE ${info.database} ` +
          `TO ${info.user}; GRANT CREATE ON SCHEMA public TO ${info.user} (PostgreSQL 15 no longer grants it to everyone)`,
        latency,
      );
    }
    if (info.versionNum < PG_MIN_VERSION_NUM) {
      return {
        service: 'postgres',
        host,
        port,
        ok: true,
        latency_ms: latency,
        level: 'yellow',
        message: `${base}, older than the supported 15`,
        remedy: 'upgrade the server to PostgreSQL 15 or newer',
      };
    }
    const level = levelFor(latency, slowMs);
    return {
      service: 'postgres',
      host,
      port,
      ok: true,
      latency_ms: latency,
      level,
      message: `${base}${info.migrated ? '' : ', empty (the tables are created at first start)'}`,
      ...(level === 'yellow' ? { remedy: slowRemedy('PostgreSQL', host, port, latency, slowMs) } : {}),
    };
  }
  const user = target.user ?? 'the default user';
  let message: string;
  let remedy: string;
  const failure = obs.failure;
  switch (failure.kind) {
    case 'login-refused':
      message = `${where} refused user ${user} for database ${database} (${
        failure.reason === 'wrong-password' ? 'wrong password' : 'no pg_hba.conf entry or role missing'
      })`;
      remedy = `check the user and password in DATABASE_URL, and that pg_hba.conf on ${host} admits this client`;
      break;
    case 'no-such-database':
      message = `${where}: database ${database} does not exist`;
      remedy = `create it (createdb -h ${host} -p ${port} ${database}) or fix the database name in DATABASE_URL`;
      break;
    case 'too-many-connections':
      message = `${where}: too many connections`;
      remedy = 'raise max_connections or lower the pool sizes of other clients';
      break;
    case 'starting-up':
      message = `${where} is starting up or shutting down`;
      remedy = 'wait for the server to finish starting, then retry';
      break;
    case 'tls-not-supported':
      message = `${where} does not accept TLS but the URL asks for it`;
      remedy = 'remove sslmode=require from DATABASE_URL or enable ssl on the server';
      break;
    case 'tls-rejected':
      message = `${where}: TLS certificate not accepted (${failure.code})`;
      remedy = 'give the server a certificate this machine trusts (NODE_EXTRA_CA_CERTS) or fix sslmode';
      break;
    case 'network':
      message = `${where}: ${failure.problem}`;
      remedy = `start PostgreSQL on ${host}:${port}, or point DATABASE_URL (--database-url) at the right host and port`;
      break;
  }
  return red('postgres', host, port, redact(message, secrets), redact(remedy, secrets));
};

// ------------------------------------------------------------------ Valkey / Redis

export const valkeyTarget = (url: string): ReturnType<typeof describeValkeyUrl> | Probe => {
  try {
    return describeValkeyUrl(url);
  } catch {
    return red('valkey', 'unknown', null, 'VALKEY_URL is not a valid URL', 'fix VALKEY_URL (--valkey-url)');
  }
};

export const gradeValkey = (
  url: string,
  t: ReturnType<typeof describeValkeyUrl>,
  obs: ValkeyObservation,
  slowMs: number,
): Probe => {
  const secrets = urlSecrets(url);
  const { host, port } = t;
  const where = `Valkey/Redis at ${host}:${port}`;
  const done = (p: Probe): Probe => ({
    ...p,
    message: redact(p.message, secrets),
    ...(p.remedy ? { remedy: redact(p.remedy, secrets) } : {}),
  });
  if (!obs.reached) {
    if (obs.failure.kind === 'tls-rejected') {
      return done(
        red(
          'valkey',
          host,
          port,
          `${where}: TLS handshake failed (${obs.failure.code})`,
          'use redis:// for a server without TLS, or give the server a certificate this machine trusts',
        ),
      );
    }
    return done(
      red(
        'valkey',
        host,
        port,
        `${where}: ${obs.failure.problem}`,
        `start Valkey/Redis on ${host}:${port}, or point VALKEY_URL (--valkey-url) at the right host and port`,
      ),
    );
  }
  const latency = obs.latencyMs;
  const warnings: string[] = [];
  const remedies: string[] = [];
  if (obs.auth === 'not-needed') {
    warnings.push('VALKEY_URL carries a password but the server requires none');
    remedies.push('protect the server with a password (requirepass) or drop it from VALKEY_URL');
  } else if (typeof obs.auth === 'object') {
    return done(
      red(
        'valkey',
        host,
        port,
        `${where} refused the credentials${t.user ? ` of user ${t.user}` : ''} (${obs.auth.refused.split(' ')[0]})`,
        'check the user and password in VALKEY_URL (redis://USER:PASSWORD@host:port)',
        latency,
      ),
    );
  }
  if (obs.database === 'unavailable') {
    return done(
      red(
        'valkey',
        host,
        port,
        `${where}: database ${t.db} is not available`,
        'use database 0 in VALKEY_URL',
        latency,
      ),
    );
  }
  if (obs.ping !== 'pong') {
    const notValkey = `check that ${host}:${port} is a Valkey/Redis server`;
    return done(
      obs.ping === 'needs-auth'
        ? red(
            'valkey',
            host,
            port,
            `${where} requires a password`,
            'put the password in VALKEY_URL (redis://:PASSWORD@host:port)',
            latency,
          )
        : obs.ping === 'unexpected'
          ? red(
              'valkey',
              host,
              port,
              `${where} answered PING with something other than PONG`,
              notValkey,
              latency,
            )
          : red('valkey', host, port, `${where} did not answer PING: ${obs.ping.error}`, notValkey, latency),
    );
  }
  const version = obs.product ?? 'Valkey/Redis';
  if (obs.maxmemoryPolicy !== undefined && obs.maxmemoryPolicy !== 'noeviction') {
    warnings.push(
      `maxmemory-policy is ${obs.maxmemoryPolicy}: queued jobs may be evicted under memory pressure`,
    );
    remedies.push(
      'set maxmemory-policy noeviction (CONFIG SET maxmemory-policy noeviction, and in the config file)',
    );
  }
  if (latency > slowMs) remedies.push(slowRemedy('Valkey/Redis', host, port, latency, slowMs));
  const level: ProbeLevel = warnings.length || latency > slowMs ? 'yellow' : 'green';
  return done({
    service: 'valkey',
    host,
    port,
    ok: true,
    latency_ms: latency,
    level,
    message: `${where}: ${version}, PING answered${warnings.length ? `; ${warnings.join('; ')}` : ''}`,
    ...(remedies.length ? { remedy: remedies.join('; ') } : {}),
  });
};

// ------------------------------------------------------------------ S3

export const s3Target = (endpoint: string): { host: string; port: number } | Probe => {
  let u: URL;
  try {
    u = new URL(endpoint);
  } catch {
    return red(
      's3',
      'unknown',
      null,
      'the S3 endpoint is not a valid URL',
      'fix FLOTILLA_S3_ENDPOINT (--s3-endpoint)',
    );
  }
  const https = u.protocol === 'https:';
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || (https ? 443 : 80)) };
};

export const gradeS3 = (
  endpoint: string,
  target: { host: string; port: number },
  obs: S3Observation,
  slowMs: number,
): Probe => {
  const secrets = urlSecrets(endpoint);
  const { host, port } = target;
  const where = `S3 endpoint at ${host}:${port}`;
  if (obs.reached) {
    const latency = obs.latencyMs;
    const level = levelFor(latency, slowMs);
    return {
      service: 's3',
      host,
      port,
      ok: true,
      latency_ms: latency,
      level,
      message: redact(`${where}: reachable (HTTP ${obs.status} to an unauthenticated GET)`, secrets),
      ...(level === 'yellow' ? { remedy: slowRemedy('S3', host, port, latency, slowMs) } : {}),
    };
  }
  const tls = obs.failure.kind === 'tls-rejected';
  return red(
    's3',
    host,
    port,
    redact(
      obs.failure.kind === 'tls-rejected'
        ? `${where}: TLS certificate not accepted (${obs.failure.code})`
        : `${where}: ${obs.failure.problem}`,
      secrets,
    ),
    tls
      ? 'give the endpoint a certificate this machine trusts (NODE_EXTRA_CA_CERTS) or use http://'
      : `start the S3 server (MinIO, …) on ${host}:${port}, or fix FLOTILLA_S3_ENDPOINT (--s3-endpoint)`,
  );
};

// ------------------------------------------------------------------ data dir

export const gradeDataDir = (obs: DataDirObservation): Probe => {
  const { path } = obs;
  const result = (level: ProbeLevel, message: string, remedy?: string): Probe => ({
    service: 'data-dir',
    host: 'localhost',
    port: null,
    ok: level !== 'red',
    latency_ms: obs.latencyMs,
    level,
    message,
    ...(remedy ? { remedy } : {}),
    path,
  });
  switch (obs.state) {
    case 'stat-failed':
      return result(
        'red',
        `data dir ${path}: ${obs.error}`,
        'fix the permissions or choose another --data-dir',
      );
    case 'absent':
      return obs.parentWritable
        ? result('green', `data dir ${path} does not exist yet; it is created (mode 0700) at first start`)
        : result(
            'red',
            `data dir ${path} does not exist and ${obs.parent} is not writable by this user`,
            `create it (mkdir -m 700 ${path}) as a user who may, or choose another --data-dir (FLOTILLA_DATA_DIR)`,
          );
    case 'not-a-directory':
      return result(
        'red',
        `data dir ${path} is not a directory`,
        'choose another --data-dir (FLOTILLA_DATA_DIR)',
      );
    case 'no-access':
      return result(
        'red',
        `data dir ${path} is not readable and writable by this user (uid ${obs.uid ?? '?'})`,
        `chown it to the user that runs the manager and chmod 700 ${path}`,
      );
    case 'timed-out':
      return result('red', `data dir ${path}: ${obs.problem} (slow or hung file system?)`, 'check the disk');
    case 'usable': {
      const warnings: string[] = [];
      const remedies: string[] = [];
      const mode = obs.mode;
      if (mode & 0o077) {
        warnings.push(
          `it is open to ${mode & 0o070 ? 'its group' : ''}${mode & 0o070 && mode & 0o007 ? ' and ' : ''}${
            mode & 0o007 ? 'all users' : ''
          } (mode 0${mode.toString(8)}); it holds keys and the database`,
        );
        remedies.push(`chmod 700 ${path}`);
      }
      if (obs.freeBytes !== undefined && obs.freeBytes < LOW_DISK_BYTES) {
        warnings.push(`only ${Math.round(obs.freeBytes / 1024 / 1024)} MiB free on its file system`);
        remedies.push('free disk space or move the data dir');
      }
      return warnings.length
        ? result('yellow', `data dir ${path}: ${warnings.join('; ')}`, remedies.join('; '))
        : result('green', `data dir ${path} is private to this user and writable`);
    }
  }
};
