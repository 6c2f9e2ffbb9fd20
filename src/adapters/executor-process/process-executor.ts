// The embedded Executor: runs a service's script with /bin/sh in a fresh, sandboxed work dir
// with faas-supervisor's environment (DESIGN.md §3, `process`).
import type { ExecutionRequest, ExecutionResult, Executor } from '../../core/ports.ts';
import { CappedCapture } from './capped-capture.ts';
import { buildJobEnv } from './environment.ts';
import {
  buildCommand,
  type Isolation,
  NOBODY,
  resolveSandbox,
  type Sandbox,
  type SandboxMode,
  type SandboxUser,
} from './sandbox.ts';
import { createRemoteSpawner, directSpawner } from './spawner.ts';
import { type Outcome, supervise } from './supervise.ts';
import {
  createWorkDir,
  ensureWorkRoot,
  handOver,
  listOutputs,
  removeWorkDir,
  type WorkDir,
  writeInput,
  writeScript,
} from './work-dir.ts';

/** pino-compatible; only what the executor logs. */
export interface ExecutorLogger {
  warn(obj: object, msg?: string): void;
}

export interface ProcessExecutorOptions {
  /**
   * Parent of the jobs' work dirs; made mode 0711. When the manager runs as root, every
   * parent of it must be searchable by the sandbox user, so keep it outside the 0700 data dir.
   */
  workRoot: string;
  /** Cap for each of stdout and stderr; the head is kept. Default 1 MiB. */
  maxLogBytes?: number;
  /** Default 'auto': bubblewrap, else a separate user (root only), else none. */
  sandbox?: SandboxMode;
  /** Between SIGTERM and SIGKILL when a job times out or is cancelled. Default 2 s. */
  killGraceMs?: number;
  /** The unprivileged user scripts run as. Default nobody/nogroup (65534). */
  sandboxUser?: SandboxUser;
  /**
   * 'helper' (default): jobs are started by a small helper process, because forking a
   * manager with a large heap costs tens of milliseconds per job; 'direct': fork this one.
   */
  spawner?: 'helper' | 'direct';
  logger?: ExecutorLogger;
}

export interface ProcessExecutor extends Executor {
  readonly kind: 'process';
  readonly isolation: Isolation;
  /** Why this isolation was chosen and what it does (not) protect; for the start-up log and /system/info. */
  readonly isolationNote: string;
  readonly workRoot: string;
}

const DEFAULT_MAX_LOG_BYTES = 1024 * 1024;
const DEFAULT_KILL_GRACE_MS = 2_000;

/**
 * Creates the work root and probes the sandbox once (synchronously, at start-up).
 * Throws when the requested sandbox mode cannot work on this machine.
 */
export function createProcessExecutor(opts: ProcessExecutorOptions): ProcessExecutor {
  const { workRoot, logger } = opts;
  const maxLogBytes = opts.maxLogBytes ?? DEFAULT_MAX_LOG_BYTES;
  const killGraceMs = opts.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  ensureWorkRoot(workRoot);
  const mode = opts.sandbox ?? 'auto';
  const sandbox = resolveSandbox(mode, workRoot, opts.sandboxUser ?? NOBODY);
  if (mode === 'auto' && sandbox.isolation !== 'bubblewrap') {
    logger?.warn({ isolation: sandbox.isolation }, sandbox.note);
  }

  const running = new Set<() => Promise<unknown>>();
  let closed = false;
  const spawner = opts.spawner === 'direct' ? directSpawner : createRemoteSpawner();

  const run = async (req: ExecutionRequest): Promise<ExecutionResult> => {
    if (closed) throw new Error('process executor: closed');
    const work = await prepare(req, workRoot, sandbox);
    // closed while preparing: close() could not see this job yet
    if (work.cancelled || closed) return finish(work.dir, cancelledOutcome(), emptyCaptures(), []);

    const { env, dropped } = buildJobEnv(req, work.dir);
    if (dropped.length > 0) {
      logger?.warn(
        { jobId: req.jobId, dropped },
        'environment variables left out: invalid name, NUL byte or over 128 KiB',
      );
    }
    const captures = {
      stdout: new CappedCapture(maxLogBytes, req.onLog),
      stderr: new CappedCapture(maxLogBytes, req.onLog),
    };
    const job = supervise({
      command: buildCommand(sandbox, work.dir.dir),
      env,
      timeoutMs: req.timeoutMs,
      killGraceMs,
      signal: req.signal,
      spawner,
      maxBytes: maxLogBytes,
      ...captures,
    });
    const stop = () => {
      job.cancel();
      return job.outcome.catch(() => undefined);
    };
    running.add(stop);
    try {
      const outcome = await job.outcome.catch(async (err) => {
        await removeWorkDir(work.dir.dir);
        throw err;
      });
      return finish(work.dir, outcome, captures, await listOutputs(work.dir.outputDir));
    } finally {
      running.delete(stop);
    }
  };

  return {
    kind: 'process',
    isolation: sandbox.isolation,
    isolationNote: sandbox.note,
    workRoot,
    run,
    async close() {
      closed = true;
      await Promise.all([...running].map((stop) => stop()));
      spawner.close();
    },
  };
}

type Prepared = { dir: WorkDir & { inputFile?: string }; cancelled: boolean };

/** Work dir, script and input, owned by the sandbox user. Cancelled while writing the input is not an error. */
async function prepare(req: ExecutionRequest, workRoot: string, sandbox: Sandbox): Promise<Prepared> {
  const dir = await createWorkDir(workRoot, req.jobId).catch((err) => {
    throw executorError(`cannot create a work dir under ${workRoot}`, err);
  });
  try {
    await writeScript(dir, req.script);
    const inputFile = req.input ? await writeInput(dir, req.input, req.signal) : undefined;
    if (sandbox.spawnAs) await handOver(dir, sandbox.spawnAs, inputFile);
    return { dir: { ...dir, inputFile }, cancelled: req.signal?.aborted ?? false };
  } catch (err) {
    if (req.signal?.aborted) return { dir, cancelled: true };
    await removeWorkDir(dir.dir);
    throw executorError(`cannot prepare the work dir of job ${req.jobId}`, err);
  }
}

function executorError(what: string, cause: unknown): Error {
  return new Error(`process executor: ${what}: ${(cause as Error)?.message ?? cause}`, { cause });
}

function finish(
  dir: WorkDir,
  outcome: Outcome,
  captures: { stdout: CappedCapture; stderr: CappedCapture },
  outputs: ExecutionResult['outputs'],
): ExecutionResult {
  let disposed: Promise<void> | undefined;
  return {
    ...outcome,
    stdout: captures.stdout.text(),
    stderr: captures.stderr.text(),
    truncated: captures.stdout.truncated || captures.stderr.truncated,
    outputs,
    dispose: () => {
      disposed ??= removeWorkDir(dir.dir);
      return disposed;
    },
  };
}

function cancelledOutcome(): Outcome {
  return { exitCode: null, signal: null, timedOut: false, cancelled: true, durationMs: 0 };
}

function emptyCaptures() {
  return { stdout: new CappedCapture(0), stderr: new CappedCapture(0) };
}
