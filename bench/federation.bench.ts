// Federated create: time to create a mesh federation with N = 1, 2, 4, 8, 16, 32 members,
// printed as T(N)/T(1); and the time until a member change is visible on all 32 nodes.
// All managers live in this one process (the composition root has no singletons), each on
// its own throwaway PostgreSQL database and embedded object store.
// Two series: members on loopback, and the same members behind proxies that add a network
// round trip (BENCH_RTT_MS, default 30 ms) to every call, as between clusters.
//   node bin/run-ts.mjs bench/federation.bench.ts
// BENCH_CPU_PROFILE=/tmp/fed.cpuprofile profiles the loopback series alone.
// The largest N is also created once more and timed until it has converged: every member
// holds its worker, listing every other node. BENCH_SIZES=1,8,32,100 makes that a mesh of 100
// (101 managers: PostgreSQL needs max_connections ≥ 2 × 101 + 10 with the default pool of 2,
// checked below; ALTER SYSTEM SET max_connections = 300 and a restart give it).
import pg from 'pg';
import { ADMIN_URL } from '../test/support/postgres.ts';
import {
  ADMIN,
  type BenchManager,
  basicHeader,
  fmt,
  percentile,
  profiled,
  row,
  startBenchManager,
  startLatencyProxy,
} from './lib.ts';

const SIZES = (process.env.BENCH_SIZES ?? '1,2,4,8,16,32').split(',').map(Number);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 7);
const MAX = Math.max(...SIZES);
/** Round trip added between the coordinator and each member in the second series. */
const RTT_MS = Number(process.env.BENCH_RTT_MS ?? 30);
/** Member changes timed on the largest mesh (BENCH_CHANGES). */
const CHANGES = Number(process.env.BENCH_CHANGES ?? 5);
/** BENCH_AUDIT=off: no audit rows for the changes (what the audit trail costs a create). */
const AUDIT = process.env.BENCH_AUDIT !== 'off';

const post = async (url: string, path: string, body: unknown, method = 'POST') => {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: basicHeader, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : undefined;
};

type ClustersMap = Record<string, { endpoint: string; auth_user: string; auth_password: string }>;

/** The mesh member `name-w` on a manager. */
const memberOn = (m: BenchManager, name: string) => ({
  type: 'oscar',
  cluster_id: m.manager.config.clusterId,
  service_name: `${name}-w`,
});

/** A mesh federation `name` over these members (each worker named `name-w`). */
const meshOf = (name: string, on: readonly BenchManager[], clusters: ClustersMap) => ({
  name,
  image: 'alpine',
  script: 'true',
  cpu: '0.1',
  clusters,
  federation: { topology: 'mesh', members: on.map((m) => memberOn(m, name)) },
});

/** The replicas a manager's worker of `name` lists; undefined while it has none. */
const workerReplicas = async (m: BenchManager, name: string) => {
  const svc = (await m.manager.store.getService(`${name}-w`)) as Record<string, unknown> | undefined;
  return svc && ((svc.replicas as Array<{ cluster_id?: string }> | undefined) ?? []);
};

/** The connections MAX + 1 managers open fit the server's limit (else a clear message, not a hang). */
const checkConnectionLimit = async () => {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  const { rows } = await client.query<{ max_connections: string }>('SHOW max_connections');
  await client.end();
  const limit = Number(rows[0].max_connections);
  const needed = (MAX + 1) * Number(process.env.BENCH_PG_POOL ?? 2) + 10;
  if (limit < needed)
    throw new Error(
      `${MAX + 1} managers need PostgreSQL max_connections ≥ ${needed} (it is ${limit}): ALTER SYSTEM SET max_connections = ${needed} and restart PostgreSQL, or set BENCH_PG_POOL=1`,
    );
};

const main = async () => {
  await checkConnectionLimit();
  const started = performance.now();
  const managers: BenchManager[] = [];
  // Coordinator + MAX members, started a few at a time.
  for (let i = 0; i <= MAX; i += 4) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(4, MAX + 1 - i) }, (_, k) =>
        startBenchManager(
          'postgres',
          { clusterId: i + k === 0 ? 'coord' : `m${i + k}` },
          { runJobs: false, audit: AUDIT },
        ),
      ),
    );
    managers.push(...batch);
  }
  const [coord, ...members] = managers;
  const clustersVia = (endpointOf: (m: BenchManager) => string) =>
    Object.fromEntries(
      managers.map((m) => [
        m.manager.config.clusterId,
        { endpoint: endpointOf(m), auth_user: 'oscar', auth_password: ADMIN },
      ]),
    );
  const clusters = clustersVia((m) => m.url);
  // The same members behind proxies that add a network round trip (RTT_MS) to every call.
  const proxies = new Map<BenchManager, { url: string; close(): Promise<void> }>();
  for (const m of members) proxies.set(m, await startLatencyProxy(m.url, RTT_MS / 2));
  const clustersOverWan = clustersVia((m) => proxies.get(m)?.url ?? m.url);
  console.error(`started ${managers.length} managers in ${fmt((performance.now() - started) / 1000)} s`);

  const lines: string[] = [];
  let run = 0;
  /** The cpu all managers spend per second doing nothing asked (background loops, polls). */
  const idleCpuPerMs = async (ms = 3000) => {
    const cpu0 = process.cpuUsage();
    const t = performance.now();
    await new Promise((r) => setTimeout(r, ms));
    const cpu = process.cpuUsage(cpu0);
    return (cpu.user + cpu.system) / 1000 / (performance.now() - t);
  };
  const series = async (label: string, clustersMap: typeof clusters) => {
    // Warm-up: the first create pays for connection set-up and JIT on every path.
    await post(coord.url, '/system/services', meshOf(`warm-up-${run++}`, members, clustersMap));
    const idle = await idleCpuPerMs();
    lines.push(
      `${label}; the ${managers.length} managers idle: ${fmt(idle * 1000)} ms of cpu per s\n`,
      row([
        'members N',
        'T(N) median ms',
        'T(N)/T(1)',
        'cpu of this process per create ms',
        'of which idle background ms',
      ]),
      row(['---', '---', '---', '---', '---']),
    );
    let t1 = Number.NaN;
    for (const n of SIZES) {
      const samples: number[] = [];
      const cpu0 = process.cpuUsage();
      const wall0 = performance.now();
      for (let r = 0; r < REPEATS; r++) {
        const name = `mesh-${n}-${run++}`;
        const fed = meshOf(name, members.slice(0, n), clustersMap);
        const t = performance.now();
        const report = await post(coord.url, '/system/services', fed);
        samples.push(performance.now() - t);
        if (report?.outcome !== 'created')
          throw new Error(`create of ${name} did not complete: ${JSON.stringify(report)}`);
      }
      // Every manager of the run lives in this process: its cpu time is the work all of them
      // did for the creates (PostgreSQL's own cpu not included), background loops included.
      const cpu = process.cpuUsage(cpu0);
      const cpuMs = (cpu.user + cpu.system) / 1000 / REPEATS;
      // What the managers would have spent meanwhile anyway, at the rate measured idle.
      const backgroundMs = (idle * (performance.now() - wall0)) / REPEATS;
      samples.sort((a, b) => a - b);
      const median = percentile(samples, 50);
      if (n === SIZES[0]) t1 = median;
      lines.push(row([n, fmt(median), fmt(median / t1, 2), fmt(cpuMs), fmt(backgroundMs)]));
    }
    lines.push('');
  };
  await profiled(process.env.BENCH_CPU_PROFILE, () =>
    series('Members on loopback (no network latency: the time is the cpu work of all managers)', clusters),
  );
  await series(`Members behind a ${RTT_MS} ms round trip (inter-cluster network)`, clustersOverWan);

  // The largest mesh once more: created, then converged (every member holds its worker, and
  // the worker lists every other node of the mesh: the coordinator and MAX − 1 members).
  {
    const name = `converge-${MAX}`;
    const t = performance.now();
    const report = await post(coord.url, '/system/services', meshOf(name, members, clusters));
    const created = performance.now() - t;
    if (report?.outcome !== 'created')
      throw new Error(`create of ${name} did not complete: ${JSON.stringify(report)}`);
    for (;;) {
      const listed = await Promise.all(
        members.map(async (m) => (await workerReplicas(m, name))?.length ?? 0),
      );
      if (listed.every((n) => n === MAX)) break;
      if (performance.now() - t > 120_000)
        throw new Error(`mesh of ${MAX} not converged within 120 s: replicas listed ${listed.join(',')}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    lines.push(
      row([`a mesh of ${MAX}, on loopback`, 'ms']),
      row(['---', '---']),
      row(['created (the atomic create answered)', fmt(created)]),
      row(['converged (every member holds its worker listing all others)', fmt(performance.now() - t)]),
      '',
    );
  }

  // A member change on a federation of MAX members: time until every node shows it.
  const name = 'visible';
  await post(coord.url, '/system/services', meshOf(name, members.slice(0, MAX - 1), clusters));
  // The last member joins and leaves in turn (CHANGES times, default 5): each change is timed
  // until every node shows it (a joined member: its worker, and every other worker lists it;
  // a member that left: no worker lists it any more).
  const added = members[MAX - 1];
  const key = added.manager.config.clusterId;
  const member = memberOn(added, name);
  const answeredMs: number[] = [];
  const visibleMs: number[] = [];
  for (let c = 0; c < CHANGES; c++) {
    const joins = c % 2 === 0;
    const t = performance.now();
    await post(coord.url, `/system/federation/${name}`, { members: [member] }, joins ? 'POST' : 'DELETE');
    answeredMs.push(performance.now() - t);
    for (;;) {
      const seen = await Promise.all(
        members.map(async (m) => {
          const replicas = await workerReplicas(m, name);
          if (m === added) return !joins || replicas !== undefined;
          return (replicas ?? []).some((r) => r.cluster_id === key) === joins;
        }),
      );
      if (seen.every(Boolean)) break;
      if (performance.now() - t > 60_000)
        throw new Error('member change not visible on all nodes within 60 s');
      await new Promise((r) => setTimeout(r, 10));
    }
    visibleMs.push(performance.now() - t);
  }
  const each = (xs: number[]) => xs.map((x) => fmt(x)).join(' · ');
  lines.push(
    '',
    row([
      `member change on a mesh of ${MAX} (${CHANGES} changes, joins and leaves in turn)`,
      'median ms',
      'each, ms',
    ]),
    row(['---', '---', '---']),
    row([
      'POST or DELETE /system/federation answered',
      fmt(
        percentile(
          [...answeredMs].sort((x, y) => x - y),
          50,
        ),
      ),
      each(answeredMs),
    ]),
    row([
      `visible on all ${MAX} members`,
      fmt(
        percentile(
          [...visibleMs].sort((x, y) => x - y),
          50,
        ),
      ),
      each(visibleMs),
    ]),
  );
  console.log(lines.join('\n'));
  await Promise.all([...proxies.values()].map((p) => p.close()));
  await Promise.all(managers.map((m) => m.close()));
};

await main();
