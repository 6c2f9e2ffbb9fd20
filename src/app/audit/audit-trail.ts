// The audit trail's writer: callers hand over rows without waiting (a peer request never
// waits on the database); rows go to the store in batches within a fraction of a second
// through a bounded queue. A full queue, or a store that keeps refusing, drops rows — counted
// in /metrics, never blocking the request path and never growing memory without bound.
import { type AuditEntry, storableEntry } from '../../core/audit/chain.ts';
import type { AuditStore, Log, MetricsSink } from '../../core/ports.ts';

export interface AuditTrailDeps {
  store: Pick<AuditStore, 'append'>;
  log: Pick<Log, 'warn'>;
  metrics?: Pick<MetricsSink, 'auditRows'>;
  /** Rows held at most (default 10,000); past it new rows are dropped. */
  capacity?: number;
  /** Rows per insert (default 500). */
  batchSize?: number;
  /** Longest a row waits before its batch is written (default 200 ms). */
  flushMs?: number;
}

export class AuditTrail {
  private queue: AuditEntry[] = [];
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private failing = false;
  private closed = false;

  constructor(private readonly d: AuditTrailDeps) {}

  /** Queues a row; returns at once. false when it was dropped (the queue is full or closed). */
  record(entry: AuditEntry): boolean {
    if (this.closed || this.queue.length >= (this.d.capacity ?? 10_000)) {
      this.d.metrics?.auditRows('dropped', 1);
      return false;
    }
    this.queue.push(storableEntry(entry));
    if (this.queue.length >= (this.d.batchSize ?? 500)) this.kick();
    else if (!this.timer) {
      this.timer = setTimeout(() => this.kick(), this.d.flushMs ?? 200);
      this.timer.unref();
    }
    return true;
  }

  /** Rows waiting to be written. */
  get pending(): number {
    return this.queue.length;
  }

  private kick(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.writing) return;
    this.writing = this.drain().finally(() => {
      this.writing = undefined;
      // Rows that came while writing (or a failed batch put back) get their own turn.
      if (this.queue.length > 0 && !this.closed) {
        this.timer = setTimeout(() => this.kick(), this.failing ? 1000 : 0);
        this.timer.unref();
      }
    });
  }

  private async drain(): Promise<void> {
    const size = this.d.batchSize ?? 500;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, size);
      try {
        await this.d.store.append(batch);
        this.d.metrics?.auditRows('written', batch.length);
        if (this.failing) this.d.log.warn({ audit: 'trail' }, 'audit rows are being written again');
        this.failing = false;
      } catch (e) {
        // Put back in front (order is the chain's order) as far as capacity allows.
        const room = Math.max(0, (this.d.capacity ?? 10_000) - this.queue.length);
        const kept = batch.slice(0, room);
        this.queue.unshift(...kept);
        this.d.metrics?.auditRows('dropped', batch.length - kept.length);
        if (!this.failing)
          this.d.log.warn({ audit: 'trail', err: (e as Error).message }, 'audit rows not written; retrying');
        this.failing = true;
        return;
      }
    }
  }

  /** Writes what is queued (one more try for rows that failed). */
  async flush(): Promise<void> {
    if (this.writing) await this.writing;
    if (this.queue.length > 0) {
      this.kick();
      await this.writing;
    }
  }

  /** Stops taking rows and writes those queued; rows it could not write count as dropped. */
  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.queue.length > 0) this.d.metrics?.auditRows('dropped', this.queue.length);
    this.queue = [];
  }
}
