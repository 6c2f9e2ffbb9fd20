// The job sandbox against the attacks of issue #11 (tenancy), one test per attack, each run
// through the real process executor on this machine: a hijack variable (LD_PRELOAD to a
// library on disk) loaded by bwrap outside the namespaces; one running job reading another's
// files and /proc; declared memory and cpu not enforced; jobs reaching the host's loopback
// services. Needs root, bubblewrap, slirp4netns, writable cgroups, gcc, perl and iproute2:
// without them this file fails and says what is missing, it never skips.
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createProcessExecutor,
  DEFAULT_UID_RANGE,
  type ProcessExecutor,
} from '../../src/adapters/executor-process/index.ts';
import { inspectJobSandbox } from '../../src/adapters/executor-process/inspect.ts';
import { probeJobSandbox } from '../../src/app/tier/detector.ts';
import type { ExecutionRequest, ExecutionResult } from '../../src/core/ports.ts';
import {
  buildPreloadLibrary,
  connectLine,
  requireHost,
  startLoopbackServer,
  startOutsideServer,
  type TokenServer,
} from '../support/job-sandbox-host.ts';

const MiB = 1024 ** 2;

function request(script: string, overrides: Partial<ExecutionRequest> = {}): ExecutionRequest {
  return {
    jobId: randomUUID(),
    serviceName: 'sandbox-test',
    script,
    event: '{}',
    env: {},
    timeoutMs: 30_000,
    cpuMillis: 1000,
    memoryBytes: 512 * MiB,
    ...overrides,
  } as ExecutionRequest;
}

function field(text: string, name: string): string | undefined {
  return text.match(new RegExp(`^${name}=(.*)$`, 'm'))?.[1];
}

/** Host pid of the job's shell, found by its JOB_UUID (root reads every environ). */
function jobShellPid(jobId: string): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== 'sh') continue;
      if (readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').includes(`JOB_UUID=${jobId}`))
        return Number(entry);
    } catch {
      // gone, or a kernel thread
    }
  }
  return undefined;
}

/** Runs `cmd` on the host (outside every namespace) with the given uid and gid. */
function runAs(uid: number, gid: number, cmd: string[]): { status: number | null; out: string } {
  const r = spawnSync(cmd[0]!, cmd.slice(1), { uid, gid, encoding: 'utf8', env: {} });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

const alloc192 = `perl -e '$x = "x" x (192 * 1024 * 1024); print "ALLOCATED=", length($x), "\\n"'`;

/** Children's user+sys cpu seconds from dash's `times` after a busy loop of `seconds`. */
const busyLoop = (seconds: number) =>
  // `times` in the script's own shell (a pipeline would run it in a subshell, with no children).
  `timeout ${seconds} sh -c 'while :; do :; done'; times > times.txt\n` +
  `tail -n 1 times.txt | sed 's/m/ /g; s/s//g' | awk '{ printf "CPU=%.3f\\n", $1 * 60 + $2 + $3 * 60 + $4 }'`;

describe('job sandbox (issue #11)', () => {
  let workRoot: string;
  let executor: ProcessExecutor;

  beforeAll(async () => {
    requireHost(['root', 'bwrap', 'slirp4netns', 'cgroups', 'gcc', 'perl', 'ip']);
    workRoot = await mkdtemp(join(tmpdir(), 'flotilla-sandbox-work-'));
    executor = createProcessExecutor({ workRoot, sandbox: 'bubblewrap' });
  });

  afterAll(async () => {
    await executor?.close();
    if (workRoot) await rm(workRoot, { recursive: true, force: true });
  });

  it('uses bubblewrap, a uid per job, cgroup limits and the isolated network here, and says so', () => {
    expect(executor.isolation).toBe('bubblewrap');
    expect(['cgroup-v1', 'cgroup-v2']).toContain(executor.limits);
    expect(executor.network).toBe('isolated');
    expect(executor.isolationNote).toMatch(/job uids \d+-\d+, one per running job/);
    expect(executor.isolationNote).toMatch(/slirp4netns --disable-host-loopback/);
    const doctor = probeJobSandbox(() =>
      inspectJobSandbox({ network: 'isolated', jobUids: DEFAULT_UID_RANGE }),
    );
    expect(doctor).toMatchObject({ service: 'job-sandbox', level: 'green', ok: true });
    expect(doctor.message).toContain(`limits: ${executor.limits}`);
  });

  it('a run keeps a process that has nothing else to do alive until it ends', () => {
    const run = spawnSync(process.execPath, ['bin/run-ts.mjs', 'test/support/run-one-job.ts'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(run.stdout + run.stderr).toContain('ran-to-the-end');
    expect(run.status).toBe(0);
  });

  it('item 4: hijack variables (LD_PRELOAD to a library on disk) reach neither bwrap nor the job', async () => {
    const { library, markerFile } = await buildPreloadLibrary();
    try {
      // The library works: a host process that is given it loads it.
      spawnSync('/bin/true', [], { env: { LD_PRELOAD: library } });
      expect(readFileSync(markerFile, 'utf8')).toMatch(/^true uid=0$/m);
      writeFileSync(markerFile, '');
      chmodSync(markerFile, 0o666); // any uid may leave its line

      // As a service stored before the create-time check would hand them over.
      const env = {
        LD_PRELOAD: library,
        LD_AUDIT: library,
        LD_LIBRARY_PATH: dirname(library),
        GCONV_PATH: dirname(library),
        GLIBC_TUNABLES: 'glibc.malloc.check=3',
        BASH_ENV: join(dirname(library), 'startup.sh'),
        ENV: join(dirname(library), 'startup.sh'),
        NODE_OPTIONS: '--require /tmp/x.js',
        ORDINARY: 'kept',
      };
      const result = await executor.run(request('env', { env }));
      expect(result.exitCode, result.stderr).toBe(0);
      expect(readFileSync(markerFile, 'utf8'), 'processes that loaded the library').toBe('');
      for (const name of Object.keys(env).filter((n) => n !== 'ORDINARY')) {
        expect(field(result.stdout, name), `${name} in the job's environment`).toBeUndefined();
      }
      expect(field(result.stdout, 'ORDINARY')).toBe('kept');
      await result.dispose();
    } finally {
      await rm(dirname(library), { recursive: true, force: true });
    }
  });

  it("item 4: two running jobs have distinct uids; one's uid cannot read the other's work dir or /proc", async () => {
    const script = [
      'echo "UID=$(id -u)"',
      'echo "GID=$(id -g)"',
      'echo "WORK=$(pwd)"',
      'echo "$JOB_SECRET" > "$TMP_OUTPUT_DIR/secret.txt"',
      'echo READY',
      'i=0; while [ ! -e release ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done',
    ].join('\n');
    const logs = { a: '', b: '' };
    const a = request(script, { env: { JOB_SECRET: 'secret-of-job-a-3f9c' }, onLog: (t) => (logs.a += t) });
    const b = request(script, { env: { JOB_SECRET: 'secret-of-job-b-81d2' }, onLog: (t) => (logs.b += t) });
    const running = [executor.run(a), executor.run(b)];
    const deadline = Date.now() + 15_000;
    while (!(logs.a.includes('READY') && logs.b.includes('READY')) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    expect(logs.a + logs.b).toMatch(/READY[\s\S]*READY/);

    const uidA = Number(field(logs.a, 'UID'));
    const [uidB, gidB] = [Number(field(logs.b, 'UID')), Number(field(logs.b, 'GID'))];
    const workA = field(logs.a, 'WORK')!;
    const pidA = jobShellPid(a.jobId);
    try {
      expect(uidA, 'the two jobs run as the same uid').not.toBe(uidB);
      for (const uid of [uidA, uidB]) expect(uid).not.toBe(0);
      expect(statSync(workA).uid).toBe(uidA);
      expect(statSync(workA).mode & 0o777).toBe(0o700);
      expect(pidA, "job A's shell on the host").toBeGreaterThan(0);

      // What the LD_PRELOAD escape did: code with job B's credentials, outside the namespaces.
      for (const cmd of [
        ['/bin/cat', `/proc/${pidA}/environ`],
        ['/bin/cat', `/proc/${pidA}/cmdline`, `/proc/${pidA}/cwd/script.sh`],
        ['/bin/cat', join(workA, 'output', 'secret.txt')],
        ['/bin/ls', workA],
      ]) {
        const seen = runAs(uidB, gidB, cmd);
        expect(seen.out, cmd.join(' ')).not.toContain('secret-of-job-a');
        expect(seen.status, `${cmd.join(' ')} as job B: ${seen.out}`).not.toBe(0);
      }
    } finally {
      for (const log of [logs.a, logs.b]) {
        const dir = field(log, 'WORK');
        if (dir) await writeFile(join(dir, 'release'), '').catch(() => undefined);
      }
      for (const r of await Promise.all(running)) await r.dispose();
    }
  });

  it('item 11: a job that allocates more than its declared memory fails; with room it succeeds', async () => {
    const within = await executor.run(request(alloc192, { memoryBytes: 1024 * MiB }));
    expect(field(within.stdout, 'ALLOCATED'), within.stderr).toBe(String(192 * MiB));
    const over = await executor.run(request(alloc192, { memoryBytes: 64 * MiB }));
    expect(field(over.stdout, 'ALLOCATED'), 'allocated 192 MiB with 64 MiB declared').toBeUndefined();
    expect(over.exitCode).not.toBe(0);
    for (const r of [within, over]) await r.dispose();
  });

  it('item 11: a 0.1-cpu busy loop gets about 0.1 cpu-second per second', async () => {
    const seconds = 3;
    const result = await executor.run(request(busyLoop(seconds), { cpuMillis: 100 }));
    const used = Number(field(result.stdout, 'CPU'));
    expect(used, result.stdout + result.stderr).toBeGreaterThan(0.02); // the loop ran
    // 0.1 × 3 s = 0.3 cpu-s; unlimited it takes a whole core (up to 3 cpu-s).
    expect(used, 'cpu-seconds used in 3 s').toBeLessThan(0.2 * seconds);
    await result.dispose();
  });

  describe('item 12: network', () => {
    const servers: TokenServer[] = [];
    let loop4: TokenServer;
    let loop6: TokenServer;
    let outside: TokenServer;

    beforeAll(async () => {
      loop4 = await startLoopbackServer('127.0.0.1');
      loop6 = await startLoopbackServer('::1');
      outside = await startOutsideServer();
      servers.push(loop4, loop6, outside);
    });
    afterAll(async () => {
      for (const s of servers) await s.close();
    });

    it("reaches a server outside but none of the host's loopback services", async () => {
      const script = [
        connectLine('LOOP4', loop4.host, loop4.port),
        connectLine('LOOP6', loop6.host, loop6.port),
        // slirp4netns's gateway address is where the host's loopback would be mapped.
        connectLine('GATEWAY', '10.0.2.2', loop4.port),
        connectLine('OUTSIDE', outside.host, outside.port),
      ].join('\n');
      const result = await executor.run(request(script));
      const out = result.stdout + result.stderr;
      expect(field(out, 'OUTSIDE'), out).toBe(outside.token);
      for (const name of ['LOOP4', 'LOOP6', 'GATEWAY']) {
        expect(field(out, name), `${name}: ${out}`).toMatch(/^unreachable/);
      }
      expect(out).not.toContain(loop4.token);
      expect(out).not.toContain(loop6.token);
      await result.dispose();
    });
  });
});

// Where no cgroup can be written the executor falls back to rlimits: total cpu time and
// address space per process, not a rate (docs/security.md). Forced here, so it is checked too.
describe('job sandbox: rlimit fallback', () => {
  it('is named by the executor', () => {
    expect(executor.limits).toBe('rlimit');
    expect(executor.isolationNote).toMatch(/rlimits only \(RLIMIT_AS per process, RLIMIT_CPU/);
  });

  let workRoot: string;
  let executor: ProcessExecutor;

  beforeAll(async () => {
    requireHost(['bwrap', 'perl']);
    workRoot = await mkdtemp(join(tmpdir(), 'flotilla-sandbox-rlimit-'));
    executor = createProcessExecutor({
      workRoot,
      sandbox: 'bubblewrap',
      resourceLimits: 'rlimit',
    } as Parameters<typeof createProcessExecutor>[0]);
  });

  afterAll(async () => {
    await executor?.close();
    if (workRoot) await rm(workRoot, { recursive: true, force: true });
  });

  it('a job that allocates more than its declared memory fails; with room it succeeds', async () => {
    const within = await executor.run(request(alloc192, { memoryBytes: 1024 * MiB }));
    expect(field(within.stdout, 'ALLOCATED'), within.stderr).toBe(String(192 * MiB));
    const over = await executor.run(request(alloc192, { memoryBytes: 64 * MiB }));
    expect(field(over.stdout, 'ALLOCATED')).toBeUndefined();
    expect(over.exitCode).not.toBe(0);
    for (const r of [within, over]) await r.dispose();
  });

  it('caps cpu time at the declared cores × timeout and the address space at the memory, hard', async () => {
    // 0.5 cpu over a 30 s timeout: 15 cpu-seconds. The kernel sends SIGXCPU past them; burning
    // them here would only measure how loaded the machine is, so the limit itself is read.
    const result: ExecutionResult = await executor.run(
      request(
        'echo "SOFT=$(ulimit -S -t)"; echo "HARD=$(ulimit -H -t)"; echo "AS=$(ulimit -H -v)"\n' +
          'if ulimit -t unlimited 2>/dev/null; then echo RAISED; fi',
        {
          cpuMillis: 500,
          timeoutMs: 30_000,
        },
      ),
    );
    expect(result.exitCode, result.stderr).toBe(0);
    expect(field(result.stdout, 'SOFT')).toBe('15');
    expect(field(result.stdout, 'HARD')).toBe('15');
    expect(field(result.stdout, 'AS')).toBe(String(512 * 1024)); // KiB of the declared 512 MiB
    expect(result.stdout).not.toContain('RAISED');
    await result.dispose();
  });
});
