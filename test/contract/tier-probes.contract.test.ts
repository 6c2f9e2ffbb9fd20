// TierProbes contract: one suite, run against every adapter (today the network and
// file-system probes) and real services: the machine's PostgreSQL and Redis, plus loopback
// servers for S3, for "silent" services and for a service that is not the one expected.
// What the observations mean (green, yellow, red, the words) is test/unit/tier-detector.test.ts.
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresStore } from '../../src/adapters/store-postgres/postgres-store.ts';
import { createTierProbes } from '../../src/adapters/tier-probes/tier-probes.ts';
import type { TierProbes } from '../../src/core/ports.ts';
import { freePort } from '../support/cluster-harness.ts';
import { createTempDatabase, type TempDatabase } from '../support/postgres.ts';

const REDIS_URL = process.env.FLOTILLA_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const CAP = { timeoutMs: 3000 };

const adapters: Array<{ name: string; probes: TierProbes }> = [
  { name: 'network and file-system probes', probes: createTierProbes() },
];

let db: TempDatabase;
let dir: string;
let deadPort: number;
let silent: NetServer;
let silentPort: number;
const silentSockets = new Set<Socket>();
let http: HttpServer;
let httpPort: number;

const listen = (srv: NetServer | HttpServer): Promise<number> =>
  new Promise((resolve) =>
    srv.listen(0, '127.0.0.1', () => resolve((srv.address() as { port: number }).port)),
  );

beforeAll(async () => {
  // Fails (does not skip) with a message naming host and port when PostgreSQL is missing.
  db = await createTempDatabase('flotilla_probes');
  const redis = await createTierProbes().valkey(REDIS_URL, CAP);
  if (!redis.reached) {
    throw new Error(
      `Redis/Valkey is needed for this test but is not reachable at ${REDIS_URL} ` +
        `(${JSON.stringify(redis.failure)}). Start it (redis-server) or set FLOTILLA_TEST_REDIS_URL.`,
    );
  }
  dir = await mkdtemp(join(tmpdir(), 'flotilla-probes-'));
  deadPort = await freePort();
  // Accepts connections and never answers: a hung service.
  silent = createNetServer((s) => {
    silentSockets.add(s);
    s.on('close', () => silentSockets.delete(s));
  });
  silentPort = await listen(silent);
  // Answers every GET with 403, as S3 does without credentials.
  http = createHttpServer((_req, res) => {
    res.statusCode = 403;
    res.end('<Error><Code>AccessDenied</Code></Error>');
  });
  httpPort = await listen(http);
});

afterAll(async () => {
  for (const s of silentSockets) s.destroy();
  await new Promise((r) => silent?.close(r));
  http?.closeAllConnections();
  await new Promise((r) => http?.close(r));
  await db?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

for (const { name, probes } of adapters) {
  describe(`TierProbes contract: ${name}`, () => {
    describe('postgres', () => {
      it('reports the server facts: version, who we are, and whether the tables exist or may be made', async () => {
        const fresh = await probes.postgres(db.url, CAP);
        expect(fresh).toMatchObject({
          reached: true,
          server: { database: db.name, migrated: false, canCreateTables: true, canCreateSchema: true },
        });
        if (!fresh.reached) return;
        expect(fresh.server.versionNum).toBeGreaterThanOrEqual(150000);
        expect(fresh.server.version).toMatch(/^1\d/);
        expect(fresh.server.user).toBe('postgres');
        expect(fresh.latencyMs).toBeGreaterThanOrEqual(0);

        await (await PostgresStore.open(db.url)).close();
        expect(await probes.postgres(db.url, CAP)).toMatchObject({
          reached: true,
          server: { migrated: true, hasMigrationSchema: true },
        });
      });

      it('tells a missing database from a closed port', async () => {
        const missing = new URL(db.url);
        missing.pathname = '/flotilla_no_such_db';
        expect(await probes.postgres(missing.toString(), CAP)).toEqual({
          reached: false,
          failure: { kind: 'no-such-database' },
        });
        const closed = await probes.postgres(`postgres://u:pw@127.0.0.1:${deadPort}/x`, CAP);
        expect(closed).toEqual({
          reached: false,
          failure: { kind: 'network', problem: 'connection refused: nothing listens on that port' },
        });
      });

      it('answers within the cap when the server never does', async () => {
        expect(
          await probes.postgres(`postgres://u:pw@127.0.0.1:${silentPort}/x`, { timeoutMs: 400 }),
        ).toEqual({
          reached: false,
          failure: { kind: 'network', problem: 'no answer within 400 ms' },
        });
      });
    });

    describe('valkey', () => {
      it('reports PING, the product and version, and the eviction policy', async () => {
        const v = await probes.valkey(REDIS_URL, CAP);
        expect(v).toMatchObject({ reached: true, auth: 'not-sent', database: 'default', ping: 'pong' });
        if (!v.reached) return;
        expect(v.product).toMatch(/^(Redis|Valkey) \d/);
        expect(typeof v.maxmemoryPolicy).toBe('string');
      });

      it('reports the answers to AUTH and SELECT when the URL asks for them', async () => {
        const u = new URL(REDIS_URL);
        u.password = 'not-needed-here';
        u.pathname = '/1';
        // The machine's Redis has no password (PING above works without one).
        expect(await probes.valkey(u.toString(), CAP)).toMatchObject({
          reached: true,
          auth: 'not-needed',
          database: 'selected',
          ping: 'pong',
        });
        u.password = '';
        u.pathname = '/100000';
        expect(await probes.valkey(u.toString(), CAP)).toMatchObject({
          reached: true,
          database: 'unavailable',
        });
      });

      it('fails, never hangs, on a closed port, a silent server and a server that is not Redis', async () => {
        expect(await probes.valkey(`redis://127.0.0.1:${deadPort}`, CAP)).toEqual({
          reached: false,
          failure: { kind: 'network', problem: 'connection refused: nothing listens on that port' },
        });
        expect(await probes.valkey(`redis://127.0.0.1:${silentPort}`, { timeoutMs: 400 })).toEqual({
          reached: false,
          failure: { kind: 'network', problem: 'no answer within 400 ms' },
        });
        const notRedis = await probes.valkey(`redis://127.0.0.1:${httpPort}`, CAP);
        expect(notRedis.reached).toBe(false);
        if (!notRedis.reached) expect(JSON.stringify(notRedis.failure)).toMatch(/not a Redis\/Valkey server/);
      });
    });

    describe('s3', () => {
      it('counts any HTTP answer as reached, with its status', async () => {
        expect(await probes.s3(`http://127.0.0.1:${httpPort}`, CAP)).toMatchObject({
          reached: true,
          status: 403,
        });
      });

      it('fails, never hangs, on a closed port and a silent server', async () => {
        expect(await probes.s3(`http://127.0.0.1:${deadPort}`, CAP)).toEqual({
          reached: false,
          failure: { kind: 'network', problem: 'connection refused: nothing listens on that port' },
        });
        expect(await probes.s3(`http://127.0.0.1:${silentPort}`, { timeoutMs: 400 })).toEqual({
          reached: false,
          failure: { kind: 'network', problem: 'no answer within 400 ms' },
        });
      });
    });

    describe('data dir', () => {
      it('reports a usable dir with its mode and free space, by its absolute path', async () => {
        const d = join(dir, 'usable');
        await mkdir(d);
        await chmod(d, 0o750);
        const o = await probes.dataDir(d, CAP);
        expect(o).toMatchObject({ path: d, state: 'usable', mode: 0o750 });
        if (o.state === 'usable') expect(o.freeBytes).toBeGreaterThan(0);
      });

      it('reports a dir not made yet with its nearest parent, and a file as not a directory', async () => {
        expect(await probes.dataDir(join(dir, 'later', 'data'), CAP)).toMatchObject({
          state: 'absent',
          parent: dir,
          parentWritable: true,
        });
        const f = join(dir, 'a-file');
        await writeFile(f, 'x');
        expect(await probes.dataDir(f, CAP)).toMatchObject({ path: f, state: 'not-a-directory' });
      });
    });
  });
}
