// Runs one sandboxed command: captures its output, enforces the timeout, honours the abort
// signal, and makes sure nothing the script started outlives it.
import type { CappedCapture } from './capped-capture.ts';
import type { SpawnCommand } from './sandbox.ts';
import { type ChildLike, directSpawner, type HeldChild, type Spawner } from './spawner.ts';

export interface SuperviseOptions {
  command: SpawnCommand;
  /** Start the process inside these cgroups (see spawner-child.mjs). */
  cgroup?: { join: string[]; leave: string[] };
  /** Already started and waiting for its fd 3 (job-slots.ts): released instead of spawned. */
  held?: HeldChild;
  timeoutMs: number;
  killGraceMs: number;
  signal?: AbortSignal;
  stdout: CappedCapture;
  stderr: CappedCapture;
  /** How processes are started (default: forking this process). */
  spawner?: Spawner;
  /** What the captures keep of each stream (the spawner forwards no more). */
  maxBytes?: number;
}

export interface Outcome {
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  cancelled: boolean;
  durationMs: number;
}

/** How long to wait for the pipes to drain once the script has exited. */
const DRAIN_MS = 2_000;
/** setTimeout's ceiling; a longer timeout is no timeout. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface Supervised {
  outcome: Promise<Outcome>;
  /** Cancels the run (as the abort signal would). */
  cancel(): void;
}

export function supervise(opts: SuperviseOptions): Supervised {
  const { command } = opts;
  const started = performance.now();
  // The child leads a new process group, so the whole group can be killed.
  const child =
    opts.held ??
    (opts.spawner ?? directSpawner).spawn({
      file: command.file,
      args: command.args,
      cwd: command.cwd,
      env: command.env,
      uid: command.uid,
      gid: command.gid,
      fd3: command.fd3,
      cgroup: opts.cgroup,
      maxBytes: opts.maxBytes ?? Number.MAX_SAFE_INTEGER,
    });
  child.on('unsent', (out: number, err: number) => {
    opts.stdout.countDropped(out);
    opts.stderr.countDropped(err);
  });
  child.stdout.on('data', (chunk: Buffer) => opts.stdout.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => opts.stderr.push(chunk));

  let stopReason: 'timeout' | 'cancel' | undefined;
  let exited = false;
  let graceTimer: NodeJS.Timeout | undefined;
  const stop = (reason: 'timeout' | 'cancel') => {
    if (exited || stopReason) return;
    stopReason = reason;
    // Through the spawner the pid arrives a moment after the start: a stop before that
    // signals the group as soon as it is known.
    const signalGroup = (sig: NodeJS.Signals) => {
      if (child.pid) killGroup(child.pid, sig);
      else child.once('pid', () => killGroup(child.pid, sig));
    };
    signalGroup('SIGTERM');
    graceTimer = setTimeout(() => signalGroup('SIGKILL'), opts.killGraceMs);
  };
  const timeoutTimer =
    opts.timeoutMs > 0 && opts.timeoutMs <= MAX_TIMER_MS
      ? setTimeout(() => stop('timeout'), opts.timeoutMs)
      : undefined;
  const onAbort = () => stop('cancel');
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const clearTriggers = () => {
    clearTimeout(timeoutTimer);
    clearTimeout(graceTimer);
    opts.signal?.removeEventListener('abort', onAbort);
  };

  const outcome = new Promise<Outcome>((resolve, reject) => {
    child.once('error', (err) => {
      clearTriggers();
      if (!exited)
        reject(new Error(`process executor: cannot start ${command.file}: ${err.message}`, { cause: err }));
    });
    child.once('exit', (code, signal) => {
      exited = true;
      clearTriggers();
      const durationMs = Math.round(performance.now() - started);
      // The script is done: anything it left running in its group goes too (a backgrounded
      // child would otherwise keep the pipes, and the work dir, busy).
      killGroup(child.pid, 'SIGKILL');
      const result: Outcome = {
        exitCode: code,
        signal,
        timedOut: stopReason === 'timeout',
        cancelled: stopReason === 'cancel',
        durationMs,
      };
      waitForPipes(child).then(() => resolve(result));
    });
  });
  // Listening now: a held child may go on (with its arguments) and start the job, unless
  // the job was cancelled already (then it is killed still waiting).
  if (opts.signal?.aborted) stop('cancel');
  else opts.held?.release(command.fd3 ?? Buffer.alloc(0));
  return { outcome, cancel: () => stop('cancel') };
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone
  }
}

function waitForPipes(child: ChildLike): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      // A grandchild that escaped the group (setsid) still holds them: stop listening.
      child.stdout?.destroy();
      child.stderr?.destroy();
      resolve();
    }, DRAIN_MS);
    child.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
