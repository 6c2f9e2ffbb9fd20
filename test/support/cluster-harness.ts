// Starts N real `flotilla up` processes on free loopback ports, each with its own data
// dir, and can kill (SIGKILL) and restart any of them. The end-to-end tests build on it.
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FlotillaClient } from '../../client/api-client.ts';
import { freePort } from '../../src/cli/free-port.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = join(REPO_ROOT, 'bin', 'flotilla.mjs');

// Ports below the ephemeral range (see src/cli/free-port.ts), kept across restarts.
export { freePort };

export interface ClusterSpec {
  id: string;
  /** Extra `flotilla up` flags, e.g. ['--cpus', '2']. */
  args?: string[];
  env?: Record<string, string>;
}

export interface ClusterProcess {
  readonly id: string;
  readonly port: number;
  readonly url: string;
  readonly dataDir: string;
  readonly logFile: string;
  readonly adminPassword: string;
  /** Admin client for this cluster. */
  readonly client: FlotillaClient;
  readonly running: boolean;
  start(): Promise<void>;
  /** SIGKILL: no clean shutdown, as a crash. */
  kill(): Promise<void>;
  /** SIGTERM and wait for exit. */
  stop(): Promise<void>;
  /** SIGSTOP: the process stalls (connections stay open, nothing answers) until resume(). */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
  readonly paused: boolean;
  restart(): Promise<void>;
  log(): Promise<string>;
}

const waitForHealth = async (
  url: string,
  proc: ChildProcess,
  logFile: string,
  timeoutMs: number,
): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      const log = await readFile(logFile, 'utf8').catch(() => '');
      throw new Error(
        `flotilla at ${url} exited during start (${proc.exitCode ?? proc.signalCode}):\n${log.slice(-3000)}`,
      );
    }
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const log = await readFile(logFile, 'utf8').catch(() => '');
  throw new Error(`flotilla at ${url} not healthy after ${timeoutMs} ms:\n${log.slice(-3000)}`);
};

/** Minimal environment: nothing of the test runner's (secrets, DATABASE_URL) leaks in. */
const baseEnv = (): Record<string, string> => ({
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  HOME: process.env.HOME ?? '/root',
  LANG: 'C.UTF-8',
  NODE_OPTIONS: '--max-old-space-size=512',
});

export const createClusterProcess = async (
  spec: ClusterSpec,
  opts: { root: string; adminPassword?: string; startTimeoutMs?: number },
): Promise<ClusterProcess> => {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const dataDir = join(opts.root, spec.id);
  const logFile = join(opts.root, `${spec.id}.log`);
  const adminPassword = opts.adminPassword ?? `pw-${spec.id}`;
  let proc: ChildProcess | undefined;
  let paused = false;
  const client = new FlotillaClient({ endpoint: url, user: 'oscar', password: adminPassword });

  const exited = (p: ChildProcess) =>
    p.exitCode !== null || p.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((r) => p.once('exit', () => r()));

  const self: ClusterProcess = {
    id: spec.id,
    port,
    url,
    dataDir,
    logFile,
    adminPassword,
    client,
    get running() {
      return !!proc && proc.exitCode === null && proc.signalCode === null;
    },
    async start() {
      if (self.running) return;
      const out = createWriteStream(logFile, { flags: 'a' });
      const args = [
        CLI,
        'up',
        '--port',
        String(port),
        '--cluster-id',
        spec.id,
        '--data-dir',
        dataDir,
        '--admin-password',
        adminPassword,
        '--log-level',
        'warn',
        ...(spec.args ?? []),
      ];
      proc = spawn(process.execPath, args, {
        cwd: REPO_ROOT,
        env: { ...baseEnv(), ...(spec.env ?? {}) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      proc.stdout?.pipe(out);
      proc.stderr?.pipe(out);
      await waitForHealth(url, proc, logFile, opts.startTimeoutMs ?? 60_000);
    },
    async kill() {
      if (!proc || !self.running) return;
      const p = proc;
      p.kill('SIGKILL');
      paused = false;
      await exited(p);
    },
    get paused() {
      return paused && self.running;
    },
    pause() {
      if (!proc || !self.running || paused) return;
      proc.kill('SIGSTOP');
      paused = true;
    },
    resume() {
      if (!proc || !paused) return;
      paused = false;
      if (self.running) proc.kill('SIGCONT');
    },
    async stop() {
      if (!proc || !self.running) return;
      const p = proc;
      // A stalled process handles no SIGTERM: let it run first.
      self.resume();
      p.kill('SIGTERM');
      const timer = setTimeout(() => p.kill('SIGKILL'), 10_000);
      await exited(p);
      clearTimeout(timer);
    },
    async restart() {
      await self.stop();
      await self.start();
    },
    log: () => readFile(logFile, 'utf8').catch(() => ''),
  };
  return self;
};

export interface Harness {
  readonly root: string;
  readonly clusters: ClusterProcess[];
  get(id: string): ClusterProcess;
  close(): Promise<void>;
}

/**
 * Starts the clusters, at most `parallel` at a time (default all: on a small, busy machine
 * several PGlite initdbs at once starve each other, so large sets use 2). Call close() in
 * afterAll; with keepLogs the data dirs and log files outlive it.
 */
export const startClusters = async (
  specs: readonly ClusterSpec[],
  opts: {
    adminPassword?: string;
    keepLogs?: boolean;
    parallel?: number;
    startTimeoutMs?: number;
    prefix?: string;
  } = {},
): Promise<Harness> => {
  const root = await mkdtemp(join(tmpdir(), opts.prefix ?? 'flotilla-e2e-'));
  const clusters = await Promise.all(
    specs.map((s) =>
      createClusterProcess(s, {
        root,
        adminPassword: opts.adminPassword,
        startTimeoutMs: opts.startTimeoutMs,
      }),
    ),
  );
  const harness: Harness = {
    root,
    clusters,
    get(id) {
      const c = clusters.find((x) => x.id === id);
      if (!c) throw new Error(`no cluster ${id}`);
      return c;
    },
    async close() {
      await Promise.all(clusters.map((c) => c.stop()));
      if (!opts.keepLogs) await rm(root, { recursive: true, force: true });
    },
  };
  try {
    const queue = [...clusters];
    const lane = async () => {
      for (let c = queue.shift(); c; c = queue.shift()) await c.start();
    };
    await Promise.all(Array.from({ length: opts.parallel ?? clusters.length }, lane));
  } catch (e) {
    await harness.close();
    throw e;
  }
  return harness;
};
