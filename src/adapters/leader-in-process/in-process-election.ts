// Leader election inside one process: for the local tier, where one process owns the store
// (PGlite in its data dir) and so always leads. Candidates share a lock only through the
// same InProcessLocks; the composition root gives each manager its own, so several managers
// in one process (tests, benchmarks) each lead their own loops, as they did before.
import type { DemotionReason, LeaderElection } from '../../core/ports.ts';

/** One holder per key among the candidates given this object; waiters are woken on release. */
export class InProcessLocks {
  private readonly holders = new Map<string, object>();
  private readonly waiters = new Map<string, Set<() => void>>();

  tryTake(key: string, who: object): boolean {
    const holder = this.holders.get(key);
    if (holder && holder !== who) return false;
    this.holders.set(key, who);
    return true;
  }

  release(key: string, who: object): void {
    if (this.holders.get(key) !== who) return;
    this.holders.delete(key);
    // Wake every waiter: the first to try takes it, the others wait again.
    for (const wake of [...(this.waiters.get(key) ?? [])]) wake();
  }

  /** Calls `wake` after each release of `key` until the returned function is called. */
  onRelease(key: string, wake: () => void): () => void {
    let set = this.waiters.get(key);
    if (!set) {
      set = new Set();
      this.waiters.set(key, set);
    }
    set.add(wake);
    return () => {
      set.delete(wake);
      if (set.size === 0 && this.waiters.get(key) === set) this.waiters.delete(key);
    };
  }
}

export interface InProcessElectionOptions {
  /** Candidates sharing this object share the lock (default: a private one: always leads). */
  locks?: InProcessLocks;
  key: string;
  onElected?: () => void | Promise<void>;
  onDemoted?: (reason: DemotionReason) => void | Promise<void>;
  onError?: (err: Error) => void;
}

export class InProcessElection implements LeaderElection {
  private readonly locks: InProcessLocks;
  private running = false;
  private leader = false;
  private stopWaiting: (() => void) | undefined;
  /** Serialises attempts and demotion, so a wake-up during stop() cannot elect. */
  private turn: Promise<void> = Promise.resolve();

  constructor(private readonly opts: InProcessElectionOptions) {
    this.locks = opts.locks ?? new InProcessLocks();
  }

  get isLeader(): boolean {
    return this.leader;
  }

  start(): Promise<void> {
    if (this.running) return this.turn;
    this.running = true;
    this.stopWaiting = this.locks.onRelease(this.opts.key, () => {
      void this.queue(() => this.attempt());
    });
    return this.queue(() => this.attempt());
  }

  stop(): Promise<void> {
    if (!this.running) return this.turn;
    this.running = false;
    this.stopWaiting?.();
    this.stopWaiting = undefined;
    return this.queue(async () => {
      if (!this.leader) return;
      this.leader = false;
      // Stop the work first, then free the lock, so two leaders never overlap.
      await this.call(() => this.opts.onDemoted?.('stopped'));
      this.locks.release(this.opts.key, this);
    });
  }

  private queue(step: () => Promise<void>): Promise<void> {
    this.turn = this.turn.then(step);
    return this.turn;
  }

  private async attempt(): Promise<void> {
    if (!this.running || this.leader || !this.locks.tryTake(this.opts.key, this)) return;
    this.leader = true;
    await this.call(this.opts.onElected);
  }

  private async call(fn: (() => void | Promise<void>) | undefined): Promise<void> {
    try {
      await fn?.();
    } catch (e) {
      try {
        this.opts.onError?.(e instanceof Error ? e : new Error(String(e)));
      } catch {
        // a failing error hook must not stop the election
      }
    }
  }
}
