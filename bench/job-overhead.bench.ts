// End-to-end overhead of a trivial job (`true`): from POST /job to Succeeded, median and
// p99, jobs sent one at a time so each measures the whole path (intake, store, schedule,
// sandboxed process, record). Beside it: spawning `true` directly, in the same run.
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
      body: JSON.stringify({ name: 'noop', script: 'true', cpu: '0.1', memory: '64Mi' }),
    });
    const { token } = (await (
      await fetch(`${m.url}/system/services/noop`, { headers: { authorization: basicHeader } })
    ).json()) as { token: string };
    const store = m.manager.store;
    const samples: number[] = [];
    for (let i = 0; i < JOBS; i++) {
      const t0 = performance.now();
      const res = await fetch(`${m.url}/job/noop`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
        body: '',
      });
      const { job_id } = (await res.json()) as { job_id: string };
      for (;;) {
        const job = await store.getJob(job_id);
        if (job?.status === 'Succeeded' || job?.status === 'Failed') {
          if (job.status === 'Failed') throw new Error(`job failed: ${job.reason}`);
          break;
        }
        await new Promise((r) => setTimeout(r, 2));
      }
      samples.push(performance.now() - t0);
    }
    samples.sort((a, b) => a - b);
    direct.sort((a, b) => a - b);
    const isolation = (m.manager.runner as unknown as { deps: { executor: { isolation: string } } }).deps
      .executor.isolation;
    console.log(
      [
        row(['what', 'n', 'median ms', 'p99 ms']),
        row(['---', '---', '---', '---']),
        row([
          `job \`true\`, intake → Succeeded (${isolation})`,
          JOBS,
          fmt(percentile(samples, 50)),
          fmt(percentile(samples, 99)),
        ]),
        row([
          'baseline: spawn `/bin/sh -c true` directly',
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
