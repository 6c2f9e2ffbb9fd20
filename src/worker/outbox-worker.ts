// Drains the durable per-peer outbox: each (peer, service)'s rows are applied in order, one
// at a time; a row that fails stays at the head of its service and is retried with backoff,
// so later changes to that service cannot overtake it (other services' rows go on). Rows
// carry full state and are idempotent: an upsert is PUT, falling back to POST on 404; a
// delete tolerates 404; a 409 for a stale revision means the peer already holds something
// newer.
import { SUPERSEDED_AT } from '../app/federation/federation-use-cases.ts';
import { isFlotillaError } from '../core/errors.ts';
import type { Clock, Log, OutboxRow, OutboxStore, PeerClient } from '../core/ports.ts';

export type OutboxLogger = Pick<Log, 'info' | 'warn'>;

export interface OutboxWorkerOptions {
  store: OutboxStore;
  peers: PeerClient;
  clock: Clock;
  logger: OutboxLogger;
  /** Backoff: first retry delay and cap. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  pollMs?: number;
  /** Per-call timeout to a peer. */
  callTimeoutMs?: number;
  /** Peers drained at once. */
  concurrency?: number;
  /** Turns a stored target into one ready to call (mints the owner's token when needed). */
  resolveTarget?: (target: OutboxRow['target']) => Promise<OutboxRow['target']>;
  /** Opens secrets sealed inside a payload right before it is sent (never stored open). */
  openPayload?: (payload: Record<string, unknown>) => Record<string, unknown>;
}

/** Exponential backoff with full jitter in the upper half. */
export const backoffMs = (attempts: number, base: number, max: number, rand = Math.random): number => {
  const ceiling = Math.min(max, base * 2 ** Math.min(attempts, 20));
  return Math.round(ceiling / 2 + rand() * (ceiling / 2));
};

export class OutboxWorker {
  private timer: NodeJS.Timeout | undefined;
  private readonly active = new Set<string>();
  /**
   * Peers where nothing can move before a time (every service's head row waits out its
   * backoff, or the peer is unreachable). duePeers lists a peer when ANY pending row is due,
   * rows behind a waiting head included: without this, each pass would drain such a peer
   * again at once (a busy loop) and keep settle() waiting its full timeout.
   */
  private readonly blockedUntil = new Map<string, number>();
  private passing = false;
  private again = false;
  private stopped = false;
  private readonly listeners = new Set<() => void>();

  constructor(private readonly o: OutboxWorkerOptions) {}

  start(): void {
    this.stopped = false;
    this.timer = setInterval(() => this.wake(), this.o.pollMs ?? 500);
    this.timer.unref();
    this.wake();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    const deadline = Date.now() + 5000;
    while (this.active.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  }

  wake(): void {
    if (this.stopped) return;
    if (this.passing) {
      this.again = true;
      return;
    }
    this.passing = true;
    setImmediate(() => void this.pass());
  }

  /** Resolves after the next pass that leaves nothing due (or at the timeout). */
  async settle(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const due = await this.duePeers();
      if (due.length === 0 && this.active.size === 0) return;
      this.wake();
      await new Promise<void>((r) => {
        const t = setTimeout(r, 100);
        this.listeners.add(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  private async pass(): Promise<void> {
    try {
      do {
        this.again = false;
        const peers = (await this.duePeers()).filter((p) => !this.active.has(p));
        const limit = this.o.concurrency ?? 16;
        const slots = Math.max(0, limit - this.active.size);
        for (const peer of peers.slice(0, slots)) {
          this.active.add(peer);
          void this.drainPeer(peer).finally(() => {
            this.active.delete(peer);
            this.notify();
            this.wake();
          });
        }
      } while (this.again && !this.stopped);
    } catch (e) {
      this.o.logger.warn({ err: (e as Error).message }, 'outbox pass failed');
    } finally {
      this.passing = false;
    }
  }

  /** Peers with a due row whose head is not waiting out a backoff. */
  private async duePeers(): Promise<string[]> {
    const now = this.o.clock.now();
    const peers = await this.o.store.duePeers(now);
    return peers.filter((p) => {
      const until = this.blockedUntil.get(p);
      if (until === undefined) return true;
      if (until > now.getTime()) return false;
      this.blockedUntil.delete(p);
      return true;
    });
  }

  private notify(): void {
    for (const l of this.listeners) l();
    this.listeners.clear();
  }

  /**
   * Applies a peer's rows, each service's in order. A row the peer refuses waits out its
   * backoff and holds back only its own service's later rows; an unreachable peer holds
   * back everything (the rest would fail the same way).
   */
  private async drainPeer(peer: string): Promise<void> {
    for (let progressed = true; progressed && !this.stopped; ) {
      progressed = false;
      const heads = await this.o.store.headsOfPeer(peer);
      let wait = Number.POSITIVE_INFINITY;
      for (const row of heads) {
        if (this.stopped) return;
        if (row.nextAttemptAt > this.o.clock.now()) {
          wait = Math.min(wait, row.nextAttemptAt.getTime());
          continue;
        }
        // Full-state rows: a later row for the same service supersedes this one.
        // Marked with SUPERSEDED_AT so sync states do not count it as applied at the peer.
        if (await this.o.store.hasLaterRow(row)) {
          await this.o.store.markOutboxDone(row.id, SUPERSEDED_AT);
          progressed = true;
          continue;
        }
        try {
          await this.apply(row);
          await this.o.store.markOutboxDone(row.id, this.o.clock.now());
          progressed = true;
        } catch (e) {
          const message = (e as Error).message;
          const delay = backoffMs(row.attempts, this.o.baseDelayMs ?? 250, this.o.maxDelayMs ?? 5000);
          const next = new Date(this.o.clock.now().getTime() + delay);
          await this.o.store.markOutboxRetry(row.id, message, next);
          wait = Math.min(wait, next.getTime());
          if (row.attempts === 0 || row.attempts % 20 === 0) {
            this.o.logger.warn(
              { peer, service: row.service, op: row.op, attempts: row.attempts + 1, err: message },
              'outbox change not applied yet; will retry',
            );
          }
          if (isFlotillaError(e) && e.code === 'PEER_UNREACHABLE') {
            this.blockedUntil.set(peer, next.getTime());
            return;
          }
        }
      }
      // Nothing could move: the peer waits for its earliest due row.
      if (!progressed && wait < Number.POSITIVE_INFINITY) this.blockedUntil.set(peer, wait);
    }
  }

  /** New rows for these peers: they need not wait for another service's backoff. */
  nudge(peers: Iterable<string>): void {
    for (const p of peers) this.blockedUntil.delete(p);
    this.wake();
  }

  private async apply(stored: OutboxRow): Promise<void> {
    const signal = AbortSignal.timeout(this.o.callTimeoutMs ?? 10_000);
    const { peers } = this.o;
    const row = this.o.resolveTarget
      ? { ...stored, target: await this.o.resolveTarget(stored.target) }
      : stored;
    if (row.op === 'delete') {
      await peers.deleteService(row.target, row.service, signal);
      return;
    }
    const payload = this.o.openPayload ? this.o.openPayload(row.payload ?? {}) : (row.payload ?? {});
    try {
      await peers.updateService(row.target, payload, signal);
    } catch (e) {
      if (isFlotillaError(e) && (e.code === 'SERVICE_NOT_FOUND' || e.code === 'NOT_FOUND')) {
        try {
          await peers.createService(row.target, payload, signal);
        } catch (e2) {
          // Created meanwhile by an earlier attempt that timed out: update it.
          if (isFlotillaError(e2) && e2.code === 'SERVICE_EXISTS')
            await peers.updateService(row.target, payload, signal);
          else throw e2;
        }
        return;
      }
      if (isFlotillaError(e) && e.code === 'STALE_REVISION') return;
      throw e;
    }
  }
}
