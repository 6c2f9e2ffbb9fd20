// Delegation decision time: where to send a job, decided from the status cache (candidates
// + rank over every replica's last /system/status, no network), with 10, 100 and 1,000
// replicas, for each policy — beside deciding as OSCAR v3 does (pkg/resourcemanager
// getClusterStatus): GET every replica's /system/status on every decision, one after
// another, each on a fresh connection (a new http.Transport per request). Also shown: the
// same per-decision fetch done in parallel over keep-alive connections (the best a
// fetch-per-decision design could do). All in one run, against one in-process HTTP server
// answering N status paths (one per replica cluster).
//   node bin/run-ts.mjs bench/delegation-decision.bench.ts
// Goal: p99 of the cached decision < 100 µs at 100 replicas.
import { createServer, request as httpRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request as undiciRequest } from 'undici';
import { createHttpPeerClient } from '../src/adapters/peer-http/http-peer-client.ts';
import { createDelegationCredentials } from '../src/app/federation/delegation-credentials.ts';
import { Delegator } from '../src/app/federation/delegator.ts';
import { clusterStatus, createNodes } from '../src/core/capacity.ts';
import { fitsOn, seededRandom, snapshotFromStatus } from '../src/core/delegation/policy.ts';
import type { Service } from '../src/core/fdl/service.ts';
import type { DelegationPolicy, Replica } from '../src/core/federation/model.ts';
import { ReplicaIndex, replicaSnapshots } from '../src/main/delegation-wiring.ts';
import { StatusCache } from '../src/worker/status-cache.ts';
import { fmt, percentile, row } from './lib.ts';

const SIZES = (process.env.BENCH_SIZES ?? '10,100,1000').split(',').map(Number);
const POLICIES: DelegationPolicy[] = ['static', 'random', 'load-based', 'topsis'];
const JOB = { cpuMillis: 1000, memoryBytes: 256 * 1024 ** 2 };
const GiB = 1024 ** 3;

/** A status body per cluster: 1–8 nodes of mixed size, some partly busy (seeded). */
const statusBodies = (n: number): string[] => {
  const rnd = seededRandom(42);
  return Array.from({ length: n }, () => {
    const nodes = createNodes(
      (1 + Math.floor(rnd() * 16)) * 1000,
      (2 + Math.floor(rnd() * 30)) * GiB,
      1 + Math.floor(rnd() * 8),
    );
    for (const node of nodes) {
      node.cpuRequestedMillis = Math.floor(rnd() * node.cpuCapacityMillis);
      node.memoryRequestedBytes = Math.floor(rnd() * node.memoryCapacityBytes);
    }
    return JSON.stringify({ cluster: clusterStatus(nodes), oidc: {}, minio: {} });
  });
};

const startStatusServer = async (bodies: string[]) => {
  const server = createServer((req, res) => {
    const m = /^\/c(\d+)\/system\/status$/.exec(req.url ?? '');
    const body = m ? bodies[Number(m[1])] : undefined;
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(body);
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
};

const serviceWith = (policy: DelegationPolicy, replicas: Replica[], base: string): Service =>
  ({
    name: 'bench',
    image: 'alpine',
    script: 'true',
    cpu: '1',
    memory: '256Mi',
    federation: { delegation: policy },
    replicas,
    clusters: Object.fromEntries(
      replicas.map((r) => [
        r.cluster_id,
        { endpoint: `${base}/${r.cluster_id}`, auth_user: 'oscar', auth_password: 'pw' },
      ]),
    ),
  }) as unknown as Service;

const micros = (samples: number[]) => {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
};

/** OSCAR's way: one GET per replica, sequentially, a new connection each (agent: false). */
const fetchFresh = (url: string): Promise<unknown> =>
  new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { agent: false, headers: { authorization: 'Basic b3NjYXI6cHc=' } },
      (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
          } catch (e) {
            reject(e);
          }
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });

const decideByFetching = async (
  replicas: Replica[],
  base: string,
  fetchAll: (urls: string[]) => Promise<unknown[]>,
): Promise<string | undefined> => {
  const statuses = await fetchAll(replicas.map((r) => `${base}/${r.cluster_id}/system/status`));
  // Same rule as the cache path: fits on a node, most total free cpu first.
  let best: { id: string; free: number } | undefined;
  statuses.forEach((st, i) => {
    const snap = snapshotFromStatus(replicas[i].cluster_id as string, st);
    if (!fitsOn(snap, JOB)) return;
    if (!best || snap.totalFreeCpuMillis > best.free)
      best = { id: snap.clusterId, free: snap.totalFreeCpuMillis };
  });
  return best?.id;
};

const main = async () => {
  const cacheRows: string[] = [];
  const compareRows: string[] = [];
  for (const n of SIZES) {
    const bodies = statusBodies(n);
    const srv = await startStatusServer(bodies);
    const replicas: Replica[] = Array.from({ length: n }, (_, i) => ({
      type: 'oscar',
      cluster_id: `c${i}`,
      service_name: `bench-c${i}`,
      priority: i % 5,
    }));
    const peers = createHttpPeerClient({ timeoutMs: 10_000 });
    // The real cache, filled by one real poll of every replica (then not started: no timer
    // runs during the measurement, and nothing goes stale within it). Keyed as in the
    // manager: by each replica's endpoint and credentials, read from the service.
    const index = new ReplicaIndex({
      services: { list: async () => [serviceWith('static', replicas, srv.base)] },
      credentials: createDelegationCredentials({ refreshTokens: undefined, logger: { warn: () => {} } }),
    });
    const cache = new StatusCache({ peers, targets: () => index.collect(), intervalMs: 3_600_000 });
    const t0 = performance.now();
    await cache.refresh();
    const pollMs = performance.now() - t0;
    const online = [...cache.all().values()].filter((s) => s.online).length;
    if (online !== n) throw new Error(`only ${online} of ${n} replicas polled`);

    let cacheLoadBasedP50 = Number.NaN;
    let cacheLoadBasedP99 = Number.NaN;
    for (const policy of POLICIES) {
      const service = serviceWith(policy, replicas, srv.base);
      const delegator = new Delegator({
        store: {} as never,
        settings: {} as never,
        cache: replicaSnapshots(index, cache),
        peers,
        credentials: { targetFor: async () => undefined },
        clusterId: 'origin',
        random: seededRandom(7),
        logger: { info: () => {}, warn: () => {} },
        openSealed: (s) => s,
      });
      const iterations = Math.max(2_000, Math.round(400_000 / n));
      let sink = 0;
      for (let i = 0; i < Math.min(2_000, iterations); i++) sink += delegator.plan(service, JOB).length; // warm-up
      const samples = new Array<number>(iterations);
      for (let i = 0; i < iterations; i++) {
        const t = process.hrtime.bigint();
        const plan = delegator.plan(service, JOB);
        samples[i] = Number(process.hrtime.bigint() - t) / 1000;
        sink += plan.length;
      }
      if (sink === 0) throw new Error('no candidate ever: the bench set-up is wrong');
      const { p50, p99 } = micros(samples);
      const candidates = delegator.plan(service, JOB).length;
      if (policy === 'load-based') {
        cacheLoadBasedP50 = p50;
        cacheLoadBasedP99 = p99;
      }
      cacheRows.push(
        row([
          n,
          policy,
          candidates,
          iterations,
          fmt(p50, 1),
          fmt(p99, 1),
          n === 100 ? (p99 < 100 ? 'yes' : 'NO') : '-',
        ]),
      );
    }

    // Per-decision fetching, as OSCAR does (sequential, fresh connections) and at best
    // (parallel over keep-alive).
    const decisions = n >= 1000 ? 10 : n >= 100 ? 40 : 200;
    const seq: number[] = [];
    for (let i = 0; i < decisions; i++) {
      const t = performance.now();
      await decideByFetching(replicas, srv.base, async (urls) => {
        const out: unknown[] = [];
        for (const u of urls) out.push(await fetchFresh(u));
        return out;
      });
      seq.push((performance.now() - t) * 1000);
    }
    const agent = new Agent({ connections: 64, keepAliveTimeout: 30_000 });
    const par: number[] = [];
    for (let i = 0; i < decisions; i++) {
      const t = performance.now();
      await decideByFetching(replicas, srv.base, (urls) =>
        Promise.all(
          urls.map(async (u) => {
            const res = await undiciRequest(u, {
              dispatcher: agent,
              headers: { authorization: 'Basic b3NjYXI6cHc=' },
            });
            return res.body.json();
          }),
        ),
      );
      par.push((performance.now() - t) * 1000);
    }
    await agent.close();
    const s = micros(seq);
    const p = micros(par);
    compareRows.push(
      row([
        n,
        fmt(cacheLoadBasedP50, 1),
        fmt(cacheLoadBasedP99, 1),
        `${fmt(s.p50 / 1000, 2)} / ${fmt(s.p99 / 1000, 2)}`,
        `${fmt(p.p50 / 1000, 2)} / ${fmt(p.p99 / 1000, 2)}`,
        `${fmt(s.p50 / cacheLoadBasedP50, 0)}×`,
        `${fmt(p.p50 / cacheLoadBasedP50, 0)}×`,
        fmt(pollMs, 1),
      ]),
    );
    cache.stop();
    await peers.close();
    await srv.close();
  }

  console.log('### Delegation decision from the status cache (Delegator.plan: candidates + rank)\n');
  console.log(
    row(['replicas', 'policy', 'candidates', 'decisions', 'median µs', 'p99 µs', 'p99 < 100 µs @100']),
  );
  console.log(row(['---:', '---', '---:', '---:', '---:', '---:', '---']));
  console.log(cacheRows.join('\n'));
  console.log("\n### Against fetching every replica's /system/status per decision (load-based rule)\n");
  console.log(
    row([
      'replicas',
      'cache median µs',
      'cache p99 µs',
      'OSCAR-style sequential, fresh conn: median / p99 ms',
      'parallel keep-alive: median / p99 ms',
      'sequential ÷ cache (median)',
      'parallel ÷ cache (median)',
      'one background poll of all, ms',
    ]),
  );
  console.log(row(['---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:']));
  console.log(compareRows.join('\n'));
  console.log(
    '\nLoopback, one in-process status server: real networks add their round trip to every fetched status, not to a cached decision.',
  );
};

await main();
