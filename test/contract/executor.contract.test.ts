// Executor contract: one suite, run against the process executor in the sandbox this
// machine offers (bubblewrap here) and unsandboxed (sandbox 'none'), and against the
// Kubernetes executor on the fake API server (whose kubelet runs the pod's script with /bin/sh).
// Every case runs a real /bin/sh script and checks what it really did. Where the two differ by
// design (one pod log instead of two streams; files staged and uploaded inside the pod by
// faas-supervisor), the case says so by its traits and the other side has its own case.
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKubernetesExecutor } from '../../src/adapters/executor-kubernetes/index.ts';
import { createProcessExecutor } from '../../src/adapters/executor-process/index.ts';
import type { ExecutionOutput, ExecutionRequest, Executor } from '../../src/core/ports.ts';
import { startFakeKubeApi } from '../support/fake-kube-api.ts';

interface Subject {
  executor: Executor;
  cleanup(): Promise<void>;
  /** Objects the executor left behind in the cluster (Kubernetes only). */
  leftovers?(): number;
}

/** Registers the case only for executors it applies to (not a skip: the other side has its own case). */
const caseIf = (applies: boolean) => (applies ? it : ((() => undefined) as unknown as typeof it));

/** What differs between executors by design. */
interface Traits {
  /** 'streams': stdout and stderr apart; 'pod-log': one log, as a container runtime keeps it. */
  logs: 'streams' | 'pod-log';
  /** 'local': input and outputs are files the manager writes and reads; 'in-pod': faas-supervisor stages them inside the pod. */
  files: 'local' | 'in-pod';
  /** A variable over 128 KiB is left out rather than failing execve (process only). */
  dropsHugeVariables: boolean;
}

const PROCESS_TRAITS: Traits = { logs: 'streams', files: 'local', dropsHugeVariables: true };
const KUBE_TRAITS: Traits = { logs: 'pod-log', files: 'in-pod', dropsHugeVariables: false };

/** Short, so the timeout and cancel cases stay quick; the suite's bounds are built on it. */
const KILL_GRACE_MS = 500;
const MB = 1_000_000;

function request(overrides: Partial<ExecutionRequest> & { script: string }): ExecutionRequest {
  return {
    jobId: randomUUID(),
    serviceName: 'contract-svc',
    event: '{}',
    env: {},
    timeoutMs: 20_000,
    cpuMillis: 1000,
    memoryBytes: 512 * 1024 ** 2,
    ...overrides,
  };
}

/** An output's bytes, read the only way the port offers: through open(). */
async function readOutput(output: ExecutionOutput): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of await output.open()) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8');
}

/** `NAME=value` lines of the script's stdout, as a map. */
function parseLines(stdout: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) vars[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return vars;
}

/** Host processes whose command line contains marker (host /proc also sees sandboxed pid namespaces). */
function processesWith(marker: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(marker)) pids.push(Number(entry));
    } catch {
      // exited while we looked
    }
  }
  return pids;
}

async function waitUntil(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return check();
}

/** A `sleep` whose argument is unique to this test, so it can be found in /proc. */
function markedSleep(): { marker: string; command: string } {
  const marker = `100.${Date.now()}${Math.floor(Math.random() * 1000)}`;
  return { marker, command: `sleep ${marker}` };
}

async function* chunks(...parts: string[]): AsyncIterable<Uint8Array> {
  for (const part of parts) yield new TextEncoder().encode(part);
}

function executorContract(name: string, traits: Traits, factory: () => Promise<Subject>): void {
  const local = traits.files === 'local';
  const streams = traits.logs === 'streams';
  describe(`Executor contract: ${name}`, () => {
    let subject: Subject;
    let executor: Executor;
    /** Runs and disposes right away, for cases that only look at the result. */
    const runOnce = async (req: ExecutionRequest) => {
      const result = await executor.run(req);
      await result.dispose();
      return result;
    };

    beforeAll(async () => {
      subject = await factory();
      executor = subject.executor;
    });
    afterAll(async () => {
      await subject?.cleanup();
    });

    caseIf(!streams)('captures stdout and stderr in one log, in order, and gives it to onLog', async () => {
      const logged: string[] = [];
      const result = await runOnce(
        request({ script: 'echo to-stdout\necho to-stderr >&2\n', onLog: (chunk) => logged.push(chunk) }),
      );
      expect(result).toMatchObject({
        exitCode: 0,
        signal: null,
        timedOut: false,
        cancelled: false,
        truncated: false,
        stdout: 'to-stdout\nto-stderr\n',
        stderr: '',
      });
      expect(logged.join('')).toBe('to-stdout\nto-stderr\n');
    });

    caseIf(streams)('captures stdout and stderr separately and streams them to onLog', async () => {
      const logged: string[] = [];
      const result = await runOnce(
        request({ script: 'echo to-stdout\necho to-stderr >&2\n', onLog: (chunk) => logged.push(chunk) }),
      );
      expect(result).toMatchObject({
        exitCode: 0,
        signal: null,
        timedOut: false,
        cancelled: false,
        truncated: false,
        stdout: 'to-stdout\n',
        stderr: 'to-stderr\n',
      });
      expect(logged.join('')).toContain('to-stdout');
      expect(logged.join('')).toContain('to-stderr');
      expect(result.durationMs).toBeGreaterThanOrEqual(0);
    });

    it("gives the script faas-supervisor's variables and the service's", async () => {
      const jobId = randomUUID();
      const event =
        '{"Records": [{"s3": {"object": {"key": "in/a b.txt"}}}], "quote": "it\'s \\"x\\""}\nline2';
      const result = await runOnce(
        request({
          jobId,
          serviceName: 'grayify',
          event,
          env: { GREETING: 'hello world', API_KEY: 'k-123' },
          extraEnv: { STORAGE_OBJECT_KEY: 'in/a b.txt' },
          script: [
            'echo "JOB_UUID=$JOB_UUID"',
            'echo "OSCAR_SERVICE_NAME=$OSCAR_SERVICE_NAME"',
            'echo "STORAGE_OBJECT_KEY=$STORAGE_OBJECT_KEY"',
            'echo "GREETING=$GREETING"',
            'echo "API_KEY=$API_KEY"',
            'echo "INPUT_FILE_PATH=$(printenv INPUT_FILE_PATH || echo unset)"',
            'echo "TMP_INPUT_DIR=$TMP_INPUT_DIR"',
            'echo "TMP_OUTPUT_DIR=$TMP_OUTPUT_DIR"',
            'echo "PATH=$PATH"',
            'test -d "$TMP_INPUT_DIR" && test -d "$TMP_OUTPUT_DIR" && echo "DIRS=ok"',
            'printf %s "$EVENT" > "$TMP_OUTPUT_DIR/event.txt"',
          ].join('\n'),
        }),
      );
      const vars = parseLines(result.stdout);
      expect(vars).toMatchObject({
        JOB_UUID: jobId,
        OSCAR_SERVICE_NAME: 'grayify',
        STORAGE_OBJECT_KEY: 'in/a b.txt',
        GREETING: 'hello world',
        API_KEY: 'k-123',
        INPUT_FILE_PATH: 'unset',
        DIRS: 'ok',
      });
      expect(vars.TMP_INPUT_DIR).toMatch(/\/input$/);
      expect(vars.TMP_OUTPUT_DIR).toMatch(/\/output$/);
      expect(vars.PATH).toContain('/usr/bin');
      if (local) {
        const eventFile = result.outputs.find((o) => o.relPath === 'event.txt');
        expect(eventFile?.size).toBe(Buffer.byteLength(event));
      }
    });

    caseIf(!local)('keeps the event intact, byte for byte, in the pod', async () => {
      const event = '{"data": "aGVsbG8=", "unicode": "ñ→✓", "spaces": "  a  b  ", "q": "it\'s \\"x\\""}';
      const result = await runOnce(request({ event, script: 'printf %s "$EVENT"' }));
      expect(result.stdout).toBe(event);
    });

    caseIf(!local)(
      'leaves input and outputs to the supervisor in the pod: none staged, none reported',
      async () => {
        const result = await runOnce(
          request({
            input: { fileName: 'photo.txt', body: new TextEncoder().encode('pixels\n') },
            script: [
              'echo "INPUT_FILE_PATH=$(printenv INPUT_FILE_PATH || echo unset)"',
              'echo "INPUT_FILES=$(ls -A "$TMP_INPUT_DIR" | wc -l)"',
              'printf out > "$TMP_OUTPUT_DIR/result.txt"',
            ].join('\n'),
          }),
        );
        expect(result.exitCode).toBe(0);
        expect(parseLines(result.stdout)).toMatchObject({ INPUT_FILE_PATH: 'unset', INPUT_FILES: '0' });
        expect(result.outputs).toEqual([]);
      },
    );

    caseIf(local)('keeps the event intact, byte for byte', async () => {
      const event = '{"data": "aGVsbG8=", "unicode": "ñ→✓", "spaces": "  a  b  "}';
      const result = await executor.run(
        request({ event, script: 'printf %s "$EVENT" > "$TMP_OUTPUT_DIR/e"' }),
      );
      expect(await readOutput(result.outputs[0]!)).toBe(event);
      await result.dispose();
    });

    caseIf(local)(
      'writes an input given as bytes to TMP_INPUT_DIR and points INPUT_FILE_PATH at it',
      async () => {
        const result = await runOnce(
          request({
            input: { fileName: 'photo.txt', body: new TextEncoder().encode('pixels\n') },
            script: [
              'echo "INPUT_FILE_PATH=$INPUT_FILE_PATH"',
              'echo "IN_DIR=$(dirname "$INPUT_FILE_PATH")"',
              'echo "TMP_INPUT_DIR=$TMP_INPUT_DIR"',
              'echo "CONTENT=$(cat "$INPUT_FILE_PATH")"',
            ].join('\n'),
          }),
        );
        const vars = parseLines(result.stdout);
        expect(result.exitCode).toBe(0);
        expect(vars.INPUT_FILE_PATH).toMatch(/\/input\/photo\.txt$/);
        expect(vars.IN_DIR).toBe(vars.TMP_INPUT_DIR);
        expect(vars.CONTENT).toBe('pixels');
      },
    );

    caseIf(local)('writes a streamed input, keeping only the base name of an object key', async () => {
      const result = await runOnce(
        request({
          input: { fileName: 'uploads/2024/scan.bin', body: chunks('first-', 'second-', 'third') },
          script: 'echo "NAME=$(basename "$INPUT_FILE_PATH")"\necho "CONTENT=$(cat "$INPUT_FILE_PATH")"\n',
        }),
      );
      expect(parseLines(result.stdout)).toMatchObject({ NAME: 'scan.bin', CONTENT: 'first-second-third' });
    });

    caseIf(local)(
      'lists every regular file under TMP_OUTPUT_DIR, nested ones included, and no symlinks',
      async () => {
        const result = await executor.run(
          request({
            script: [
              'cd "$TMP_OUTPUT_DIR"',
              'mkdir -p a/b empty',
              'printf abc > top.txt',
              'printf hello > a/b/deep.txt',
              'printf 12 > a/mid.txt',
              'ln -s /etc/passwd leak',
              'ln -s a linked-dir',
            ].join('\n'),
          }),
        );
        expect(result.exitCode).toBe(0);
        const listed = result.outputs.map(({ relPath, size }) => ({ relPath, size }));
        expect(listed.sort((x, y) => x.relPath.localeCompare(y.relPath))).toEqual([
          { relPath: 'a/b/deep.txt', size: 5 },
          { relPath: 'a/mid.txt', size: 2 },
          { relPath: 'top.txt', size: 3 },
        ]);
        const deep = result.outputs.find((o) => o.relPath === 'a/b/deep.txt')!;
        expect(await readOutput(deep)).toBe('hello');
        // The other listed ones open too, each to its own bytes.
        const texts = await Promise.all(result.outputs.map(readOutput));
        expect(texts).toEqual(['hello', '12', 'abc']);
        await result.dispose();
      },
    );

    it('reports a non-zero exit as a result, not an error', async () => {
      const result = await runOnce(request({ script: 'echo failing >&2\nexit 3\n' }));
      expect(result).toMatchObject({ exitCode: 3, signal: null, timedOut: false, cancelled: false });
      expect(streams ? result.stderr : result.stdout).toBe('failing\n');
    });

    it('reports a script that does not even parse as a failed result', async () => {
      const result = await runOnce(request({ script: 'if then fi (\n' }));
      expect(result.exitCode).not.toBe(0);
      expect(streams ? result.stderr : result.stdout).not.toBe('');
    });

    it('kills a job at its timeout, backgrounded children included', async () => {
      const child = markedSleep();
      const started = Date.now();
      const result = await runOnce(
        request({ timeoutMs: 700, script: `${child.command} &\necho started\nsleep 100\n` }),
      );
      const elapsed = Date.now() - started;
      expect(result.timedOut).toBe(true);
      expect(result.cancelled).toBe(false);
      expect(result.exitCode === null || result.exitCode !== 0).toBe(true);
      expect(result.stdout).toBe('started\n');
      expect(elapsed).toBeGreaterThanOrEqual(650);
      expect(elapsed).toBeLessThan(700 + KILL_GRACE_MS + 2_000);
      expect(await waitUntil(() => processesWith(child.marker).length === 0, 2_000)).toBe(true);
    });

    it('escalates to SIGKILL when the script ignores SIGTERM', async () => {
      const started = Date.now();
      const result = await runOnce(request({ timeoutMs: 500, script: "trap '' TERM\nsleep 100\n" }));
      const elapsed = Date.now() - started;
      expect(result.timedOut).toBe(true);
      expect(elapsed).toBeLessThan(500 + KILL_GRACE_MS + 2_000);
    });

    it('does not leave behind what a finished script started in the background', async () => {
      const child = markedSleep();
      const started = Date.now();
      const result = await runOnce(request({ script: `${child.command} &\necho done\n` }));
      expect(result).toMatchObject({ exitCode: 0, timedOut: false, stdout: 'done\n' });
      // The backgrounded sleep held the stdout pipe: the run must not wait for it.
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(await waitUntil(() => processesWith(child.marker).length === 0, 2_000)).toBe(true);
    });

    it('cancels a running job when its signal aborts', async () => {
      const controller = new AbortController();
      const child = markedSleep();
      setTimeout(() => controller.abort(), 400);
      const started = Date.now();
      const result = await runOnce(
        request({ signal: controller.signal, script: `${child.command} &\nsleep 100\n` }),
      );
      expect(result).toMatchObject({ cancelled: true, timedOut: false });
      expect(Date.now() - started).toBeLessThan(400 + KILL_GRACE_MS + 2_000);
      expect(await waitUntil(() => processesWith(child.marker).length === 0, 2_000)).toBe(true);
    });

    it('does not start a job whose signal is already aborted', async () => {
      const controller = new AbortController();
      controller.abort();
      const result = await runOnce(
        request({ signal: controller.signal, script: 'echo ran\ntouch "$TMP_OUTPUT_DIR/ran"\n' }),
      );
      expect(result).toMatchObject({ cancelled: true, stdout: '', outputs: [] });
    });

    it('truncates 100 MB of output to the head and keeps memory bounded', async () => {
      let streamed = 0;
      // Buffers live outside the JS heap: arrayBuffers is what holding the output would grow.
      // The largest rise above the lowest point so far ignores garbage earlier tests left.
      let low = Number.POSITIVE_INFINITY;
      let rise = 0;
      const sampler = setInterval(() => {
        const now = process.memoryUsage().arrayBuffers;
        low = Math.min(low, now);
        rise = Math.max(rise, now - low);
      }, 5);
      const result = await runOnce(
        request({
          script: `yes | head -c ${100 * MB}\necho finished >&2\n`,
          onLog: (chunk) => {
            streamed += chunk.length;
          },
        }),
      ).finally(() => clearInterval(sampler));
      const cap = 1024 * 1024;
      expect(result.exitCode).toBe(0);
      expect(result.truncated).toBe(true);
      expect(result.stdout.startsWith('y\ny\ny\n')).toBe(true);
      expect(result.stdout.length).toBeGreaterThanOrEqual(cap);
      expect(result.stdout.length).toBeLessThan(cap + 1_000);
      if (streams) {
        expect(result.stdout).toMatch(/truncated.*100000000 bytes/);
        expect(result.stderr).toBe('finished\n');
      } else {
        // One log read back with a byte limit: the total is not known, the cut is marked.
        expect(result.stdout).toMatch(/truncated at 1048576 bytes/);
        expect(result.stdout).not.toContain('finished');
      }
      expect(streamed).toBeLessThan(cap + 2_000);
      // Keeping the whole output would cost 100 MB; garbage awaiting collection stays near 35.
      expect(rise).toBeLessThan(64 * MB);
    });

    it("does not pass the manager's own environment to the script", async () => {
      process.env.FAKE_SECRET = 'manager-secret-4f1c9e';
      try {
        const result = await runOnce(request({ script: 'env\n' }));
        expect(result.exitCode).toBe(0);
        expect(result.stdout).not.toContain('manager-secret-4f1c9e');
        expect(result.stdout).not.toContain('FAKE_SECRET');
        expect(result.stdout).not.toMatch(/^VITEST/m);
        expect(result.stdout).toMatch(/^JOB_UUID=/m);
      } finally {
        delete process.env.FAKE_SECRET;
      }
    });

    caseIf(traits.dropsHugeVariables)(
      'runs a job whose variable is too large for execve, leaving that variable out',
      async () => {
        const huge = 'x'.repeat(200 * 1024);
        const result = await runOnce(
          request({
            event: huge,
            env: { SMALL: 'kept' },
            script: 'printenv EVENT >/dev/null || echo "EVENT=absent"\necho "SMALL=$SMALL"\n',
          }),
        );
        expect(result.exitCode).toBe(0);
        expect(parseLines(result.stdout)).toMatchObject({ EVENT: 'absent', SMALL: 'kept' });
      },
    );

    it('when closed, cancels the jobs still running, or detaches from them if it re-attaches', async () => {
      const own = await factory();
      try {
        const started = Date.now();
        const running = own.executor.run(request({ script: 'sleep 100\n', resumable: true }));
        const sync = own.executor.run(request({ script: 'sleep 100\n' }));
        await new Promise((r) => setTimeout(r, 300));
        await own.executor.close();
        const result = await running;
        // Not resumable (a synchronous run): cancelled whatever the executor.
        const syncResult = await sync;
        expect(syncResult.cancelled).toBe(true);
        await syncResult.dispose();
        if (own.executor.reattach) {
          // A stored job goes on where it runs (a Job in the cluster) for the next manager.
          expect(result.detached).toBe(true);
          expect(result.cancelled).toBe(false);
          expect(own.leftovers?.()).toBeGreaterThan(0);
        } else {
          expect(result.cancelled).toBe(true);
          expect(result.detached).toBeUndefined();
        }
        expect(Date.now() - started).toBeLessThan(300 + KILL_GRACE_MS + 2_000);
        await result.dispose();
        await expect(own.executor.run(request({ script: 'true' }))).rejects.toThrow(/closed/);
      } finally {
        await own.cleanup();
      }
    });

    caseIf(!local)('removes its Job, pod, ConfigMap and Secret when each job ends', async () => {
      await Promise.all([
        runOnce(request({ env: { K: 'secret-v' }, script: 'echo one' })),
        runOnce(request({ env: { K: 'secret-v' }, script: 'exit 4' })),
      ]);
      expect(await waitUntil(() => subject.leftovers?.() === 0, 3_000)).toBe(true);
    });

    caseIf(local)('runs each job in its own 0700 work dir, and dispose removes it', async () => {
      const script =
        'echo "OUT=$TMP_OUTPUT_DIR"\nmkdir -p "$TMP_OUTPUT_DIR/ro/x"\nchmod 0500 "$TMP_OUTPUT_DIR/ro"\n';
      const [first, second] = await Promise.all([
        executor.run(request({ script })),
        executor.run(request({ script })),
      ]);
      const firstDir = dirname(parseLines(first.stdout).OUT!);
      const secondDir = dirname(parseLines(second.stdout).OUT!);
      expect(firstDir).not.toBe(secondDir);
      expect(statSync(firstDir).mode & 0o777).toBe(0o700);
      expect(existsSync(join(firstDir, 'output'))).toBe(true);

      await first.dispose();
      await first.dispose(); // twice is harmless
      expect(existsSync(firstDir)).toBe(false);
      expect(existsSync(secondDir)).toBe(true);
      await second.dispose();
      expect(existsSync(secondDir)).toBe(false);
    });
  });
}

/** A fresh work root per factory; /tmp so the sandbox user can reach it. */
function processSubject(sandbox: 'auto' | 'none') {
  return async (): Promise<Subject> => {
    const workRoot = await mkdtemp(join(tmpdir(), `flotilla-exec-${sandbox}-`));
    const executor = createProcessExecutor({ workRoot, sandbox, killGraceMs: KILL_GRACE_MS });
    return {
      executor,
      async cleanup() {
        await executor.close();
        await rm(workRoot, { recursive: true, force: true });
      },
    };
  };
}

/** The isolation 'auto' picks on this machine, for the suite's name. */
function availableIsolation(): string {
  const probeRoot = mkdtempSync(join(tmpdir(), 'flotilla-exec-probe-'));
  try {
    return createProcessExecutor({ workRoot: probeRoot }).isolation;
  } finally {
    rmSync(probeRoot, { recursive: true, force: true });
  }
}

/** A fresh fake API server per factory; the executor talks to it through @kubernetes/client-node. */
async function kubeSubject(): Promise<Subject> {
  const fake = await startFakeKubeApi({ kubelet: 'shell', killGraceMs: KILL_GRACE_MS });
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions(fake.kubeconfig('jobs'));
  const executor = createKubernetesExecutor({
    kubeConfig,
    namespace: 'jobs',
    resolveService: async () => ({ image: 'ghcr.io/example/contract:1', cpu: '0.5', memory: '256Mi' }),
  });
  return {
    executor,
    leftovers: () =>
      (['jobs', 'pods', 'configmaps', 'secrets'] as const).reduce(
        (n, k) => n + fake.list(k, 'jobs').length,
        0,
      ),
    async cleanup() {
      await executor.close();
      await fake.close();
    },
  };
}

executorContract(`process (${availableIsolation()})`, PROCESS_TRAITS, processSubject('auto'));
executorContract('process (none)', PROCESS_TRAITS, processSubject('none'));
executorContract('kubernetes (fake API server)', KUBE_TRAITS, kubeSubject);

describe('process executor: its own failures', () => {
  it('throws a clear error when it cannot create the work dir', async () => {
    const workRoot = await mkdtemp(join(tmpdir(), 'flotilla-exec-gone-'));
    const executor = createProcessExecutor({ workRoot, sandbox: 'none' });
    await rm(workRoot, { recursive: true });
    await expect(executor.run(request({ script: 'true' }))).rejects.toThrow(/cannot create a work dir under/);
    await executor.close();
  });
});
