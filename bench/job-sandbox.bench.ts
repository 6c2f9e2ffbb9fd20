// What each layer of the job sandbox costs: a job `true` run through the process executor
// alone (no store, no HTTP), one at a time, with the layers added one by one. Beside it, what
// a network namespace per job would add: slirp4netns attached to a fresh namespace.
//   node bin/run-ts.mjs bench/job-sandbox.bench.ts
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import {
  createProcessExecutor,
  type ProcessExecutorOptions,
} from '../src/adapters/executor-process/index.ts';
import { fmt, percentile, row } from './lib.ts';

const JOBS = Number(process.env.BENCH_JOBS ?? 100);

const runTrue = async (opts: Omit<ProcessExecutorOptions, 'workRoot'>): Promise<number[]> => {
  const workRoot = mkdtempSync(join(tmpdir(), 'flotilla-bench-sandbox-'));
  const executor = createProcessExecutor({ workRoot, sandbox: 'bubblewrap', ...opts });
  const times: number[] = [];
  try {
    for (let i = 0; i < JOBS + 5; i++) {
      const t = performance.now();
      const r = await executor.run({
        jobId: randomUUID(),
        serviceName: 'bench',
        script: 'true',
        event: '{}',
        env: { A: '1' },
        timeoutMs: 30_000,
        cpuMillis: 100,
        memoryBytes: 64 * 1024 ** 2,
      });
      await r.dispose();
      if (r.exitCode !== 0) throw new Error(`job failed: ${r.stderr}`);
      if (i >= 5) times.push(performance.now() - t); // the first starts the helper (and its network)
    }
  } finally {
    await executor.close();
    rmSync(workRoot, { recursive: true, force: true });
  }
  return times.sort((a, b) => a - b);
};

/** unshare a namespace held by `sleep`, attach slirp4netns, wait for ready: per-job network cost. */
const slirpPerJob = async (): Promise<number[]> => {
  const times: number[] = [];
  for (let i = 0; i < Math.min(JOBS, 30); i++) {
    const t = performance.now();
    const holder = spawn('unshare', ['--net', 'sleep', '30'], { stdio: 'ignore' });
    await new Promise((r) => holder.once('spawn', r));
    const slirp = spawn(
      'slirp4netns',
      ['--configure', '--mtu=65520', '--disable-host-loopback', '--ready-fd=3', String(holder.pid), 'tap0'],
      { stdio: ['ignore', 'ignore', 'ignore', 'pipe'] },
    );
    await new Promise((r) => (slirp.stdio[3] as Readable).once('data', r));
    times.push(performance.now() - t);
    slirp.kill();
    holder.kill();
  }
  return times.sort((a, b) => a - b);
};

const main = async () => {
  const rows: Array<[string, number[]]> = [
    ['bubblewrap, host network, rlimits', await runTrue({ network: 'host', resourceLimits: 'rlimit' })],
    ['+ cgroup limits', await runTrue({ network: 'host', resourceLimits: 'cgroup' })],
    [
      '+ isolated network (all layers, the default)',
      await runTrue({ network: 'isolated', resourceLimits: 'cgroup' }),
    ],
  ];
  if (spawnSync('/bin/sh', ['-c', 'command -v slirp4netns']).status === 0)
    rows.push(['per job instead: a namespace + slirp4netns ready', await slirpPerJob()]);
  console.log(
    [
      row(['job `true` through the executor', 'n', 'median ms', 'p90 ms']),
      row(['---', '---', '---', '---']),
      ...rows.map(([what, t]) => row([what, t.length, fmt(percentile(t, 50)), fmt(percentile(t, 90))])),
    ].join('\n'),
  );
};

await main();
