// Delegation latency with the two-step hand-over (ADR 13) vs the one-step send it replaced,
// in the same run: origin A's store and the receiving manager B in this process (PGlite),
// A reaching B over loopback HTTP (Basic), directly and through a proxy that adds a round
// trip of BENCH_RTT_MS. Timed per job, from the send to the origin's record of where it went:
//   one step: POST /job (no hold) + record it delegated;
//   two steps: POST /job with X-Delegation-Hold + record it (confirm pending) + confirm +
//              record it confirmed.
// Goal: the second costs at most one round trip more. B's jobs never fit there (its cpu is
// tiny), so nothing runs during the timing.
//   BENCH_JOBS=300 BENCH_RTT_MS=20 node bin/run-ts.mjs bench/delegation-confirm.bench.ts
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { createHttpPeerClient } from '../src/adapters/peer-http/http-peer-client.ts';
import { HandOver } from '../src/app/federation/hand-over.ts';
import type { PeerTarget } from '../src/core/ports.ts';
import { ADMIN, basicHeader, fmt, percentile, row, startBenchManager, startLatencyProxy } from './lib.ts';

const JOBS = Number(process.env.BENCH_JOBS ?? 300);
const RTT_MS = Number(process.env.BENCH_RTT_MS ?? 20);

const b = await startBenchManager('pglite', { clusterId: 'b', cpus: '0.05' });
const a = await startBenchManager('pglite', { clusterId: 'a', cpus: '0.05' });
const slow = await startLatencyProxy(b.url, RTT_MS / 2);
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
  await measure('loopback', b.url, JOBS);
  await measure(`+${RTT_MS} ms RTT`, slow.url, Math.max(20, Math.floor(JOBS / 5)));
  await peers.close();

  console.log(
    `load average at end: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}\n`,
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
  for (const [label, rtt] of [
    ['loopback', Number.NaN],
    [`+${RTT_MS} ms RTT`, RTT_MS],
  ] as const) {
    const one = results[`${label}|one`];
    const two = results[`${label}|two`];
    const added = percentile(two, 50) - percentile(one, 50);
    console.log(
      row([
        label,
        one.length,
        fmt(percentile(one, 50), 2),
        fmt(percentile(two, 50), 2),
        fmt(added, 2),
        `${fmt(percentile(one, 99), 1)} / ${fmt(percentile(two, 99), 1)}`,
        Number.isFinite(rtt) ? fmt(added / rtt, 2) : '-',
      ]),
    );
  }
} finally {
  await slow.close();
  await a.close();
  await b.close();
}
