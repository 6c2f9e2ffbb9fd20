// Delegation latency with the two-step hand-over (ADR 13) vs the one-step send it replaced,
// in the same run: origin A's store in this process (PGlite), the receiving manager B a
// `flotilla up` process of its own (BENCH_B=inprocess: in this process too), A reaching B
// over loopback HTTP (Basic), directly and through latency proxies (their own process) that
// add a round trip of each of BENCH_RTTS ms. Timed per job, from the send to the origin's
// record of where it went:
//   one step: POST /job (no hold) + record it delegated;
//   two steps: POST /job with X-Delegation-Hold + record it (confirm pending) + confirm.
// Goal: the second costs at most one round trip more. The added time is fitted as
// slope × RTT + fixed: the slope is the round trips the confirm adds, the fixed part B's
// work on the confirm (its lookup and conditional update). B's jobs never fit there (its cpu
// is tiny), so nothing runs during the timing.
//   BENCH_JOBS=300 BENCH_RTTS=20,50 node bin/run-ts.mjs bench/delegation-confirm.bench.ts
// BENCH_CPU_PROFILE=/tmp/confirm.cpuprofile profiles the loopback series alone.
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { createHttpPeerClient } from '../src/adapters/peer-http/http-peer-client.ts';
import { HandOver } from '../src/app/federation/hand-over.ts';
import type { PeerTarget } from '../src/core/ports.ts';
import {
  ADMIN,
  basicHeader,
  fmt,
  percentile,
  profiled,
  row,
  startBenchManager,
  startLatencyProxiesProcess,
  startManagerProcess,
} from './lib.ts';

const JOBS = Number(process.env.BENCH_JOBS ?? 300);
const RTTS = (process.env.BENCH_RTTS ?? process.env.BENCH_RTT_MS ?? '20,50').split(',').map(Number);

// B in its own process by default: its background work after a confirm (the queue offer, its
// dispatcher's look at the job) is not the origin's latency. BENCH_B=inprocess shares A's loop.
const B_IN_PROCESS = process.env.BENCH_B === 'inprocess';
const b = B_IN_PROCESS
  ? await startBenchManager('pglite', { clusterId: 'b', cpus: '0.05' })
  : await startManagerProcess('b', ['--cpus', '0.05']);
const a = await startBenchManager('pglite', { clusterId: 'a', cpus: '0.05' });
const slow = await Promise.all(RTTS.map((rtt) => startLatencyProxiesProcess([b.url], rtt / 2)));
try {
  const created = await fetch(`${b.url}/system/services`, {
    method: 'POST',
    headers: { authorization: basicHeader, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'sink', image: 'alpine', script: 'true', cpu: '1', memory: '32Mi' }),
  });
  if (created.status !== 201) throw new Error(`service create answered ${created.status}`);
  const peers = createHttpPeerClient({ timeoutMs: 10_000 });
  const store = a.manager.store;
  const logger = { info: () => {}, warn: () => {} };
  const handOver = new HandOver({ peers, store, logger, holdSeconds: 120 });
  const target = (endpoint: string): PeerTarget => ({
    clusterId: 'b',
    endpoint,
    sslVerify: true,
    auth: { kind: 'basic', user: 'oscar', password: ADMIN },
  });
  const body = new TextEncoder().encode('{"storage_provider":"minio.a","event":"x"}');

  /** A claimed job on A, as the delegator holds one when it sends it. */
  const claimedJob = async (): Promise<string> => {
    const id = `origin-${randomUUID()}`;
    await store.insertJobs([
      { id, service: 'origin', event: body, owner: 'oscar', cpuMillis: 1000, memoryBytes: 1 },
    ]);
    if (!(await store.claimJob(id, new Date()))) throw new Error('claim failed');
    return id;
  };
  const headersOf = (id: string) => ({ 'x-delegated-job-id': `a.${id}`, 'x-delegated-from': 'a' });

  const oneStep = async (endpoint: string): Promise<number> => {
    const id = await claimedJob();
    const t = process.hrtime.bigint();
    const res = await peers.submitJob(target(endpoint), 'sink', body, headersOf(id));
    await store.markDelegated(id, 'b', res.job_id);
    return Number(process.hrtime.bigint() - t) / 1e6;
  };
  const twoSteps = async (endpoint: string): Promise<number> => {
    const id = await claimedJob();
    const t = process.hrtime.bigint();
    const r = await handOver.deliver(
      { id },
      { clusterId: 'b', target: target(endpoint), service: 'sink' },
      body,
      headersOf(id),
    );
    const ms = Number(process.hrtime.bigint() - t) / 1e6;
    if (r.kind !== 'delegated' || r.confirmPending) throw new Error(`hand-over: ${JSON.stringify(r)}`);
    return ms;
  };

  const results: Record<string, number[]> = {};
  const measure = async (label: string, endpoint: string, n: number) => {
    const one: number[] = [];
    const two: number[] = [];
    for (let i = 0; i < 20; i++) {
      await oneStep(endpoint);
      await twoSteps(endpoint);
    }
    // Interleaved, so load drift hits both alike.
    for (let i = 0; i < n; i++) {
      one.push(await oneStep(endpoint));
      two.push(await twoSteps(endpoint));
    }
    results[`${label}|one`] = one.sort((x, y) => x - y);
    results[`${label}|two`] = two.sort((x, y) => x - y);
  };
  await profiled(process.env.BENCH_CPU_PROFILE, () => measure('loopback', b.url, JOBS));
  for (const [i, rtt] of RTTS.entries())
    await measure(`+${rtt} ms RTT`, slow[i].urls[0], Math.max(20, Math.floor(JOBS / 3)));
  await peers.close();

  console.log(
    `load average at end: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}; B ${B_IN_PROCESS ? 'in this process' : 'its own process'}\n`,
  );
  console.log(
    row([
      'link',
      'jobs',
      'one step median ms',
      'two steps median ms',
      'added ms',
      'p99 one / two ms',
      'added / RTT',
    ]),
  );
  console.log(row(['---', '---:', '---:', '---:', '---:', '---:', '---:']));
  const points: Array<[number, number]> = [];
  for (const [label, rtt] of [['loopback', 0], ...RTTS.map((r) => [`+${r} ms RTT`, r] as const)] as const) {
    const one = results[`${label}|one`];
    const two = results[`${label}|two`];
    const added = percentile(two, 50) - percentile(one, 50);
    points.push([rtt, added]);
    console.log(
      row([
        label,
        one.length,
        fmt(percentile(one, 50), 2),
        fmt(percentile(two, 50), 2),
        fmt(added, 2),
        `${fmt(percentile(one, 99), 1)} / ${fmt(percentile(two, 99), 1)}`,
        rtt > 0 ? fmt(added / rtt, 2) : '-',
      ]),
    );
  }
  // Least squares over (RTT, added): the round trips the confirm adds, and its fixed cost.
  const mx = points.reduce((a, [x]) => a + x, 0) / points.length;
  const my = points.reduce((a, [, y]) => a + y, 0) / points.length;
  const slope =
    points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0) /
    points.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  console.log(
    `\nadded ≈ ${fmt(slope, 2)} × RTT + ${fmt(my - slope * mx, 2)} ms (the slope: round trips the confirm adds; goal ≤ 1)`,
  );
} finally {
  for (const p of slow) await p.close();
  await a.close();
  await b.close();
}
