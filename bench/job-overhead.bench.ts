// End-to-end overhead of a trivial job (`true`): from intake to Succeeded, median and p99,
// jobs sent one at a time so each measures the whole path (store, schedule, sandboxed
// process, record). Measured on the manager's own clock (created → finished), so the
// client's polling does not compete with the runner for the embedded database; the 201
// round trip is measured by the client. Beside it: spawning `sh -c true` here.
//   node bin/run-ts.mjs bench/job-overhead.bench.ts
import { spawnSync } from 'node:child_process';
import { basicHeader, fmt, percentile, row, startBenchManager } from './lib.ts';

const JOBS = Number(process.env.BENCH_JOBS ?? 200);

const main = async () => {
  const direct: number[] = [];
  for (let i = 0; i < 50; i++) {
    const t = performance.now();
    spawnSync('/bin/sh', ['-c', 'true']);
    direct.push(performance.now() - t);
  }
  const m = await startBenchManager('pglite', { cpus: '2', memory: '2Gi' });
  try {
    await fetch(`${m.url}/system/services`, {
      method: 'POST',
      headers: { authorization: basicHeader, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'noop', image: 'alpine', script: 'true', cpu: '0.1', memory: '64Mi' }),
    });
    const svc = await fetch(`${m.url}/system/services/noop`, { headers: { authorization: basicHeader } });
    const { token } = (await svc.json()) as { token: string };
    const store = m.manager.store;
    const whole: number[] = [];
    const intake: number[] = [];
    for (let i = 0; i < JOBS; i++) {
      const t0 = performance.now();
      const res = await fetch(`${m.url}/job/noop`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
        body: '',
      });
      const { job_id } = (await res.json()) as { job_id: string };
      intake.push(performance.now() - t0);
      for (;;) {
        await new Promise((r) => setTimeout(r, 20));
        const job = await store.getJob(job_id);
        if (job?.status === 'Failed') throw new Error(`job failed: ${job.reason}`);
        if (job?.status === 'Succeeded' && job.finishedAt) {
          whole.push(job.finishedAt.getTime() - job.createdAt.getTime());
          break;
        }
      }
    }
    for (const a of [whole, intake, direct]) a.sort((x, y) => x - y);
    const isolation = (await (
      await fetch(`${m.url}/system/info`, { headers: { authorization: basicHeader } })
    ).json()) as {
      executor: { isolation: string };
    };
    console.log(
      [
        row(['what', 'n', 'median ms', 'p99 ms']),
        row(['---', '---', '---', '---']),
        row([
          `job \`true\`: stored → Succeeded (${isolation.executor.isolation})`,
          JOBS,
          fmt(percentile(whole, 50)),
          fmt(percentile(whole, 99)),
        ]),
        row([
          'POST /job round trip (answered once stored)',
          JOBS,
          fmt(percentile(intake, 50)),
          fmt(percentile(intake, 99)),
        ]),
        row([
          'baseline: `sh -c true` spawned by this process',
          direct.length,
          fmt(percentile(direct, 50)),
          fmt(percentile(direct, 99)),
        ]),
      ].join('\n'),
    );
  } finally {
    await m.close();
  }
};

await main();
