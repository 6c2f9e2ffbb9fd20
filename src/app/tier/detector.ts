// The tier detector: probes what the configured tier needs (PostgreSQL, Valkey/Redis, S3,
// the data dir), each with a time cap, and says for every failure which service, where
// (host and port) and what to do about it. Used by `flotilla doctor` and at start-up
// (assertTierReady), so a manager refuses to start with a message an operator can act on.
//
// Nothing it prints or returns carries a password or a URL with its user info: messages
// are built from host, port, database and user name only, and every text that comes from
// a server or the OS is scrubbed of the configured secrets before it is shown.
import { constants as fsConstants } from 'node:fs';
import { access, stat, statfs } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as netConnect, type Socket } from 'node:net';
import { dirname, resolve } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import type { Config, Tier } from '../../config/config.ts';

export type ProbeService = 'postgres' | 'valkey' | 's3' | 'data-dir';
export type ProbeLevel = 'green' | 'yellow' | 'red';

export interface Probe {
  service: ProbeService;
  /** Host name or address probed ("localhost" for the data dir). */
  host: string;
  /** TCP port probed; null for the data dir. */
  port: number | null;
  /** Reachable and usable (green or yellow). */
  ok: boolean;
  /** Time to answer; null when there was no answer. */
  latency_ms: number | null;
  level: ProbeLevel;
  /** One sentence naming the service, host and port. */
  message: string;
  /** What to do, for yellow and red. */
  remedy?: string;
  /** The data dir probed (data-dir only). */
  path?: string;
}

export interface ProbeReport {
  tier: Tier;
  /** false when any probe is red. */
  ok: boolean;
  probes: Probe[];
}

export interface ProbeOptions {
  /** Cap per probe. Default 5000 ms. */
  timeoutMs?: number;
  /** Latency above which a reachable service is yellow. Default 1000 ms. */
  slowMs?: number;
}

export type TierConfig = Pick<Config, 'tier' | 'databaseUrl' | 'valkeyUrl' | 's3' | 'dataDir'>;

const DEFAULT_TIMEOUT_MS = 5_000;
const DEFAULT_SLOW_MS = 1_000;
const LOW_DISK_BYTES = 1024 ** 3;

// ------------------------------------------------------------------ redaction

/** A URL without user info (user and password), for messages and logs. */
export const safeUrl = (raw: string): string => {
  try {
    const u = new URL(raw);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return stripUserInfo(raw);
  }
};

const stripUserInfo = (text: string): string => text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@]*@/gi, '$1');

/** Removes user info from URLs and every occurrence of the given secrets from a text. */
export const redact = (text: string, secrets: Array<string | undefined>): string => {
  let out = stripUserInfo(text);
  for (const s of secrets) {
    if (!s || s.length < 2) continue;
    out = out.split(s).join('***');
    const enc = encodeURIComponent(s);
    if (enc !== s) out = out.split(enc).join('***');
  }
  return out;
};

/** The secrets a URL carries (its password, raw and decoded), for redact(). */
export const urlSecrets = (raw: string | undefined): string[] => {
  if (!raw) return [];
  try {
    const u = new URL(raw);
    const out: string[] = [];
    if (u.password) out.push(u.password, safeDecode(u.password));
    const qp = u.searchParams.get('password');
    if (qp) out.push(qp);
    return out;
  } catch {
    return [];
  }
};

const safeDecode = (s: string): string => {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
};

// ------------------------------------------------------------------ helpers

const fmtMs = (ms: number): string => (ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${ms} ms`);

class ProbeTimeout extends Error {
  constructor(ms: number) {
    super(`no answer within ${fmtMs(ms)}`);
    this.name = 'ProbeTimeout';
  }
}

const withTimeout = <T>(p: Promise<T>, ms: number, onTimeout?: () => void): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      onTimeout?.();
      reject(new ProbeTimeout(ms));
    }, ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });

const errCode = (e: unknown): string | undefined => {
  const err = e as { code?: string; errors?: Array<{ code?: string }>; cause?: { code?: string } };
  return err?.code ?? err?.errors?.find((x) => x?.code)?.code ?? err?.cause?.code;
};

/** A network failure in words (the caller prefixes the service, host and port). */
const networkProblem = (e: unknown, host: string, timeoutMs: number): string => {
  if (e instanceof ProbeTimeout) return `no answer within ${fmtMs(timeoutMs)}`;
  const code = errCode(e);
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused: nothing listens on that port';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NONAME':
      return `host name ${host} does not resolve`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'unreachable from this machine (no route to the host)';
    case 'ETIMEDOUT':
      return 'the connection timed out';
    case 'ECONNRESET':
    case 'EPIPE':
      return 'the connection was closed (another service on that port, or TLS expected?)';
    default: {
      const msg = (e as Error)?.message || String(e);
      if (/timeout/i.test(msg)) return `no answer within ${fmtMs(timeoutMs)}`;
      if (/terminated unexpectedly|connection closed/i.test(msg)) {
        return 'the connection was closed (another service on that port, or TLS expected?)';
      }
      return `${msg}${code && !msg.includes(code) ? ` (${code})` : ''}`;
    }
  }
};

const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'EPROTO',
  'ERR_SSL_WRONG_VERSION_NUMBER',
]);

const levelFor = (latency: number, slowMs: number): ProbeLevel => (latency > slowMs ? 'yellow' : 'green');

const slowRemedy = (service: string, host: string, port: number, latency: number, slowMs: number) =>
  `${service} at ${host}:${port} answered in ${fmtMs(latency)} (over ${fmtMs(slowMs)}): check the network path ` +
  'and the server load; run the manager close to it';

const red = (
  service: ProbeService,
  host: string,
  port: number | null,
  message: string,
  remedy: string,
  latency: number | null = null,
): Probe => ({ service, host, port, ok: false, latency_ms: latency, level: 'red', message, remedy });

// ------------------------------------------------------------------ PostgreSQL

/** Host, port, database and user of a PostgreSQL URL (never the password). */
export const describePostgresUrl = (
  raw: string,
): { host: string; port: number; database: string; user: string | undefined } => {
  const u = new URL(raw);
  const hostParam = u.searchParams.get('host');
  const host = u.hostname ? u.hostname.replace(/^\[|\]$/g, '') : (hostParam ?? 'localhost');
  const port = Number(u.port || u.searchParams.get('port') || 5432);
  const user = safeDecode(u.username) || u.searchParams.get('user') || undefined;
  const database = safeDecode(u.pathname.replace(/^\//, '')) || user || 'postgres';
  return { host, port, database, user };
};

const PG_REMEDY_REACH = (host: string, port: number) =>
  `start PostgreSQL on ${host}:${port}, or point DATABASE_URL (--database-url) at the right host and port`;

export const probePostgres = async (url: string, opts: ProbeOptions = {}): Promise<Probe> => {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const slowMs = opts.slowMs ?? DEFAULT_SLOW_MS;
  const secrets = urlSecrets(url);
  let target: ReturnType<typeof describePostgresUrl>;
  try {
    target = describePostgresUrl(url);
  } catch {
    return red(
      'postgres',
      'unknown',
      null,
      'DATABASE_URL is not a valid URL',
      'fix DATABASE_URL (--database-url)',
    );
  }
  const { host, port, database } = target;
  const where = `PostgreSQL at ${host}:${port}`;
  const started = Date.now();
  // Loaded here: the local tier's start never needs the driver.
  const { default: pg } = await import('pg');
  const client = new pg.Client({
    connectionString: url,
    // Past the probe's own cap, so the cap (and its message) wins.
    connectionTimeoutMillis: timeoutMs + 1_000,
    application_name: 'flotilla-doctor',
  });
  client.on('error', () => {});
  const drop = () => {
    (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
  };
  try {
    const info = await withTimeout(
      (async () => {
        await client.connect();
        const { rows } = await client.query(
          `SELECT current_setting('server_version_num')::int AS num, current_setting('server_version') AS version,
                  current_user AS "user", current_database() AS db,
                  has_schema_privilege('public', 'CREATE') AS can_create_tables,
                  has_database_privilege(current_database(), 'CREATE') AS can_create_schema,
                  to_regclass('public.jobs') IS NOT NULL AS migrated,
                  to_regnamespace('drizzle') IS NOT NULL AS has_migration_schema`,
        );
        return rows[0] as {
          num: number;
          version: string;
          user: string;
          db: string;
          can_create_tables: boolean;
          can_create_schema: boolean;
          migrated: boolean;
          has_migration_schema: boolean;
        };
      })(),
      timeoutMs,
      drop,
    );
    const latency = Date.now() - started;
    const version = String(info.version).split(' ')[0];
    const base = `${where} (database ${info.db}, user ${info.user}): PostgreSQL ${version}`;
    if (
      !info.migrated &&
      (!info.can_create_tables || (!info.has_migration_schema && !info.can_create_schema))
    ) {
      return red(
        'postgres',
        host,
        port,
        `${base}, but user ${info.user} may not create the tables (no CREATE on ${
          info.can_create_tables ? `database ${info.db}` : 'schema public'
        }) and they do not exist yet`,
        `as a superuser: ALTER DATABASE ${info.db} OWNER TO ${info.user}; or GRANT CREATE ON DATABASE ${info.db} ` +
          `TO ${info.user}; GRANT CREATE ON SCHEMA public TO ${info.user} (PostgreSQL 15 no longer grants it to everyone)`,
        latency,
      );
    }
    if (Number(info.num) < 150000) {
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
  } catch (e) {
    const code = errCode(e);
    const user = target.user ?? 'the default user';
    let message: string;
    let remedy: string;
    if (code === '28P01' || code === '28000') {
      message = `${where} refused user ${user} for database ${database} (${code === '28P01' ? 'wrong password' : 'no pg_hba.conf entry or role missing'})`;
      remedy = `check the user and password in DATABASE_URL, and that pg_hba.conf on ${host} admits this client`;
    } else if (code === '3D000') {
      message = `${where}: database ${database} does not exist`;
      remedy = `create it (createdb -h ${host} -p ${port} ${database}) or fix the database name in DATABASE_URL`;
    } else if (code === '53300') {
      message = `${where}: too many connections`;
      remedy = 'raise max_connections or lower the pool sizes of other clients';
    } else if (code === '57P03') {
      message = `${where} is starting up or shutting down`;
      remedy = 'wait for the server to finish starting, then retry';
    } else if (/does not support SSL/i.test((e as Error)?.message ?? '')) {
      message = `${where} does not accept TLS but the URL asks for it`;
      remedy = 'remove sslmode=require from DATABASE_URL or enable ssl on the server';
    } else if (code && TLS_CODES.has(code)) {
      message = `${where}: TLS certificate not accepted (${code})`;
      remedy = 'give the server a certificate this machine trusts (NODE_EXTRA_CA_CERTS) or fix sslmode';
    } else {
      message = `${where}: ${networkProblem(e, host, timeoutMs)}`;
      remedy = PG_REMEDY_REACH(host, port);
    }
    return red('postgres', host, port, redact(message, secrets), redact(remedy, secrets));
  } finally {
    client.end().catch(() => {});
  }
};

// ------------------------------------------------------------------ Valkey / Redis

type RespValue = string | number | null | RespError | RespValue[];

class RespError {
  constructor(readonly message: string) {}
}

const encodeCommand = (args: string[]): Buffer => {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.from(a);
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
};

/** Parses one RESP2/RESP3 value from buf at offset; undefined when more bytes are needed. */
const parseResp = (buf: Buffer, offset: number): { value: RespValue; next: number } | undefined => {
  const eol = buf.indexOf('\r\n', offset);
  if (eol < 0) return undefined;
  const type = String.fromCharCode(buf[offset]);
  const line = buf.toString('utf8', offset + 1, eol);
  const after = eol + 2;
  switch (type) {
    case '+':
      return { value: line, next: after };
    case '-':
    case '!':
      return { value: new RespError(line), next: after };
    case ':':
      return { value: Number(line), next: after };
    case '_':
      return { value: null, next: after };
    case '$':
    case '=':
    case '(': {
      if (type === '(') return { value: line, next: after };
      const len = Number(line);
      if (len < 0) return { value: null, next: after };
      if (buf.length < after + len + 2) return undefined;
      return { value: buf.toString('utf8', after, after + len), next: after + len + 2 };
    }
    case '*':
    case '~':
    case '>':
    case '%': {
      let n = Number(line);
      if (n < 0) return { value: null, next: after };
      if (type === '%') n *= 2;
      const items: RespValue[] = [];
      let pos = after;
      for (let i = 0; i < n; i++) {
        const item = parseResp(buf, pos);
        if (!item) return undefined;
        items.push(item.value);
        pos = item.next;
      }
      return { value: items, next: pos };
    }
    default:
      throw new Error(`unexpected reply byte ${JSON.stringify(type)}: not a Redis/Valkey server`);
  }
};

/** Sends the commands pipelined over a fresh connection; resolves to one reply per command. */
const respRoundTrip = (
  opts: { host: string; port: number; tls: boolean; servername?: string },
  commands: string[][],
  timeoutMs: number,
): Promise<RespValue[]> => {
  let socket: Socket | undefined;
  const work = new Promise<RespValue[]>((resolve, reject) => {
    const onConnect = () => socket!.write(Buffer.concat(commands.map(encodeCommand)));
    socket = opts.tls
      ? tlsConnect({ host: opts.host, port: opts.port, servername: opts.servername }, onConnect)
      : netConnect({ host: opts.host, port: opts.port }, onConnect);
    let buf = Buffer.alloc(0);
    let offset = 0;
    const replies: RespValue[] = [];
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      try {
        for (;;) {
          const r = parseResp(buf, offset);
          if (!r) break;
          replies.push(r.value);
          offset = r.next;
          if (replies.length === commands.length) {
            socket!.end();
            resolve(replies);
            return;
          }
        }
      } catch (e) {
        socket!.destroy();
        reject(e);
      }
    });
    socket.on('error', reject);
    socket.on('close', () => reject(Object.assign(new Error('connection closed'), { code: 'ECONNRESET' })));
  });
  return withTimeout(work, timeoutMs, () => socket?.destroy()).finally(() => socket?.destroy());
};

export const describeValkeyUrl = (
  raw: string,
): {
  host: string;
  port: number;
  tls: boolean;
  user: string | undefined;
  password: string | undefined;
  db: number;
} => {
  const u = new URL(raw);
  const tls = u.protocol === 'rediss:' || u.protocol === 'valkeys:';
  const host = (u.hostname || 'localhost').replace(/^\[|\]$/g, '');
  const port = Number(u.port || 6379);
  const user = safeDecode(u.username) || undefined;
  const password = u.password ? safeDecode(u.password) : undefined;
  const db = Number(u.pathname.replace(/^\//, '') || 0) || 0;
  return { host, port, tls, user, password, db };
};

export const probeValkey = async (url: string, opts: ProbeOptions = {}): Promise<Probe> => {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const slowMs = opts.slowMs ?? DEFAULT_SLOW_MS;
  const secrets = urlSecrets(url);
  let t: ReturnType<typeof describeValkeyUrl>;
  try {
    t = describeValkeyUrl(url);
  } catch {
    return red('valkey', 'unknown', null, 'VALKEY_URL is not a valid URL', 'fix VALKEY_URL (--valkey-url)');
  }
  const { host, port } = t;
  const where = `Valkey/Redis at ${host}:${port}`;
  const commands: string[][] = [];
  if (t.password !== undefined) commands.push(t.user ? ['AUTH', t.user, t.password] : ['AUTH', t.password]);
  if (t.db) commands.push(['SELECT', String(t.db)]);
  commands.push(['PING'], ['INFO', 'server'], ['CONFIG', 'GET', 'maxmemory-policy']);
  const started = Date.now();
  const done = (p: Probe): Probe => ({
    ...p,
    message: redact(p.message, secrets),
    ...(p.remedy ? { remedy: redact(p.remedy, secrets) } : {}),
  });
  let replies: RespValue[];
  try {
    replies = await respRoundTrip(
      { host, port, tls: t.tls, servername: t.tls ? host : undefined },
      commands,
      timeoutMs,
    );
  } catch (e) {
    const code = errCode(e);
    if (code && TLS_CODES.has(code)) {
      return done(
        red(
          'valkey',
          host,
          port,
          `${where}: TLS handshake failed (${code})`,
          'use redis:// for a server without TLS, or give the server a certificate this machine trusts',
        ),
      );
    }
    return done(
      red(
        'valkey',
        host,
        port,
        `${where}: ${networkProblem(e, host, timeoutMs)}`,
        `start Valkey/Redis on ${host}:${port}, or point VALKEY_URL (--valkey-url) at the right host and port`,
      ),
    );
  }
  const latency = Date.now() - started;
  const warnings: string[] = [];
  const remedies: string[] = [];
  let i = 0;
  if (t.password !== undefined) {
    const auth = replies[i++];
    if (auth instanceof RespError) {
      if (/without any password configured|no password is set/i.test(auth.message)) {
        warnings.push('VALKEY_URL carries a password but the server requires none');
        remedies.push('protect the server with a password (requirepass) or drop it from VALKEY_URL');
      } else {
        return done(
          red(
            'valkey',
            host,
            port,
            `${where} refused the credentials${t.user ? ` of user ${t.user}` : ''} (${auth.message.split(' ')[0]})`,
            'check the user and password in VALKEY_URL (redis://USER:PASSWORD@host:port)',
            latency,
          ),
        );
      }
    }
  }
  if (t.db) {
    const sel = replies[i++];
    if (sel instanceof RespError) {
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
  }
  const ping = replies[i++];
  if (ping instanceof RespError) {
    const needsAuth = /NOAUTH|WRONGPASS|Authentication required/i.test(ping.message);
    return done(
      red(
        'valkey',
        host,
        port,
        needsAuth ? `${where} requires a password` : `${where} did not answer PING: ${ping.message}`,
        needsAuth
          ? 'put the password in VALKEY_URL (redis://:PASSWORD@host:port)'
          : `check that ${host}:${port} is a Valkey/Redis server`,
        latency,
      ),
    );
  }
  if (ping !== 'PONG') {
    return done(
      red(
        'valkey',
        host,
        port,
        `${where} answered PING with something other than PONG`,
        `check that ${host}:${port} is a Valkey/Redis server`,
        latency,
      ),
    );
  }
  const info = replies[i++];
  const infoText = typeof info === 'string' ? info : '';
  const valkeyVersion = /valkey_version:([^\r\n]+)/.exec(infoText)?.[1];
  const redisVersion = /redis_version:([^\r\n]+)/.exec(infoText)?.[1];
  const version = valkeyVersion
    ? `Valkey ${valkeyVersion}`
    : redisVersion
      ? `Redis ${redisVersion}`
      : 'Valkey/Redis';
  const policy = replies[i++];
  if (Array.isArray(policy) && typeof policy[1] === 'string' && policy[1] !== 'noeviction') {
    warnings.push(`maxmemory-policy is ${policy[1]}: queued jobs may be evicted under memory pressure`);
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

/** Reachability of an S3 endpoint: an unauthenticated GET; any HTTP answer counts. */
export const probeS3 = async (endpoint: string, opts: ProbeOptions = {}): Promise<Probe> => {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const slowMs = opts.slowMs ?? DEFAULT_SLOW_MS;
  const secrets = urlSecrets(endpoint);
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
  u.username = '';
  u.password = '';
  const https = u.protocol === 'https:';
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = Number(u.port || (https ? 443 : 80));
  const where = `S3 endpoint at ${host}:${port}`;
  const started = Date.now();
  let req: ReturnType<typeof httpRequest> | undefined;
  try {
    const status = await withTimeout(
      new Promise<number>((resolve, reject) => {
        req = (https ? httpsRequest : httpRequest)(u, { method: 'GET', agent: false }, (res) => {
          resolve(res.statusCode ?? 0);
          res.destroy();
        });
        req.on('error', reject);
        req.end();
      }),
      timeoutMs,
      () => req?.destroy(),
    );
    const latency = Date.now() - started;
    const level = levelFor(latency, slowMs);
    return {
      service: 's3',
      host,
      port,
      ok: true,
      latency_ms: latency,
      level,
      message: redact(`${where}: reachable (HTTP ${status} to an unauthenticated GET)`, secrets),
      ...(level === 'yellow' ? { remedy: slowRemedy('S3', host, port, latency, slowMs) } : {}),
    };
  } catch (e) {
    const code = errCode(e);
    const tlsProblem = code && TLS_CODES.has(code);
    return red(
      's3',
      host,
      port,
      redact(
        tlsProblem
          ? `${where}: TLS certificate not accepted (${code})`
          : `${where}: ${networkProblem(e, host, timeoutMs)}`,
        secrets,
      ),
      tlsProblem
        ? 'give the endpoint a certificate this machine trusts (NODE_EXTRA_CA_CERTS) or use http://'
        : `start the S3 server (MinIO, …) on ${host}:${port}, or fix FLOTILLA_S3_ENDPOINT (--s3-endpoint)`,
    );
  } finally {
    req?.destroy();
  }
};

// ------------------------------------------------------------------ data dir

export const probeDataDir = async (dir: string, opts: ProbeOptions = {}): Promise<Probe> => {
  const path = resolve(dir);
  const started = Date.now();
  const result = (level: ProbeLevel, message: string, remedy?: string): Probe => ({
    service: 'data-dir',
    host: 'localhost',
    port: null,
    ok: level !== 'red',
    latency_ms: Date.now() - started,
    level,
    message,
    ...(remedy ? { remedy } : {}),
    path,
  });
  const work = async (): Promise<Probe> => {
    let st: Awaited<ReturnType<typeof stat>>;
    try {
      st = await stat(path);
    } catch (e) {
      if (errCode(e) !== 'ENOENT') {
        return result(
          'red',
          `data dir ${path}: ${(e as Error).message}`,
          'fix the permissions or choose another --data-dir',
        );
      }
      // Not there yet: the manager creates it (mode 0700) if the nearest parent is writable.
      let parent = dirname(path);
      while (parent !== dirname(parent)) {
        try {
          await stat(parent);
          break;
        } catch {
          parent = dirname(parent);
        }
      }
      try {
        await access(parent, fsConstants.W_OK | fsConstants.X_OK);
        return result(
          'green',
          `data dir ${path} does not exist yet; it is created (mode 0700) at first start`,
        );
      } catch {
        return result(
          'red',
          `data dir ${path} does not exist and ${parent} is not writable by this user`,
          `create it (mkdir -m 700 ${path}) as a user who may, or choose another --data-dir (FLOTILLA_DATA_DIR)`,
        );
      }
    }
    if (!st.isDirectory()) {
      return result(
        'red',
        `data dir ${path} is not a directory`,
        'choose another --data-dir (FLOTILLA_DATA_DIR)',
      );
    }
    try {
      await access(path, fsConstants.R_OK | fsConstants.W_OK | fsConstants.X_OK);
    } catch {
      return result(
        'red',
        `data dir ${path} is not readable and writable by this user (uid ${process.getuid?.() ?? '?'})`,
        `chown it to the user that runs the manager and chmod 700 ${path}`,
      );
    }
    const warnings: string[] = [];
    const remedies: string[] = [];
    const mode = st.mode & 0o777;
    if (mode & 0o077) {
      warnings.push(
        `it is open to ${mode & 0o070 ? 'its group' : ''}${mode & 0o070 && mode & 0o007 ? ' and ' : ''}${
          mode & 0o007 ? 'all users' : ''
        } (mode 0${mode.toString(8)}); it holds keys and the database`,
      );
      remedies.push(`chmod 700 ${path}`);
    }
    try {
      const fs = await statfs(path);
      const free = Number(fs.bavail) * Number(fs.bsize);
      if (free < LOW_DISK_BYTES) {
        warnings.push(`only ${Math.round(free / 1024 / 1024)} MiB free on its file system`);
        remedies.push('free disk space or move the data dir');
      }
    } catch {
      // statfs is not available everywhere; free space is advisory only.
    }
    return warnings.length
      ? result('yellow', `data dir ${path}: ${warnings.join('; ')}`, remedies.join('; '))
      : result('green', `data dir ${path} is private to this user and writable`);
  };
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  try {
    return await withTimeout(work(), timeoutMs);
  } catch (e) {
    return result(
      'red',
      `data dir ${path}: ${(e as Error).message} (slow or hung file system?)`,
      'check the disk',
    );
  }
};

// ------------------------------------------------------------------ the tier

/** Which probes a tier needs, in report order. */
export const probesFor = (config: TierConfig): ProbeService[] => {
  const out: ProbeService[] = ['data-dir'];
  // The manager uses DATABASE_URL whenever it is set (standalone and federated require it).
  if (config.databaseUrl || config.tier !== 'local') out.push('postgres');
  if (config.tier === 'federated') out.push('valkey');
  if (config.s3) out.push('s3');
  return out;
};

/** Runs every probe the tier needs, in parallel, each within the time cap. */
export const probeTier = async (config: TierConfig, opts: ProbeOptions = {}): Promise<ProbeReport> => {
  const run = (s: ProbeService): Promise<Probe> => {
    switch (s) {
      case 'data-dir':
        return probeDataDir(config.dataDir, opts);
      case 'postgres':
        return config.databaseUrl
          ? probePostgres(config.databaseUrl, opts)
          : Promise.resolve(
              red(
                'postgres',
                'unknown',
                null,
                `tier ${config.tier} needs PostgreSQL but DATABASE_URL is not set`,
                'set DATABASE_URL (--database-url)',
              ),
            );
      case 'valkey':
        return config.valkeyUrl
          ? probeValkey(config.valkeyUrl, opts)
          : Promise.resolve(
              red(
                'valkey',
                'unknown',
                null,
                'tier federated needs Valkey/Redis but VALKEY_URL is not set',
                'set VALKEY_URL or REDIS_URL (--valkey-url)',
              ),
            );
      case 's3':
        return probeS3(config.s3!.endpoint, opts);
    }
  };
  const secrets = [
    ...urlSecrets(config.databaseUrl),
    ...urlSecrets(config.valkeyUrl),
    ...urlSecrets(config.s3?.endpoint),
    config.s3?.secretKey,
  ];
  const probes = (await Promise.all(probesFor(config).map(run))).map((p) => ({
    ...p,
    message: redact(p.message, secrets),
    ...(p.remedy ? { remedy: redact(p.remedy, secrets) } : {}),
  }));
  return { tier: config.tier, ok: probes.every((p) => p.level !== 'red'), probes };
};

/** One line per probe, for logs and error messages. */
export const formatProbe = (p: Probe): string =>
  `${p.level.toUpperCase()} ${p.service} ${p.port === null ? p.host : `${p.host}:${p.port}`}: ${p.message}${
    p.remedy ? ` (remedy: ${p.remedy})` : ''
  }`;

export class TierNotReadyError extends Error {
  constructor(readonly report: ProbeReport) {
    const reds = report.probes.filter((p) => p.level === 'red');
    super(
      `tier ${report.tier} is not ready: ${reds.length} service${reds.length === 1 ? '' : 's'} failed\n` +
        reds
          .map(
            (p) =>
              `  - ${p.service} at ${p.port === null ? (p.path ?? p.host) : `${p.host}:${p.port}`}: ${p.message}` +
              (p.remedy ? `\n    remedy: ${p.remedy}` : ''),
          )
          .join('\n'),
    );
    this.name = 'TierNotReadyError';
  }
}

/**
 * Probes the tier and throws TierNotReadyError (listing every red probe with service, host,
 * port and remedy) when something it needs is missing. Resolves to the report otherwise,
 * so the caller can log the yellow ones.
 */
export const assertTierReady = async (config: TierConfig, opts: ProbeOptions = {}): Promise<ProbeReport> => {
  const report = await probeTier(config, opts);
  if (!report.ok) throw new TierNotReadyError(report);
  return report;
};
