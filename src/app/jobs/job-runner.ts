// The local runner: takes pending jobs from the store in arrival order, starts each one
// that fits on a virtual node (its cpu/memory reserve capacity), and records how it ended.
// A job waits while no node has room; one that can never fit is failed with the reason,
// unless a delegation hook takes it (federation).
import {
  everFits,
  freeCpu,
  freeMemory,
  type NodeState,
  type Placement,
  release,
  reserve,
} from '../../core/capacity.ts';
import type { Service } from '../../core/fdl/service.ts';
import type { Clock, Executor, JobQueue, JobStore, JobSummary, Log, MetricsSink } from '../../core/ports.ts';
import type { ServiceCache } from '../service-cache.ts';
import { failureReason, InputMissingError, invoke, jobLog, type StorageResolver } from './job-execution.ts';

export type RunnerLogger = Pick<Log, 'info' | 'warn' | 'error'>;

export interface RunnerDeps {
  store: JobStore;
  /** The order jobs are offered in; claims in the store decide who runs each. */
  queue: JobQueue;
  /** This manager instance's id: its claims carry it, and a restart fails only its own leftovers. */
  runnerId: string;
  services: ServiceCache;
  executor: Executor;
  storage: StorageResolver;
  nodes: NodeState[];
  clock: Clock;
  defaultTimeoutMs: number;
  logger: RunnerLogger;
  /** How often to look for jobs stored by someone else (other replicas). */
  pollMs?: number;
  /** Max live log kept in memory per running job (for `logs --follow`). */
  liveLogBytes?: number;
  /** Opens sealed values kept with a job (a delegating cluster's storage token). */
  openSealed?: (sealed: string) => string;
  /** Services whose jobs may go elsewhere: a job too large for every node waits for the rescheduler. */
  canDelegate?: (service: string) => Promise<boolean>;
  metrics?: Pick<MetricsSink, 'jobFinished'>;
}

interface RunningJob {
  job: JobSummary;
  placement: Placement;
  abort: AbortController;
  live: string;
  done: Promise<void>;
}

export class JobRunner {
  private readonly running = new Map<string, RunningJob>();
  /** Reservations of synchronous runs, which are not stored jobs. */
  private readonly waiters: Array<() => void> = [];
  private passQueued = false;
  private passRunning = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Only a started runner takes work (intake-only managers never start theirs). */
  private started = false;
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly deps: RunnerDeps) {}

  get nodes(): readonly NodeState[] {
    return this.deps.nodes;
  }

  /**
   * Jobs a previous process left running: run again through an executor that re-attaches to
   * them (they still run where they ran), else marked Failed. Then starts taking work.
   */
  async start(): Promise<void> {
    // Read before failRunningJobs, which then finds nothing of ours left to fail.
    const resumed = this.deps.executor.reattach
      ? await this.deps.store.runningJobsOf(this.deps.runnerId)
      : [];
    const interrupted = this.deps.executor.reattach
      ? []
      : await this.deps.store.failRunningJobs(
          'the manager stopped while the job was running',
          this.deps.clock.now(),
          this.deps.runnerId,
        );
    this.unsubscribe = this.deps.queue.subscribe(() => this.wake());
    this.started = true;
    if (interrupted.length)
      this.deps.logger.warn({ count: interrupted.length }, 'marked interrupted jobs as Failed');
    for (const job of resumed) {
      // It runs already: charge what it asked for; where nothing fits, the cluster's own
      // accounting (re-read every 30 s) still counts its pod.
      const placement = reserve(this.deps.nodes, job.cpuMillis, job.memoryBytes) ?? {
        node: this.deps.nodes[0]?.name ?? '',
        cpuMillis: 0,
        memoryBytes: 0,
      };
      this.launch(job, placement);
    }
    if (resumed.length) this.deps.logger.info({ count: resumed.length }, 're-attaching to interrupted jobs');
    this.timer = setInterval(() => this.wake(), this.deps.pollMs ?? 1000);
    this.timer.unref();
    this.wake();
  }

  /** Asks for a scheduling pass soon; calls coalesce. */
  wake(): void {
    if (this.stopped || !this.started) return;
    if (this.passRunning) {
      this.passQueued = true;
      return;
    }
    this.passRunning = true;
    setImmediate(() => void this.pass());
  }

  private async pass(): Promise<void> {
    try {
      do {
        this.passQueued = false;
        await this.schedulePending();
      } while (this.passQueued && !this.stopped);
    } catch (e) {
      this.deps.logger.error({ err: (e as Error).message }, 'scheduling pass failed');
    } finally {
      this.passRunning = false;
    }
  }

  private async schedulePending(): Promise<void> {
    // Every node full: nothing can start, so do not read the queue at all.
    if (this.deps.nodes.every((n) => freeCpu(n) <= 0 || freeMemory(n) <= 0)) return;
    const offered = await this.deps.queue.peek(256);
    const rows = new Map((await this.deps.store.getJobs(offered)).map((j) => [j.id, j]));
    // Offered but no longer waiting here (claimed elsewhere, delegated, deleted): drop them.
    const stale = offered.filter((id) => rows.get(id)?.status !== 'Pending' || rows.get(id)?.delegatedTo);
    if (stale.length) await this.deps.queue.remove(stale);
    const pending = offered
      .map((id) => rows.get(id))
      .filter((j): j is JobSummary => !!j && !stale.includes(j.id));
    for (const job of pending) {
      if (this.stopped) return;
      if (this.running.has(job.id)) continue;
      if (!everFits(this.deps.nodes, job.cpuMillis, job.memoryBytes)) {
        if (!(await this.deps.canDelegate?.(job.service))) await this.failUnschedulable(job);
        continue;
      }
      const placement = reserve(this.deps.nodes, job.cpuMillis, job.memoryBytes);
      if (!placement) continue; // waits for room; smaller jobs behind it may still fit
      const claimed = await this.deps.store.claimJob(job.id, this.deps.clock.now(), this.deps.runnerId);
      await this.deps.queue.remove([job.id]);
      if (!claimed) {
        release(this.deps.nodes, placement);
        continue;
      }
      this.launch(job, placement);
    }
  }

  private async failUnschedulable(job: JobSummary): Promise<void> {
    if (!(await this.deps.store.claimJob(job.id, this.deps.clock.now(), this.deps.runnerId))) return;
    await this.deps.queue.remove([job.id]);
    await this.deps.store.finishJob(job.id, {
      status: 'Failed',
      at: this.deps.clock.now(),
      exitCode: null,
      reason: `needs ${job.cpuMillis}m cpu and ${job.memoryBytes} bytes of memory; no node of this cluster is that large`,
      log: '',
    });
  }

  private launch(job: JobSummary, placement: Placement): void {
    const entry: RunningJob = {
      job,
      placement,
      abort: new AbortController(),
      live: '',
      done: Promise.resolve(),
    };
    this.running.set(job.id, entry);
    entry.done = this.execute(entry)
      .catch(async (e) => {
        this.deps.logger.error({ job: job.id, err: (e as Error).message }, 'job execution failed');
        // Never leave the job Running: record a bare failure (no log, no database error text).
        await this.deps.store
          .finishJob(job.id, {
            status: 'Failed',
            at: this.deps.clock.now(),
            exitCode: null,
            reason: 'the manager could not record how the job ended; see the manager log',
            log: '',
          })
          .catch(() => {});
      })
      .finally(() => {
        this.running.delete(job.id);
        release(this.deps.nodes, placement);
        this.wakeWaiters();
        this.wake();
      });
  }

  private async execute(entry: RunningJob): Promise<void> {
    const { job: summary } = entry;
    // The event bytes are read only now, for the one job that runs.
    const job = await this.deps.store.getJob(summary.id);
    if (!job) return;
    // Text columns cannot hold NUL: a script printing one must not make the job unrecordable.
    const finish = async (
      status: 'Succeeded' | 'Failed',
      reason: string | null,
      log: string,
      exitCode: number | null,
    ) => {
      const at = this.deps.clock.now();
      await this.deps.store.finishJob(job.id, {
        status,
        at,
        exitCode,
        reason: reason && withoutNul(reason),
        log: withoutNul(log),
      });
      // Counted once recorded (a failed write is retried through the catch below).
      if (job.startedAt)
        this.deps.metrics?.jobFinished(status, (at.getTime() - job.startedAt.getTime()) / 1000);
    };
    const service = await this.deps.services.get(job.service);
    if (!service) return finish('Failed', `service "${job.service}" no longer exists`, '', null);
    const timeoutMs = serviceTimeoutMs(service, this.deps.defaultTimeoutMs);
    const cap = this.deps.liveLogBytes ?? 256 * 1024;
    try {
      const outcome = await invoke(
        { executor: this.deps.executor, storage: this.deps.storage },
        {
          jobId: job.id,
          service,
          event: job.event,
          timeoutMs,
          signal: entry.abort.signal,
          uploadOutputs: true,
          resumable: true,
          origin: job.originCluster
            ? {
                cluster: job.originCluster,
                token: job.originToken ? this.deps.openSealed?.(job.originToken) : undefined,
              }
            : undefined,
          onLog: (chunk) => {
            if (entry.live.length < cap) entry.live += chunk.slice(0, cap - entry.live.length);
          },
        },
      );
      // Left running at shutdown: the next start re-attaches and records how it ended.
      if (outcome.result.detached) return;
      try {
        const reason = entry.abort.signal.aborted
          ? String(entry.abort.signal.reason ?? 'cancelled')
          : failureReason(outcome, timeoutMs);
        const log =
          jobLog(outcome) +
          (reason && outcome.result.exitCode !== null && outcome.result.exitCode !== 0
            ? `[flotilla] exit code ${outcome.result.exitCode}\n`
            : '');
        await finish(reason ? 'Failed' : 'Succeeded', reason, log, outcome.result.exitCode);
      } finally {
        await outcome.result.dispose();
      }
    } catch (e) {
      const reason = e instanceof InputMissingError ? e.message : `could not run: ${(e as Error).message}`;
      await finish('Failed', reason, `[flotilla] ${reason}\n`, null);
    }
  }

  /** The log so far of a job running here, or undefined. */
  liveLog(jobId: string): string | undefined {
    return this.running.get(jobId)?.live;
  }

  /** Cancels the running jobs of a service (it was deleted); they end as Failed. */
  cancelService(name: string, reason: string): void {
    for (const r of this.running.values()) if (r.job.service === name) r.abort.abort(reason);
  }

  /** Cancels one running job; true when it was running here. */
  cancelJob(id: string, reason: string): boolean {
    const r = this.running.get(id);
    if (!r) return false;
    r.abort.abort(reason);
    return true;
  }

  /**
   * Reserves capacity for a synchronous run, waiting while nothing fits.
   * Rejects at once when no node could ever hold it, or when the signal aborts.
   */
  async reserveForRun(cpuMillis: number, memoryBytes: number, signal: AbortSignal): Promise<() => void> {
    if (!everFits(this.deps.nodes, cpuMillis, memoryBytes)) {
      throw new Error(
        `needs ${cpuMillis}m cpu and ${memoryBytes} bytes; no node of this cluster is that large`,
      );
    }
    for (;;) {
      signal.throwIfAborted();
      const placement = reserve(this.deps.nodes, cpuMillis, memoryBytes);
      if (placement) {
        let released = false;
        return () => {
          if (released) return;
          released = true;
          release(this.deps.nodes, placement);
          this.wakeWaiters();
          this.wake();
        };
      }
      await new Promise<void>((resolve) => {
        const onAbort = () => resolve();
        signal.addEventListener('abort', onAbort, { once: true });
        this.waiters.push(() => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        });
      });
    }
  }

  private wakeWaiters(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /**
   * Stops taking work; running jobs are cancelled and recorded as Failed, unless the executor
   * re-attaches: then they keep running and the executor's close detaches from them.
   */
  async stop(graceMs = 5000): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.unsubscribe?.();
    if (this.deps.executor.reattach) return;
    const all = [...this.running.values()];
    const settled = Promise.allSettled(all.map((r) => r.done));
    const timeout = new Promise((r) => setTimeout(r, graceMs).unref());
    for (const r of all) r.abort.abort('the manager shut down while the job was running');
    await Promise.race([settled, timeout]);
  }

  get runningCount(): number {
    return this.running.size;
  }
}

/** NUL cannot be stored in a text column; it shows as U+FFFD in a log. */
const withoutNul = (text: string): string =>
  text.includes('\u0000') ? text.replaceAll('\u0000', '\uFFFD') : text;

export const serviceTimeoutMs = (service: Service, fallbackMs: number): number =>
  typeof service.timeout === 'number' && service.timeout > 0 ? service.timeout * 1000 : fallbackMs;
