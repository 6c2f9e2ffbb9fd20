// The fault suite (issue #17): three real managers, each reached by the others through a TCP
// proxy that can cut, slow or lose answers; a seeded round of faults (SIGKILL + restart,
// SIGSTOP + SIGCONT, partitions, slow links, lost answers) over a mixed workload (federated
// creates, member changes, updates, deletes, jobs that delegate); then the invariants:
// every accepted job ended exactly once (runs counted by a call each run makes), every
// federation converged to its latest revision on every member, no orphan worker, no secret
// in any log. A fresh seed each run, printed with its schedule: `FAULT_SEED=<seed>` replays
// it. A seed that ever failed goes to REGRESSION_SEEDS and runs every time.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startClusters } from '../support/cluster-harness.ts';
import { chooseSeed, type RunCounter, startRunCounter } from '../support/run-counter.ts';
import { type FaultProxy, startFaultProxy } from './fault-proxy.ts';
import { runFaultRound } from './fault-run.ts';

/**
 * Seeds that once found a violation (kept so it stays fixed). The timing of a round is the
 * machine's, so a seed replays its schedule exactly and its workload's choices in order, not
 * every interleaving: these make the same kind of trouble likely, not certain.
 * - 1162936332, 1055445502: a member removed with delete and added back while its answers
 *   were lost kept its old worker (the create superseded the delete), which refused the
 *   fresh token forever (`sync: failed`, "not this federation's worker"). Fixed in
 *   worker-tokens.ts: a removed member's tokens are kept aside and proved with on re-add.
 *   Later they found two more (session 8's runs, fixed since): a coordinator SIGKILLed between
 *   its own write and its plan's (one statement now: ServiceStore takes the rows), and an
 *   atomic create's member create landing after the undo's delete (worker-tombstones.ts).
 */
const REGRESSION_SEEDS: number[] = [1162936332, 1055445502];

// Short rounds keep the CI run near three minutes with the regression seeds (each round
// also settles and checks, ~30 s on two loaded cores). 15 s always holds two faults or more.
const ROUND_MS = Number(process.env.FAULT_ROUND_MS ?? 15_000);
const PASSWORD = randomBytes(12).toString('hex');

describe('fault suite: three managers under a seeded schedule of faults', () => {
  let h: Harness;
  let counter: RunCounter;
  const proxies: Record<string, FaultProxy> = {};

  beforeAll(async () => {
    counter = await startRunCounter();
    h = await startClusters(
      ['a', 'b', 'c'].map((id) => ({
        id,
        // One cpu each: a 0.6-cpu job at a time fits, the rest delegate. Short holds, so a
        // hand-over left unconfirmed by a fault is dropped within the round's settling.
        args: ['--cpus', '1', '--job-network', 'host', '--delegation-hold', '5', '--log-level', 'info'],
      })),
      {
        adminPassword: PASSWORD,
        parallel: 2,
        startTimeoutMs: 150_000,
        prefix: 'flotilla-faults-',
        keepLogs: !!process.env.FAULT_KEEP_LOGS,
      },
    );
    for (const c of h.clusters) proxies[c.id] = await startFaultProxy(c.port);
    if (process.env.FAULT_KEEP_LOGS) console.log(`[logs] ${h.root}`);
  }, 300_000);

  afterAll(async () => {
    for (const p of Object.values(proxies)) await p.close();
    await h?.close();
    await counter?.close();
  });

  // FAULT_SEED alone replays that seed; otherwise the regression seeds and a fresh one.
  const seeds = process.env.FAULT_SEED
    ? [chooseSeed('FAULT_SEED', process.env.FAULT_SEED)]
    : [...REGRESSION_SEEDS, chooseSeed('FAULT_SEED', undefined)];
  for (const seed of seeds) {
    it(
      `seed ${seed}: every accepted job ends once, federations converge, no orphan, no secret in a log`,
      async () => {
        const result = await runFaultRound({
          clusters: h.clusters,
          proxies,
          counter,
          adminPassword: PASSWORD,
          seed,
          durationMs: ROUND_MS,
          log: (line) => console.log(line),
        });
        console.log(
          `[result] FAULT_SEED=${seed}: faults ${JSON.stringify(result.faults)}; ops ${JSON.stringify(result.ops)}; jobs ${JSON.stringify(result.jobs)}; violations ${result.violations.length}`,
        );
        // A round that did nothing would prove nothing.
        expect(result.jobs.accepted, `seed ${seed}`).toBeGreaterThan(5);
        expect(
          Object.values(result.faults).reduce((a, b) => a + b, 0),
          `seed ${seed}`,
        ).toBeGreaterThanOrEqual(2);
        expect(result.violations, `FAULT_SEED=${seed} replays this`).toEqual([]);
      },
      ROUND_MS + 400_000,
    );
  }
});
