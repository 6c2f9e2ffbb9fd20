// The tier detector against the machine's real PostgreSQL and Redis, plus loopback HTTP and
// TCP servers for S3 and for "slow" and "silent" services. A missing PostgreSQL or Redis
// fails the test with a message saying so; nothing is skipped.
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatProbe, TierNotReadyError } from '../../src/app/tier/detector.ts';
import { redact, safeUrl } from '../../src/core/redaction.ts';
import type { Probe } from '../../src/core/tier.ts';
import {
  assertTierReady,
  probeDataDir,
  probePostgres,
  probeS3,
  probeTier,
  probeValkey,
} from '../../src/main/tier-tools.ts';
import { freePort } from '../support/cluster-harness.ts';
import { createTempDatabase, type TempDatabase } from '../support/postgres.ts';

const REDIS_URL = process.env.FLOTILLA_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const PASSWORD = 'S3cret-Pa55word';

let db: TempDatabase;
let dir: string;
let deadPort: number;
let silent: NetServer;
let silentPort: number;
const silentSockets = new Set<Socket>();
let s3: HttpServer;
let s3Port: number;

const listen = (srv: NetServer | HttpServer): Promise<number> =>
  new Promise((resolve) =>
    srv.listen(0, '127.0.0.1', () => resolve((srv.address() as { port: number }).port)),
  );

const noSecret = (p: Probe) => {
  const text = JSON.stringify(p);
  expect(text).not.toContain(PASSWORD);
  expect(text).not.toContain(encodeURIComponent(PASSWORD));
  expect(text).not.toMatch(/:\/\/[^/\s]*@/);
};

beforeAll(async () => {
  db = await createTempDatabase('flotilla_detector');
  // Redis is a hard requirement of this suite (federated tier): fail loudly when absent.
  const redis = await probeValkey(REDIS_URL, { timeoutMs: 3000 });
  if (!redis.ok) {
    throw new Error(
      `Redis/Valkey is needed for this test but is not reachable at ${redis.host}:${redis.port} ` +
        `(${redis.message}). Start it (redis-server, or the CI service) or set FLOTILLA_TEST_REDIS_URL.`,
    );
  }
  dir = await mkdtemp(join(tmpdir(), 'flotilla-detector-'));
  deadPort = await freePort();
  // Accepts connections and never answers: a hung service.
  silent = createNetServer((s) => {
    silentSockets.add(s);
    s.on('close', () => silentSockets.delete(s));
  });
  silentPort = await listen(silent);
  // An S3 stand-in: answers every unauthenticated GET with 403 (as S3 does), slowly on /slow.
  s3 = createHttpServer((req, res) => {
    const answer = () => {
      res.statusCode = 403;
      res.end('<Error><Code>AccessDenied</Code></Error>');
    };
    if (req.url?.startsWith('/slow')) setTimeout(answer, 1200);
    else answer();
  });
  s3Port = await listen(s3);
});

afterAll(async () => {
  for (const s of silentSockets) s.destroy();
  await new Promise((r) => silent?.close(r));
  s3?.closeAllConnections();
  await new Promise((r) => s3?.close(r));
  await db?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('redaction', () => {
  it('strips user info from URLs and removes secrets from texts', () => {
    expect(safeUrl(`postgres://flotilla:${PASSWORD}@db.example:5432/x`)).toBe('postgres://db.example:5432/x');
    expect(redact(`failed for postgres://u:${PASSWORD}@h/x and ${PASSWORD}`, [PASSWORD])).toBe(
      'failed for postgres://h/x and ***',
    );
  });
});

describe('PostgreSQL probe', () => {
  it('is green for a reachable server, naming host, port, database and version', async () => {
    const p = await probePostgres(db.url);
    expect(p).toMatchObject({ service: 'postgres', host: '127.0.0.1', port: 5432, ok: true, level: 'green' });
    expect(p.latency_ms).toBeGreaterThanOrEqual(0);
    expect(p.message).toContain('127.0.0.1:5432');
    expect(p.message).toContain(db.name);
    expect(p.message).toMatch(/PostgreSQL 1\d/);
  });

  it('is red for a closed port, naming host and port and a remedy, never the password', async () => {
    const url = `postgres://flotilla:${encodeURIComponent(PASSWORD)}@127.0.0.1:${deadPort}/flotilla`;
    const p = await probePostgres(url);
    expect(p).toMatchObject({
      service: 'postgres',
      host: '127.0.0.1',
      port: deadPort,
      ok: false,
      level: 'red',
    });
    expect(p.latency_ms).toBeNull();
    expect(p.message).toContain(`127.0.0.1:${deadPort}`);
    expect(p.message).toMatch(/refused|nothing listens/);
    expect(p.remedy).toMatch(/DATABASE_URL/);
    noSecret(p);
  });

  it('is red for a database that does not exist, saying how to create it', async () => {
    const url = new URL(db.url);
    url.pathname = '/flotilla_no_such_db';
    url.password = PASSWORD;
    const p = await probePostgres(url.toString());
    expect(p.level).toBe('red');
    expect(p.message).toContain('flotilla_no_such_db');
    expect(p.remedy).toMatch(/createdb/);
    noSecret(p);
  });

  it('gives up on a server that never answers within the cap', async () => {
    const started = Date.now();
    const p = await probePostgres(`postgres://u:${PASSWORD}@127.0.0.1:${silentPort}/x`, { timeoutMs: 500 });
    expect(Date.now() - started).toBeLessThan(2500);
    expect(p.level).toBe('red');
    expect(p.message).toContain(`127.0.0.1:${silentPort}`);
    expect(p.message).toMatch(/no answer|timed out/);
    noSecret(p);
  });
});

describe('Valkey/Redis probe', () => {
  it('answers PING on the real server', async () => {
    const p = await probeValkey(REDIS_URL);
    expect(p).toMatchObject({ service: 'valkey', host: '127.0.0.1', port: 6379, ok: true });
    expect(p.level).not.toBe('red');
    expect(p.message).toMatch(/(Redis|Valkey) \d/);
  });

  it('warns, without the password, when the URL has one the server does not need', async () => {
    const u = new URL(REDIS_URL);
    u.password = PASSWORD;
    const p = await probeValkey(u.toString());
    noSecret(p);
    expect(p.ok).toBe(true);
    // A server with requirepass accepts or refuses it; one without says it needs none.
    if (p.level === 'yellow') expect(p.message).toMatch(/requires none|maxmemory/);
  });

  it('is red for a closed port, naming host and port', async () => {
    const p = await probeValkey(`redis://default:${PASSWORD}@127.0.0.1:${deadPort}`);
    expect(p).toMatchObject({
      service: 'valkey',
      host: '127.0.0.1',
      port: deadPort,
      ok: false,
      level: 'red',
    });
    expect(p.message).toContain(`127.0.0.1:${deadPort}`);
    expect(p.remedy).toMatch(/VALKEY_URL/);
    noSecret(p);
  });

  it('is red for a server that is not Redis', async () => {
    const http = await probeValkey(`redis://127.0.0.1:${s3Port}`, { timeoutMs: 1500 });
    expect(http.level).toBe('red');
    expect(http.message).toContain(`127.0.0.1:${s3Port}`);
  });
});

describe('S3 probe', () => {
  it('counts any HTTP answer (here 403) as reachable', async () => {
    const p = await probeS3(`http://127.0.0.1:${s3Port}`);
    expect(p).toMatchObject({ service: 's3', host: '127.0.0.1', port: s3Port, ok: true, level: 'green' });
    expect(p.message).toContain('HTTP 403');
  });

  it('is yellow when the answer takes over a second', async () => {
    const p = await probeS3(`http://127.0.0.1:${s3Port}/slow`);
    expect(p).toMatchObject({ ok: true, level: 'yellow' });
    expect(p.latency_ms).toBeGreaterThan(1000);
    expect(p.remedy).toBeTruthy();
  });

  it('is red when nothing listens, never showing user info', async () => {
    const p = await probeS3(`http://minio:${PASSWORD}@127.0.0.1:${deadPort}`);
    expect(p).toMatchObject({ service: 's3', host: '127.0.0.1', port: deadPort, ok: false, level: 'red' });
    expect(p.message).toContain(`127.0.0.1:${deadPort}`);
    noSecret(p);
  });

  it('is red when the endpoint hangs past the cap', async () => {
    const p = await probeS3(`http://127.0.0.1:${silentPort}`, { timeoutMs: 400 });
    expect(p.level).toBe('red');
    expect(p.message).toMatch(/no answer/);
  });
});

describe('data dir probe', () => {
  it('is green for a private dir, yellow when group or others can read it', async () => {
    const d = join(dir, 'private');
    await mkdir(d, { mode: 0o700 });
    await chmod(d, 0o700);
    expect((await probeDataDir(d)).level).toBe('green');
    await chmod(d, 0o755);
    const open = await probeDataDir(d);
    expect(open.level).toBe('yellow');
    expect(open.message).toMatch(/0755/);
    expect(open.remedy).toContain(`chmod 700 ${d}`);
    expect(open).toMatchObject({ service: 'data-dir', path: d, port: null });
  });

  it('is green for a dir that start-up will create, red for a file', async () => {
    expect((await probeDataDir(join(dir, 'later', 'data'))).level).toBe('green');
    const f = join(dir, 'a-file');
    await writeFile(f, 'x');
    const p = await probeDataDir(f);
    expect(p.level).toBe('red');
    expect(p.message).toMatch(/not a directory/);
  });
});

describe('probeTier and assertTierReady', () => {
  it('probes what each tier needs', async () => {
    const d = join(dir, 'tier');
    await mkdir(d, { mode: 0o700 });
    const local = await probeTier({
      tier: 'local',
      dataDir: d,
      databaseUrl: undefined,
      valkeyUrl: undefined,
      s3: undefined,
    });
    expect(local.probes.map((p) => p.service)).toEqual(['data-dir']);
    expect(local.ok).toBe(true);

    const standalone = await probeTier({
      tier: 'standalone',
      dataDir: d,
      databaseUrl: db.url,
      valkeyUrl: undefined,
      s3: {
        endpoint: `http://127.0.0.1:${s3Port}`,
        accessKey: 'ak',
        secretKey: 'sk-secret',
        region: 'us-east-1',
      },
    });
    expect(standalone.probes.map((p) => p.service)).toEqual(['data-dir', 'postgres', 's3']);
    expect(standalone.probes.every((p) => p.level === 'green')).toBe(true);

    const federated = await probeTier({
      tier: 'federated',
      dataDir: d,
      databaseUrl: db.url,
      valkeyUrl: REDIS_URL,
      s3: undefined,
    });
    expect(federated.probes.map((p) => p.service)).toEqual(['data-dir', 'postgres', 'valkey']);
    expect(federated.ok).toBe(true);
    await expect(
      assertTierReady({
        tier: 'federated',
        dataDir: d,
        databaseUrl: db.url,
        valkeyUrl: REDIS_URL,
        s3: undefined,
      }),
    ).resolves.toMatchObject({ ok: true });
  });

  it('runs the probes in parallel, each within its cap', async () => {
    const started = Date.now();
    const report = await probeTier(
      {
        tier: 'federated',
        dataDir: dir,
        databaseUrl: `postgres://u:${PASSWORD}@127.0.0.1:${silentPort}/x`,
        valkeyUrl: `redis://:${PASSWORD}@127.0.0.1:${silentPort}`,
        s3: { endpoint: `http://127.0.0.1:${silentPort}`, accessKey: 'a', secretKey: PASSWORD, region: 'r' },
      },
      { timeoutMs: 600 },
    );
    expect(Date.now() - started).toBeLessThan(2500);
    expect(report.probes.filter((p) => p.level === 'red').map((p) => p.service)).toEqual([
      'postgres',
      'valkey',
      's3',
    ]);
    for (const p of report.probes) noSecret(p);
  });

  it('throws an error listing every red probe with host, port and remedy, never the password', async () => {
    const config = {
      tier: 'federated' as const,
      dataDir: dir,
      databaseUrl: `postgres://flotilla:${encodeURIComponent(PASSWORD)}@127.0.0.1:${deadPort}/flotilla`,
      valkeyUrl: `redis://:${encodeURIComponent(PASSWORD)}@127.0.0.1:${deadPort}/0`,
      s3: undefined,
    };
    const err = (await assertTierReady(config).catch((e) => e)) as TierNotReadyError;
    expect(err).toBeInstanceOf(TierNotReadyError);
    expect(err.message).toMatch(/tier federated is not ready: 2 services failed/);
    expect(err.message).toContain(`postgres at 127.0.0.1:${deadPort}`);
    expect(err.message).toContain(`valkey at 127.0.0.1:${deadPort}`);
    expect(err.message).toMatch(/remedy: .*DATABASE_URL/);
    expect(err.message).not.toContain(PASSWORD);
    expect(err.message).not.toContain(encodeURIComponent(PASSWORD));
    expect(err.report.probes.find((p) => p.service === 'data-dir')?.level).not.toBe('red');
    for (const p of err.report.probes) expect(formatProbe(p)).not.toContain(PASSWORD);
  });
});
