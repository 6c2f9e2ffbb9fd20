// Footprint of `flotilla up` on the local tier, as real processes: RSS of the whole process
// tree (the manager, its spawner helper, anything else it starts) after a start on a fresh
// data dir, after restarts on the existing one, and around 10,000 trivial jobs sent through
// POST /job; and the time from spawn to the first 200 on /health. Beside it, in the same
// run: a bare Fastify process that loads the same npm packages the idle manager loaded.
// It builds dist/ first and runs it (FLOTILLA_RUN=dist), as `npx flotilla up` does.
//   node bin/run-ts.mjs bench/footprint.bench.ts
// Knobs: BENCH_JOBS (10000), BENCH_IDLE_S (5), BENCH_FRESH (3), BENCH_RESTARTS (5),
// BENCH_ABLATION=0 (skip the variants), BENCH_COMPARE=DIR (another checkout, measured the same way).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../src/cli/free-port.ts';
import { REPO_ROOT } from '../test/support/cluster-harness.ts';
import { loadedPackages, MODULE_LOG_ARGS } from '../test/support/module-log.ts';
import { fmt, percentile, row } from './lib.ts';

const JOBS = Number(process.env.BENCH_JOBS ?? 10_000);
const WARMUP_JOBS = Math.min(1000, Math.floor(JOBS / 10));
const IDLE_MS = Number(process.env.BENCH_IDLE_S ?? 5) * 1000;
const FRESH_RUNS = Number(process.env.BENCH_FRESH ?? 3);
const RESTARTS = Number(process.env.BENCH_RESTARTS ?? 5);
const PASSWORD = 'bench-pw';
const BASIC = `Basic ${Buffer.from(`oscar:${PASSWORD}`).toString('base64')}`;
const CLI = join(REPO_ROOT, 'bin', 'flotilla.mjs');
const BASELINE = join(REPO_ROOT, 'bench', 'footprint-baseline.mjs');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) =>
  percentile(
    [...xs].sort((a, b) => a - b),
    50,
  );

// ------------------------------------------------------------ process tree RSS

const rssKb = (pid: number): number => {
  try {
    return Number(/^Rss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0; // exited meanwhile
  }
};

const children = (pid: number): number[] => {
  const out: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    }
  } catch {
    // exited meanwhile
  }
  return out;
};

interface TreeRss {
  totalMb: number;
  managerMb: number;
  othersMb: number;
  processes: number;
}

const treeRss = (root: number): TreeRss => {
  const pids = [root];
  for (let i = 0; i < pids.length; i++) pids.push(...children(pids[i]));
  const kb = pids.map(rssKb);
  const total = kb.reduce((a, b) => a + b, 0);
  return {
    totalMb: total / 1024,
    managerMb: kb[0] / 1024,
    othersMb: (total - kb[0]) / 1024,
    processes: pids.length,
  };
};

// ------------------------------------------------------------ processes

interface Started {
  proc: ChildProcess;
  url: string;
  msToHealth: number;
  /** CPU the process (and its finished children, e.g. initdb) used until healthy: on a busy
   * machine the wall time says more about the neighbours than about the start. */
  cpuMs: number;
}

/** utime + stime + cutime + cstime of /proc/<pid>/stat, in ms (USER_HZ is 100 on Linux). */
const cpuMs = (pid: number): number => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) * 10;
};

const waitHealthy = async (proc: ChildProcess, url: string, t0: number, stderr: () => string) => {
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`exited during start (${proc.exitCode}): ${stderr()}`);
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return performance.now() - t0;
    } catch {
      // not up yet
    }
    if (performance.now() - t0 > 120_000) throw new Error(`not healthy after 120 s: ${stderr()}`);
    await sleep(10);
  }
};

const spawnHealthy = async (args: string[], env: Record<string, string> = {}): Promise<Started> => {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const t0 = performance.now();
  const proc = spawn(
    process.execPath,
    args.map((a) => (a === '$PORT' ? String(port) : a)),
    {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  proc.stderr?.on('data', (d) => {
    stderr += d;
  });
  const msToHealth = await waitHealthy(proc, url, t0, () => stderr);
  return { proc, url, msToHealth, cpuMs: cpuMs(proc.pid!) };
};

const startManager = (
  dataDir: string,
  nodeArgs: string[] = [],
  env: Record<string, string> = {},
  cli = CLI,
) =>
  spawnHealthy(
    [
      ...nodeArgs,
      cli,
      'up',
      '--port',
      '$PORT',
      '--data-dir',
      dataDir,
      '--admin-password',
      PASSWORD,
      '--cpus',
      '2',
      '--memory',
      '2Gi',
      '--log-level',
      'warn',
    ],
    { FLOTILLA_RUN: 'dist', ...env },
  );

const stop = async (proc: ChildProcess) => {
  if (proc.exitCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  await exited;
};

// ------------------------------------------------------------ jobs

const api = async (url: string, method: string, path: string, body?: unknown) => {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: BASIC, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res;
};

const jobCounts = async (url: string): Promise<Record<string, number>> => {
  const text = await (await api(url, 'GET', '/metrics')).text();
  const counts: Record<string, number> = {};
  for (const m of text.matchAll(/^flotilla_jobs\{[^}]*status="(\w+)"[^}]*\} (\d+)/gm))
    counts[m[1]] = Number(m[2]);
  return counts;
};

/** Sends n jobs (16 in flight) and waits until every job so far has finished. */
const runJobs = async (url: string, token: string, n: number, expectedDone: number, peak: () => void) => {
  let sent = 0;
  const sender = async () => {
    while (sent < n) {
      sent++;
      const res = await fetch(`${url}/job/noop`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
      });
      if (res.status !== 201) throw new Error(`POST /job: ${res.status} ${await res.text()}`);
      await res.arrayBuffer();
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: 16 }, sender));
  for (;;) {
    peak();
    const c = await jobCounts(url);
    if ((c.Succeeded ?? 0) + (c.Failed ?? 0) >= expectedDone) {
      return { seconds: (performance.now() - t0) / 1000, failed: c.Failed ?? 0 };
    }
    await sleep(1000);
  }
};

/** The trivial service the jobs run: no storage, so they exercise intake, scheduling, the
 * spawner and the job records, not the object store. Returns its token. */
const createNoop = async (url: string): Promise<string> => {
  await api(url, 'POST', '/system/services', {
    name: 'noop',
    image: 'alpine',
    script: 'true',
    cpu: '0.1',
    memory: '64Mi',
  });
  return ((await (await api(url, 'GET', '/system/services/noop')).json()) as { token: string }).token;
};

interface Profile {
  fresh: number;
  restart: number;
  afterJobs: TreeRss;
  cpuMsPerJob: number;
}

/** One variant, briefly: fresh start, restart, WARMUP_JOBS jobs; RSS after IDLE_MS each. */
const profile = async (dir: string, nodeArgs: string[], cli = CLI): Promise<Profile> => {
  const first = await startManager(dir, nodeArgs, {}, cli);
  await sleep(IDLE_MS);
  const fresh = treeRss(first.proc.pid!).totalMb;
  await stop(first.proc);
  const m = await startManager(dir, nodeArgs, {}, cli);
  try {
    await sleep(IDLE_MS);
    const restart = treeRss(m.proc.pid!).totalMb;
    const token = await createNoop(m.url);
    const cpu0 = cpuMs(m.proc.pid!);
    await runJobs(m.url, token, WARMUP_JOBS, WARMUP_JOBS, () => {});
    const cpuMsPerJob = (cpuMs(m.proc.pid!) - cpu0) / WARMUP_JOBS;
    await sleep(IDLE_MS);
    return { fresh, restart, afterJobs: treeRss(m.proc.pid!), cpuMsPerJob };
  } finally {
    await stop(m.proc);
  }
};

// ------------------------------------------------------------ main

const build = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts', 'build.mjs')], { encoding: 'utf8' });
if (build.status !== 0) throw new Error(`build failed: ${build.stderr}`);

const root = await mkdtemp(join(tmpdir(), 'flotilla-footprint-'));
try {
  // Which packages an idle manager loads: the baseline loads the same.
  const logFile = join(root, 'modules.log');
  const probe = await startManager(join(root, 'probe'), MODULE_LOG_ARGS, { FLOTILLA_MODULE_LOG: logFile });
  await sleep(1000);
  await stop(probe.proc);
  const packages = [...(await loadedPackages(logFile))].sort();

  const baselineRss: number[] = [];
  const baselineStart: Array<{ ms: number; cpu: number }> = [];
  for (let i = 0; i < 3; i++) {
    const b = await spawnHealthy([BASELINE, '$PORT', ...packages]);
    baselineStart.push({ ms: b.msToHealth, cpu: b.cpuMs });
    await sleep(IDLE_MS);
    baselineRss.push(treeRss(b.proc.pid!).totalMb);
    await stop(b.proc);
  }

  const fresh: { ms: number; cpu: number; rss: TreeRss }[] = [];
  let dataDir = '';
  for (let i = 0; i < FRESH_RUNS; i++) {
    dataDir = join(root, `data-${i}`);
    const m = await startManager(dataDir);
    await sleep(IDLE_MS);
    fresh.push({ ms: m.msToHealth, cpu: m.cpuMs, rss: treeRss(m.proc.pid!) });
    await stop(m.proc);
  }

  const restarts: { ms: number; cpu: number; rss: TreeRss }[] = [];
  let m: Started | undefined;
  for (let i = 0; i < RESTARTS; i++) {
    m = await startManager(dataDir);
    await sleep(IDLE_MS);
    restarts.push({ ms: m.msToHealth, cpu: m.cpuMs, rss: treeRss(m.proc.pid!) });
    if (i < RESTARTS - 1) await stop(m.proc);
  }
  const manager = m!;
  const pid = manager.proc.pid!;

  const token = await createNoop(manager.url);
  const jobsCpu0 = cpuMs(pid);
  let peakMb = 0;
  const peak = () => {
    peakMb = Math.max(peakMb, treeRss(pid).totalMb);
  };
  const sampler = setInterval(peak, 1000);
  const warm = await runJobs(manager.url, token, WARMUP_JOBS, WARMUP_JOBS, peak);
  await sleep(IDLE_MS);
  const afterWarm = treeRss(pid);
  const rest = await runJobs(manager.url, token, JOBS - WARMUP_JOBS, JOBS, peak);
  const rightAfter = treeRss(pid);
  const jobsCpuMs = cpuMs(pid) - jobsCpu0;
  await sleep(Math.max(IDLE_MS, 30_000));
  const afterAll = treeRss(pid);
  clearInterval(sampler);

  // First use of storage (GET /system/status counts buckets and objects): loads the S3 stack.
  await api(manager.url, 'GET', '/system/status');
  await sleep(IDLE_MS);
  const afterStorage = treeRss(pid);
  await stop(manager.proc);

  const mb = (x: number) => fmt(x, 0);
  const med = (xs: TreeRss[], k: keyof TreeRss) => median(xs.map((x) => x[k]));
  const idleS = IDLE_MS / 1000;
  console.log(`packages the idle manager loaded (${packages.length}): ${packages.join(', ')}\n`);
  console.log(
    [
      row(['process tree RSS, MB', 'total', 'manager', 'spawner and others', 'processes', 'runs']),
      row(['---', '---', '---', '---', '---', '---']),
      row([
        `baseline: bare Fastify + the same ${packages.length} packages, ${idleS} s idle`,
        mb(median(baselineRss)),
        mb(median(baselineRss)),
        '0',
        1,
        baselineRss.length,
      ]),
      ...(
        [
          [`fresh data dir, ${idleS} s idle`, fresh.map((f) => f.rss)],
          [`restart (existing data dir), ${idleS} s idle`, restarts.map((r) => r.rss)],
          [`after ${WARMUP_JOBS} jobs, ${idleS} s idle`, [afterWarm]],
          [`after ${JOBS} jobs, at once`, [rightAfter]],
          [`after ${JOBS} jobs, ${Math.max(idleS, 30)} s idle`, [afterAll]],
          [`then first storage use (S3 stack loaded), ${idleS} s idle`, [afterStorage]],
        ] as Array<[string, TreeRss[]]>
      ).map(([what, xs]) =>
        row([
          what,
          mb(med(xs, 'totalMb')),
          mb(med(xs, 'managerMb')),
          mb(med(xs, 'othersMb')),
          med(xs, 'processes'),
          xs.length,
        ]),
      ),
      row([`peak while the ${JOBS} jobs ran (sampled every 1 s)`, mb(peakMb), '', '', '', 1]),
    ].join('\n'),
  );
  const drift = ((afterAll.totalMb - afterWarm.totalMb) / afterWarm.totalMb) * 100;
  console.log(
    `\nflat over ${JOBS - WARMUP_JOBS} jobs: ${fmt(drift, 1)} % (after ${JOBS} vs after ${WARMUP_JOBS}, both idle);` +
      ` ${JOBS} jobs in ${fmt(warm.seconds + rest.seconds, 0)} s, ${warm.failed + rest.failed} failed,` +
      ` manager CPU ${fmt(jobsCpuMs / JOBS, 1)} ms per job\n`,
  );
  const loadavg = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  console.log(
    [
      row(['start → first 200 on /health', 'median ms', 'min', 'max', 'CPU used, median ms', 'runs']),
      row(['---', '---', '---', '---', '---', '---']),
      ...(
        [
          ['baseline: bare Fastify + the same packages', baselineStart],
          ['fresh data dir (CPU includes the initdb process)', fresh],
          ['existing data dir', restarts],
        ] as Array<[string, Array<{ ms: number; cpu: number }>]>
      ).map(([what, xs]) => {
        const ms = xs.map((x) => x.ms);
        return row([
          what,
          fmt(median(ms), 0),
          fmt(Math.min(...ms), 0),
          fmt(Math.max(...ms), 0),
          fmt(median(xs.map((x) => x.cpu)), 0),
          xs.length,
        ]);
      }),
    ].join('\n'),
  );

  // Each footprint setting of `flotilla up` switched back to V8's default (node's command line
  // wins over them), and optionally another checkout (BENCH_COMPARE=DIR, e.g. the commit
  // before this work), all through the same short profile.
  if (process.env.BENCH_ABLATION !== '0') {
    const variants: Array<[string, string[], string?]> = [
      ['as shipped', []],
      ['TurboFan for PGlite’s WASM (--no-liftoff-only)', ['--no-liftoff-only']],
      ['young generation grows (--semi-space-growth-factor=2)', ['--semi-space-growth-factor=2']],
      ['old generation grows as V8 decides (--heap-growing-percent=0)', ['--heap-growing-percent=0']],
      ['TurboFan for JavaScript (--max-opt=999)', ['--max-opt=999']],
    ];
    if (process.env.BENCH_COMPARE) {
      variants.push([
        `${process.env.BENCH_COMPARE} (its own bin)`,
        [],
        join(process.env.BENCH_COMPARE, 'bin', 'flotilla.mjs'),
      ]);
    }
    const lines = [
      row([
        'variant',
        'fresh, MB',
        'restart, MB',
        `after ${WARMUP_JOBS} jobs, MB (manager)`,
        'manager CPU ms per job',
      ]),
      row(['---', '---', '---', '---', '---']),
    ];
    for (const [i, [what, args, cli]] of variants.entries()) {
      const p = await profile(join(root, `variant-${i}`), args, cli);
      lines.push(
        row([
          what,
          mb(p.fresh),
          mb(p.restart),
          `${mb(p.afterJobs.totalMb)} (${mb(p.afterJobs.managerMb)})`,
          fmt(p.cpuMsPerJob, 1),
        ]),
      );
    }
    console.log(`\n${lines.join('\n')}`);
  }
  console.log(`\nload average at the end: ${loadavg} (2 cores)`);
} finally {
  await rm(root, { recursive: true, force: true });
}
