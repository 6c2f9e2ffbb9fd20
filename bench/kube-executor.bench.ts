// Manager overhead per job of the Kubernetes executor, against the fake API server in this
// process (its kubelet driven by hand, so no script runs): create → Job posted (ConfigMap and
// Secret, then the Job; the fake answers without validating), and terminal pod event → run() resolved (the watch delivers it, the
// log is read, Job/ConfigMap/Secret deleted). Two series: one job at a time, and 1,000 in
// flight at once. Also: watch connections opened for all of it, TCP connections the fake
// accepted, calls retried after a dropped connection and runs that failed. Run twice in one
// process: without a limit on API calls in flight (how it was: one connection per concurrent
// call) and at the default 64, so the two compare under the same machine load.
//   node bin/run-ts.mjs bench/kube-executor.bench.ts
// Goal: ≤ 5 ms added per job (p50) and one watch connection whatever the job count.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';
import { createKubernetesExecutor } from '../src/adapters/executor-kubernetes/index.ts';
import type { ExecutionRequest } from '../src/core/ports.ts';
import { startFakeKubeApi } from '../test/support/fake-kube-api.ts';
import { fmt, percentile, row } from './lib.ts';

const JOBS = Number(process.env.BENCH_JOBS ?? 1000);
const NS = 'bench';

const measure = async (label: string, maxInFlight: number) => {
  // The fake's schema validation is left out: it is the fake's cost, not the manager's.
  const fake = await startFakeKubeApi({ kubelet: 'manual', validate: false });
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions(fake.kubeconfig(NS));
  const executor = createKubernetesExecutor({
    kubeConfig,
    namespace: NS,
    maxInFlight,
    resolveService: async () => ({ image: 'alpine', cpu: '0.1', memory: '64Mi' }),
  });
  const retriesBefore = executor.watchStats().retries;
  let failed = 0;
  const request = (): ExecutionRequest => ({
    jobId: randomUUID(),
    serviceName: 'bench',
    cpuMillis: 200,
    memoryBytes: 256 * 1024 ** 2,
    script: 'true',
    event: '{}',
    env: { API_KEY: 'k' },
    timeoutMs: 600_000,
  });
  const posted = (jobId: string) =>
    fake.received.find((r) => r.kind === 'jobs' && r.object.metadata.name === jobId)?.at ?? Number.NaN;
  // The fake makes a Job's pod before it answers the Job's POST: one poller for the batch,
  // on the received list, so the harness does not compete with what it measures.
  const jobsPosted = () => fake.received.filter((r) => r.kind === 'jobs' && r.status === 201).length;
  const allPosted = async (target: () => number) => {
    while (jobsPosted() < target()) await new Promise((r) => setTimeout(r, 2));
  };

  const series = async (what: string, inFlight: number) => {
    const create: number[] = [];
    const finish: number[] = [];
    let postedBefore = jobsPosted();
    for (let done = 0; done < JOBS; done += inFlight) {
      const batch = Array.from({ length: Math.min(inFlight, JOBS - done) }, request);
      const started = batch.map(() => performance.now());
      const runs = batch.map((r) =>
        executor.run(r).catch((e) => {
          failed += 1;
          console.error(`run failed: ${(e as Error).message}`);
        }),
      );
      const failedBefore = failed;
      await allPosted(() => postedBefore + batch.length - (failed - failedBefore));
      postedBefore += batch.length;
      batch.forEach((r, i) => {
        const at = posted(r.jobId);
        if (!Number.isNaN(at)) create.push(at - started[i]!);
      });
      const ended: number[] = [];
      const events = batch.map((r) => {
        const t = performance.now();
        try {
          fake.setPod(NS, r.jobId, { phase: 'Succeeded', exitCode: 0, log: 'ok\n' });
        } catch {
          // its Job was never posted (the run failed)
        }
        return t;
      });
      await Promise.all(runs.map((p, i) => p.then(() => ended.push(performance.now() - events[i]!))));
      finish.push(...ended);
    }
    create.sort((a, b) => a - b);
    finish.sort((a, b) => a - b);
    console.log(
      row([
        `${label}, ${what}`,
        fmt(percentile(create, 50), 2),
        fmt(percentile(create, 99), 2),
        fmt(percentile(finish, 50), 2),
        fmt(percentile(finish, 99), 2),
      ]),
    );
  };

  // Baseline: two sequential keep-alive round trips to the same fake (what each half of a job
  // costs at least: ConfigMap‖Secret then Job; log then the deletes), so the machine's load shows.
  const agent = new http.Agent({ keepAlive: true });
  const roundTrip = () =>
    new Promise<void>((resolve, reject) => {
      http
        .get(`${fake.url}/api/v1/namespaces/${NS}/pods?labelSelector=none%3Dnone`, { agent }, (res) => {
          res.resume();
          res.on('end', resolve);
        })
        .on('error', reject);
    });
  const bare: number[] = [];
  for (let i = 0; i < Math.min(JOBS, 500); i++) {
    const t = performance.now();
    await roundTrip();
    await roundTrip();
    bare.push(performance.now() - t);
  }
  bare.sort((a, b) => a - b);
  agent.destroy();

  await series('one at a time', 1);
  await series(`${JOBS} in flight`, JOBS);
  const stats = executor.watchStats();
  notes.push(
    `${label}: watch connections opened ${stats.opened}, re-lists ${stats.relists}, jobs ${2 * JOBS}, TCP connections accepted by the fake ${fake.connections()}, calls retried after a dropped connection ${stats.retries - retriesBefore}, runs failed ${failed}`,
  );
  await executor.close();
  await fake.close();
  return bare;
};

const notes: string[] = [];

const main = async () => {
  console.log(`Kubernetes executor overhead per job, ${JOBS} jobs, fake API server in-process (ms)\n`);
  console.log(row(['series', 'create→posted p50', 'p99', 'event→done p50', 'p99']));
  console.log(row(['---', '---', '---', '---', '---']));
  const bare = await measure('no limit (before)', Number.POSITIVE_INFINITY);
  const bare2 = await measure('64 calls in flight (now)', 64);
  console.log(
    `\nbaseline, two bare keep-alive round trips to the fake: p50 ${fmt(percentile(bare, 50), 2)} / ${fmt(percentile(bare2, 50), 2)}, p99 ${fmt(percentile(bare, 99), 2)} / ${fmt(percentile(bare2, 99), 2)} (first / second run)`,
  );
  for (const n of notes) console.log(n);
};

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
