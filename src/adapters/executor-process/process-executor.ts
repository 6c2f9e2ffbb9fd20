// The embedded Executor: runs a service's script with /bin/sh in a fresh, sandboxed work dir
// with faas-supervisor's environment (DESIGN.md §3, `process`). Each job gets a uid of its own
// (when the manager is root), its declared memory and cpu as cgroup limits (or rlimits), and
// the jobs' network, which reaches the outside but not the host's loopback (DESIGN.md §3.2).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ExecutionRequest, ExecutionResult, Executor } from '../../core/ports.ts';
import { CappedCapture } from './capped-capture.ts';
import { buildJobEnv } from './environment.ts';
import { type JobNetworkMode, resolveJobNetwork } from './job-network.ts';
import { createSlotPool } from './job-slots.ts';
import {
  type JobCgroup,
  type JobLimits,
  type LimitsKind,
  type LimitsMode,
  type ResourceLimiter,
  resolveResourceLimits,
} from './resource-limits.ts';
import {
  BWRAP_COMMAND_LINE,
  buildCommand,
  type Isolation,
  resolveSandbox,
  type SandboxMode,
  type SandboxUser,
} from './sandbox.ts';
import { createRemoteSpawner, directSpawner, type HeldChild } from './spawner.ts';
import { type Outcome, supervise } from './supervise.ts';
import { createUidPool, DEFAULT_UID_RANGE, type UidPool, type UidRange } from './uid-pool.ts';
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
   * parent of it must be searchable by the sandbox users, so keep it outside the 0700 data dir.
   */
  workRoot: string;
  /** Cap for each of stdout and stderr; the head is kept. Default 1 MiB. */
  maxLogBytes?: number;
  /** Default 'auto': bubblewrap, else a separate user (root only), else none. */
  sandbox?: SandboxMode;
  /** Between SIGTERM and SIGKILL when a job times out or is cancelled. Default 2 s. */
  killGraceMs?: number;
  /** A root manager gives each running job one uid (and gid) of this range. Default 10000000-10065535. */
  jobUids?: UidRange;
  /** Where the uid locks are kept (shared by the managers of one host). Default /run/flotilla/job-uids. */
  uidLockDir?: string;
  /** How declared memory and cpu are enforced. Default 'auto': cgroups, else rlimits. */
  resourceLimits?: LimitsMode;
  /** The jobs' network. Default 'isolated' (outside yes, host loopback no). */
  network?: JobNetworkMode;
  /**
   * 'helper' (default): jobs are started by a small helper process, because forking a
   * manager with a large heap costs tens of milliseconds per job; 'direct': fork this one
   * (then only network 'host' and rlimits).
   */
  spawner?: 'helper' | 'direct';
  logger?: ExecutorLogger;
}

export interface ProcessExecutor extends Executor {
  readonly kind: 'process';
  readonly isolation: Isolation;
  /** How memory and cpu are enforced. */
  readonly limits: LimitsKind;
  /** The jobs' network in effect. */
  readonly network: JobNetworkMode;
  /** What isolates jobs, limits them and connects them, and what not; for the start-up log and /system/info. */
  readonly isolationNote: string;
  readonly workRoot: string;
}

const DEFAULT_MAX_LOG_BYTES = 1024 * 1024;
/** Slots made ahead of the jobs (job-slots.ts): a job that comes while they are ready waits for nothing. */
const SLOTS_AHEAD = 2;
const DEFAULT_KILL_GRACE_MS = 2_000;
const MiB = 1024 ** 2;

/**
 * Creates the work root and probes the sandbox, cgroups and network once (synchronously, at
 * start-up). Throws when a requested mode cannot work on this machine.
 */
export function createProcessExecutor(opts: ProcessExecutorOptions): ProcessExecutor {
  const { workRoot, logger } = opts;
  const maxLogBytes = opts.maxLogBytes ?? DEFAULT_MAX_LOG_BYTES;
  const killGraceMs = opts.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  ensureWorkRoot(workRoot);
  const uidRange = opts.jobUids ?? DEFAULT_UID_RANGE;
  const mode = opts.sandbox ?? 'auto';
  const sandbox = resolveSandbox(mode, workRoot, { uid: uidRange.first, gid: uidRange.first });
  const uids: UidPool | undefined = sandbox.switchesUser
    ? createUidPool(uidRange, opts.uidLockDir)
    : undefined;
  const direct = opts.spawner === 'direct';
  const network = resolveJobNetwork(opts.network ?? 'isolated');
  if (direct && network.mode !== 'host')
    throw new Error(
      "process executor: spawner 'direct' runs jobs in the manager's own network; use network 'host' with it",
    );
  const limiter: ResourceLimiter = resolveResourceLimits(direct ? 'rlimit' : (opts.resourceLimits ?? 'auto'));
  const resolvConf =
    network.nameserver && sandbox.isolation === 'bubblewrap' ? join(workRoot, '.resolv.conf') : undefined;
  if (resolvConf) writeFileSync(resolvConf, `nameserver ${network.nameserver}\n`, { mode: 0o644 });

  const uidNote = uids ? `job uids ${uidRange.first}-${uidRange.last}, one per running job` : undefined;
  const isolationNote = [sandbox.note, uidNote, limiter.note, network.note].filter(Boolean).join('; ');
  if (
    sandbox.isolation !== 'bubblewrap' ||
    limiter.kind === 'rlimit' ||
    network.mode !== (opts.network ?? 'isolated')
  ) {
    logger?.warn(
      { isolation: sandbox.isolation, limits: limiter.kind, network: network.mode },
      isolationNote,
    );
  }

  const stops = new Set<() => Promise<unknown>>();
  const inflight = new Set<Promise<unknown>>();
  let closed = false;
  const spawner = direct
    ? directSpawner
    : createRemoteSpawner({
        launcher: network.launcher,
        onStart: network.attach,
        onFatal: (message) => logger?.warn({}, `process executor: ${message}`),
      });

  // bubblewrap with cgroups through the helper: jobs take a slot made ahead (job-slots.ts).
  const slots =
    sandbox.isolation === 'bubblewrap' && limiter.createCgroup && spawner.hold
      ? createSlotPool({
          size: SLOTS_AHEAD,
          bwrapPath: sandbox.bwrapPath!,
          bwrapArgs: BWRAP_COMMAND_LINE,
          spawner: spawner as typeof spawner & Required<Pick<typeof spawner, 'hold'>>,
          limiter: limiter as ResourceLimiter & Required<Pick<ResourceLimiter, 'createCgroup'>>,
          uids,
          maxBytes: maxLogBytes,
        })
      : undefined;

  /** The job's uid, its cgroup (limits set) and, from a slot, its waiting bwrap. */
  const place = async (req: ExecutionRequest): Promise<Placement> => {
    const limits = { cpuMillis: req.cpuMillis, memoryBytes: req.memoryBytes, timeoutMs: req.timeoutMs };
    if (slots) {
      const slot = await slots.take();
      await slot.cgroup.setLimits(limits).catch(async (err) => {
        await slot.cgroup.remove(); // kills the waiting bwrap with it
        if (slot.user) await uids?.release(slot.user);
        throw executorError(`cannot set the limits of job ${req.jobId}`, err);
      });
      return { user: slot.user, cgroup: slot.cgroup, held: slot.child, limits };
    }
    const user = await uids?.acquire();
    try {
      const cgroup = await limiter.createCgroup?.(req.jobId);
      await cgroup?.setLimits(limits).catch(async (err) => {
        await cgroup.remove();
        throw err;
      });
      return { user, cgroup, limits };
    } catch (err) {
      if (user) await uids?.release(user);
      throw executorError(`cannot create the cgroup of job ${req.jobId}`, err);
    }
  };

  const runJob = async (req: ExecutionRequest): Promise<ExecutionResult> => {
    if (closed) throw new Error('process executor: closed');
    const [placed, prepared] = await Promise.allSettled([
      place(req),
      // The work dir is handed to the job's uid once that is known.
      prepare(req, workRoot),
    ]);
    const placement = placed.status === 'fulfilled' ? placed.value : undefined;
    const { user, cgroup, held, limits } = placement ?? {};
    let released = false;
    const releaseUser = async () => {
      if (user && !released) {
        released = true;
        await uids?.release(user);
      }
    };
    const handed =
      prepared.status === 'fulfilled' && user && !prepared.value.cancelled
        ? await handOver(prepared.value.dir, user, prepared.value.dir.inputFile).then(
            () => undefined,
            (err: Error) => err,
          )
        : undefined;
    if (placed.status === 'rejected' || prepared.status === 'rejected' || handed) {
      if (prepared.status === 'fulfilled') await removeWorkDir(prepared.value.dir.dir);
      await cgroup?.remove();
      await releaseUser();
      if (placed.status === 'rejected') throw placed.reason;
      if (prepared.status === 'rejected') throw prepared.reason;
      throw executorError(`cannot prepare the work dir of job ${req.jobId}`, handed);
    }
    const work = prepared.value;
    // closed while preparing: close() could not see this job yet
    if (work.cancelled || closed) {
      await cgroup?.remove();
      return finish(work.dir, cancelledOutcome(), emptyCaptures(), [], releaseUser);
    }

    const { env, dropped, refused } = buildJobEnv(req, work.dir);
    if (dropped.length > 0) {
      logger?.warn(
        { jobId: req.jobId, dropped },
        'environment variables left out: invalid name, NUL byte or over 128 KiB',
      );
    }
    if (refused.length > 0) {
      logger?.warn(
        { jobId: req.jobId, dropped: refused },
        'environment variables left out: on the hijack list',
      );
    }
    const captures = {
      stdout: new CappedCapture(maxLogBytes, req.onLog),
      stderr: new CappedCapture(maxLogBytes, req.onLog),
    };
    const command = buildCommand(sandbox, {
      workDir: work.dir.dir,
      env,
      user,
      resolvConf,
      rlimits: limiter.kind === 'rlimit' ? limiter.rlimits(limits!) : undefined,
    });
    const job = supervise({
      command,
      held,
      cgroup: cgroup && !held ? { join: cgroup.procsFiles, leave: limiter.homeProcsFiles } : undefined,
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
    stops.add(stop);
    try {
      const outcome = await job.outcome.catch(async (err) => {
        await cgroup?.remove();
        await removeWorkDir(work.dir.dir);
        await releaseUser();
        throw err;
      });
      const oomKilled = (await cgroup?.oomKilled()) ?? false;
      // Whatever the job left running dies with its cgroup; off the answer's path (bwrap's
      // pid namespace took it all down already), but before its uid goes to another job.
      const removed = cgroup ? background(cgroup.remove()) : Promise.resolve();
      if (oomKilled) {
        const limit = `${Math.round((req.memoryBytes / MiB) * 10) / 10} MiB`;
        captures.stderr.push(
          Buffer.from(`\n[flotilla] killed: the job went over its memory limit (${limit})\n`),
        );
      }
      return finish(work.dir, outcome, captures, await listOutputs(work.dir.outputDir), () =>
        removed.then(releaseUser),
      );
    } finally {
      stops.delete(stop);
    }
  };

  /** Work that outlives a run (cgroup removal): close() waits for it. */
  const background = (work: Promise<void>): Promise<void> => {
    const tracked = work.catch(() => undefined);
    inflight.add(tracked);
    tracked.finally(() => inflight.delete(tracked));
    return tracked;
  };

  const run = (req: ExecutionRequest): Promise<ExecutionResult> => {
    // The helper and its messages do not keep the process alive (unref'd): a run does, until it ends.
    const keepAlive = setTimeout(() => undefined, 2 ** 31 - 1);
    const p = runJob(req).finally(() => clearTimeout(keepAlive));
    const tracked = p.catch(() => undefined);
    inflight.add(tracked);
    tracked.finally(() => inflight.delete(tracked));
    return p;
  };

  return {
    kind: 'process',
    isolation: sandbox.isolation,
    limits: limiter.kind,
    network: network.mode,
    isolationNote,
    workRoot,
    run,
    async close() {
      closed = true;
      await Promise.all([...stops].map((stop) => stop()));
      // Runs end, then the cleanups they leave behind.
      while (inflight.size > 0) await Promise.all([...inflight]);
      await slots?.close();
      spawner.close();
      limiter.close();
    },
  };
}

type Prepared = { dir: WorkDir & { inputFile?: string }; cancelled: boolean };

interface Placement {
  user?: SandboxUser;
  cgroup?: JobCgroup;
  held?: HeldChild;
  limits: JobLimits;
}

/** Work dir, script and input (the caller hands them to the job's uid). Cancelled while writing the input is not an error. */
async function prepare(req: ExecutionRequest, workRoot: string): Promise<Prepared> {
  const dir = await createWorkDir(workRoot, req.jobId).catch((err) => {
    throw executorError(`cannot create a work dir under ${workRoot}`, err);
  });
  try {
    await writeScript(dir, req.script);
    const inputFile = req.input ? await writeInput(dir, req.input, req.signal) : undefined;
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

/** The result; its dispose removes the work dir, and only then frees the job's uid for another job. */
function finish(
  dir: WorkDir,
  outcome: Outcome,
  captures: { stdout: CappedCapture; stderr: CappedCapture },
  outputs: ExecutionResult['outputs'],
  releaseUser: () => Promise<void>,
): ExecutionResult {
  let disposed: Promise<void> | undefined;
  return {
    ...outcome,
    stdout: captures.stdout.text(),
    stderr: captures.stderr.text(),
    truncated: captures.stdout.truncated || captures.stderr.truncated,
    outputs,
    dispose: () => {
      disposed ??= removeWorkDir(dir.dir).then(releaseUser);
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
