// A longer fault run (issue #17): the fault suite's rounds (test/faults/fault-run.ts) back to
// back on three real `flotilla up` managers until FAULT_MINUTES of fault windows have run
// (each round's settling and checks come on top), one seed per round (the first from
// FAULT_SEED, or fresh), then the totals: jobs, faults injected, violations (the goal is
// none). Each round prints its schedule, so a violation replays with
// `FAULT_SEED=<seed> npx vitest run test/faults/fault-suite.test.ts`.
//   FAULT_MINUTES=10 node bin/run-ts.mjs bench/fault-run.bench.ts
// Knobs: FAULT_MINUTES (default 2), FAULT_ROUND_MS (each round's fault window, default 60000).
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { type FaultProxy, startFaultProxy } from '../test/faults/fault-proxy.ts';
import { type RoundResult, runFaultRound } from '../test/faults/fault-run.ts';
import { startClusters } from '../test/support/cluster-harness.ts';
import { chooseSeed, startRunCounter } from '../test/support/run-counter.ts';
import { row } from './lib.ts';

const MINUTES = Number(process.env.FAULT_MINUTES ?? 2);
const ROUND_MS = Number(process.env.FAULT_ROUND_MS ?? 60_000);
const PASSWORD = randomBytes(12).toString('hex');

const counter = await startRunCounter();
const h = await startClusters(
  ['a', 'b', 'c'].map((id) => ({
    id,
    args: ['--cpus', '1', '--job-network', 'host', '--delegation-hold', '5', '--log-level', 'info'],
  })),
  { adminPassword: PASSWORD, parallel: 2, startTimeoutMs: 150_000, prefix: 'flotilla-fault-bench-' },
);
const proxies: Record<string, FaultProxy> = {};
for (const c of h.clusters) proxies[c.id] = await startFaultProxy(c.port);
const results: RoundResult[] = [];
const started = Date.now();
const ROUNDS = Math.max(1, Math.ceil((MINUTES * 60_000) / ROUND_MS));
try {
  let seed = chooseSeed('FAULT_SEED', process.env.FAULT_SEED);
  while (results.length < ROUNDS) {
    const r = await runFaultRound({
      clusters: h.clusters,
      proxies,
      counter,
      adminPassword: PASSWORD,
      seed,
      durationMs: ROUND_MS,
      log: (line) => console.log(line),
    });
    results.push(r);
    console.log(
      `[round ${results.length}] seed ${seed}: ${r.jobs.accepted} jobs accepted, ${Object.values(r.faults).reduce((a, b) => a + b, 0)} faults, ${r.violations.length} violations${r.violations.length ? `: ${r.violations.slice(0, 5).join('; ')}` : ''}`,
    );
    // In BigInt: the product passes 2^53, where a double would drop the seed's low bits.
    seed = Number((BigInt(seed) * 1103515245n + 12345n) % 2n ** 31n);
  }
} finally {
  for (const p of Object.values(proxies)) await p.close();
  await h.close();
  await counter.close();
}

const sum = (f: (r: RoundResult) => number) => results.reduce((a, r) => a + f(r), 0);
const faults = (k: keyof RoundResult['faults']) => sum((r) => r.faults[k]);
console.log(
  `\n${results.length} rounds of ${ROUND_MS / 1000} s of faults (${((results.length * ROUND_MS) / 60_000).toFixed(1)} min) in ${((Date.now() - started) / 60_000).toFixed(1)} min with settling; load average at end: ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}\n`,
);
console.log(
  row([
    'jobs sent',
    'accepted',
    'succeeded',
    'failed',
    'runs',
    'faults (kill/stop/partition/delay/lost answers)',
    'violations',
  ]),
);
console.log(row(['---:', '---:', '---:', '---:', '---:', '---', '---:']));
console.log(
  row([
    sum((r) => r.jobs.sent),
    sum((r) => r.jobs.accepted),
    sum((r) => r.jobs.succeeded),
    sum((r) => r.jobs.failed),
    sum((r) => r.jobs.runs),
    `${sum((r) => Object.values(r.faults).reduce((a, b) => a + b, 0))} (${faults('kill')}/${faults('stop')}/${faults('partition')}/${faults('delay')}/${faults('lose-answers')})`,
    sum((r) => r.violations.length),
  ]),
);
const failing = results.filter((r) => r.violations.length > 0).map((r) => r.seed);
if (failing.length)
  console.log(`\nseeds with violations (add them to REGRESSION_SEEDS): ${failing.join(', ')}`);
