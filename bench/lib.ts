// Shared benchmark plumbing: in-process managers on free ports, autocannon runs, a bare
// Fastify baseline measured in the same process, and percentile helpers.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import Fastify from 'fastify';
import pino from 'pino';
import { PgliteStore } from '../src/adapters/store-pglite/pglite-store.ts';
import { PostgresStore } from '../src/adapters/store-postgres/postgres-store.ts';
import { loadConfig } from '../src/config/config.ts';
import type { Store } from '../src/core/ports.ts';
import { createManager, type Manager, type ManagerOptions } from '../src/main/manager.ts';
import { createTempDatabase } from '../test/support/postgres.ts';

export const ADMIN = 'bench-pw';
export const basicHeader = `Basic ${Buffer.from(`oscar:${ADMIN}`).toString('base64')}`;

export interface BenchManager {
  manager: Manager;
  url: string;
  close(): Promise<void>;
}

export type StoreKind = 'pglite' | 'postgres';

/** A listening manager on the given store kind, with its own data dir (and database). */
export const startBenchManager = async (
  kind: StoreKind,
  flags: Record<string, string> = {},
  opts: ManagerOptions = {},
): Promise<BenchManager> => {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const dataDir = await mkdtemp(join(tmpdir(), 'flotilla-bench-'));
  const db = kind === 'postgres' ? await createTempDatabase('flotilla_bench') : undefined;
  const store: Store = db
    ? await PostgresStore.open(db.url, { poolSize: Number(process.env.BENCH_PG_POOL ?? 2) })
    : await PgliteStore.open(join(dataDir, 'db'));
  const config = loadConfig({ dataDir, adminPassword: ADMIN, port: '0', logLevel: 'silent', ...flags }, {});
  const manager = await createManager(config, { store, logger: pino({ level: 'silent' }), ...opts });
  const url = await manager.listen();
  return {
    manager,
    url,
    async close() {
      await manager.close();
      await db?.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
};

export interface LoadResult {
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
  total: number;
}

export const load = async (opts: autocannon.Options): Promise<LoadResult> => {
  const r = await autocannon({ connections: 50, duration: 5, ...opts });
  return {
    requestsPerSec: Math.round(r.requests.average),
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    non2xx: r.non2xx,
    errors: r.errors,
    total: r.requests.total,
  };
};

/** The baseline: a bare Fastify route returning a small JSON body, in this process. */
export const bareFastify = async (): Promise<{ url: string; close: () => Promise<void> }> => {
  const app = Fastify();
  app.get('/bare', async () => ({ ok: true }));
  app.post('/bare', async (_req, reply) => reply.status(201).send({ ok: true }));
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return { url, close: () => app.close() };
};

export const percentile = (sorted: number[], p: number): number => {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
};

export const fmt = (n: number, digits = 1): string => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');

export const row = (cells: Array<string | number>): string => `| ${cells.join(' | ')} |`;

/**
 * A TCP proxy on a free loopback port that holds every chunk `oneWayMs` in each direction:
 * a member reached over a network with a round trip of 2 × oneWayMs (order is kept).
 */
export const startLatencyProxy = async (
  target: string,
  oneWayMs: number,
): Promise<{ url: string; close(): Promise<void> }> => {
  const { createServer, connect } = await import('node:net');
  const t = new URL(target);
  const sockets = new Set<import('node:net').Socket>();
  const delayed = (from: import('node:net').Socket, to: import('node:net').Socket) => {
    from.on('data', (chunk) => setTimeout(() => to.writable && to.write(chunk), oneWayMs));
    from.on('end', () => setTimeout(() => to.end(), oneWayMs));
    from.on('error', () => to.destroy());
  };
  const server = createServer((client) => {
    const upstream = connect(Number(t.port), t.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.setNoDelay(true);
    }
    delayed(client, upstream);
    delayed(upstream, client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
};

/** A manager as its own `flotilla up` process (admin password ADMIN), with extra flags. */
export const startManagerProcess = async (
  clusterId: string,
  args: string[],
): Promise<{ url: string; close(): Promise<void> }> => {
  const { startClusters } = await import('../test/support/cluster-harness.ts');
  const h = await startClusters([{ id: clusterId, args }], {
    adminPassword: ADMIN,
    prefix: `flotilla-bench-${clusterId}-`,
  });
  return { url: h.get(clusterId).url, close: () => h.close() };
};

/**
 * Latency proxies (as startLatencyProxy) run in a child process, so the bytes they relay
 * cost the measured process nothing: a network is not the caller's work.
 */
export const startLatencyProxiesProcess = async (
  targets: readonly string[],
  oneWayMs: number,
): Promise<{ urls: string[]; close(): Promise<void> }> => {
  const { spawn } = await import('node:child_process');
  const child = spawn(
    process.execPath,
    ['bin/run-ts.mjs', 'bench/latency-proxies.ts', String(oneWayMs), ...targets],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const urls = await new Promise<string[]>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(JSON.parse(out.slice(0, out.indexOf('\n'))) as string[]);
    });
    child.once('exit', (code) => reject(new Error(`latency proxies exited with ${code}`)));
  });
  return {
    urls,
    close: () =>
      new Promise<void>((r) => {
        if (child.exitCode !== null) return r();
        child.once('exit', () => r());
        child.stdin.end();
      }),
  };
};

/**
 * A CPU profile of just `fn` (not the start-up around it) written to `path` when `path` is
 * set — e.g. BENCH_CPU_PROFILE=/tmp/create.cpuprofile; open it in Chrome's DevTools.
 */
export const profiled = async <T>(path: string | undefined, fn: () => Promise<T>): Promise<T> => {
  if (!path) return fn();
  const { Session } = await import('node:inspector/promises');
  const { writeFile } = await import('node:fs/promises');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  try {
    return await fn();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    await writeFile(path, JSON.stringify(profile));
    session.disconnect();
    console.error(`cpu profile written to ${path}`);
  }
};
