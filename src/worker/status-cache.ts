// The status cache: /system/status of every target some service delegates to, polled in the
// background at an interval with jitter and a short timeout. Decisions read it; none makes a
// network call. Entries are keyed by the caller's key for a target (endpoint and
// credentials, see delegation-wiring), never by a cluster id a user can write. A target not
// heard from within `staleMs` counts as offline; one that fails is polled with backoff, and
// one no service names any more is dropped.
import {
  type ClusterSnapshot,
  type JobDemand,
  reserveOnSnapshot,
  snapshotFromStatus,
} from '../core/delegation/policy.ts';
import type { PeerClient, PeerTarget } from '../core/ports.ts';

export interface StatusCacheOptions {
  peers: PeerClient;
  /** The targets to poll now, by key (recomputed every round). */
  targets: () => Promise<Map<string, PeerTarget>>;
  intervalMs?: number;
  timeoutMs?: number;
  /** Older than this → offline. Default 3 × interval. */
  staleMs?: number;
  /** Longest wait between polls of a failing target (default one minute). */
  maxBackoffMs?: number;
  /** The time, in ms (tests give their own). */
  now?: () => number;
  logger?: { debug(obj: Record<string, unknown>, msg: string): void };
  /**
   * Several replicas of one cluster: the leader polls and publishes what it saw; the others
   * read it instead of polling every peer themselves.
   */
  shared?: {
    publish(entries: SharedEntry[]): Promise<void>;
    load(): Promise<SharedEntry[]>;
  };
}

export interface SharedEntry {
  key: string;
  snapshot: ClusterSnapshot;
  at: number;
}

interface Entry {
  snapshot: ClusterSnapshot;
  at: number;
}

export class StatusCache {
  private readonly entries = new Map<string, Entry>();
  /**
   * Reservations by key, with when they were made. A poll answer was computed no earlier
   * than its request was sent: reservations made after that may not be in it, so they are
   * applied again on top of it instead of being wiped by it.
   */
  private readonly reservations = new Map<string, Array<{ at: number; job: JobDemand }>>();
  /** Failing targets: how many failures in a row, and when to try again. */
  private readonly backoff = new Map<string, { failures: number; next: number }>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private polling = false;
  /** Whether this instance polls (always, without sharing; the leader, with it). */
  private leading: boolean;

  constructor(private readonly o: StatusCacheOptions) {
    this.leading = !o.shared;
  }

  private now(): number {
    return this.o.now ? this.o.now() : Date.now();
  }

  /** Becomes (or stops being) the instance that polls for the others. */
  lead(leading: boolean): void {
    if (!this.o.shared || leading === this.leading) return;
    this.leading = leading;
    if (leading && !this.stopped) void this.refresh().catch(() => {});
  }

  /** Takes the leader's snapshots, re-applying the reservations made here since. */
  private async follow(): Promise<void> {
    const shared = await this.o.shared!.load();
    const keys = new Set(shared.map((e) => e.key));
    for (const key of [...this.entries.keys()]) if (!keys.has(key)) this.forget(key);
    for (const { key, snapshot, at } of shared) {
      const mine = this.entries.get(key);
      if (mine && mine.at >= at) continue;
      let s = snapshot;
      const since = (this.reservations.get(key) ?? []).filter((r) => r.at >= at);
      for (const r of since) s = reserveOnSnapshot(s, r.job);
      this.entries.set(key, { snapshot: s, at });
    }
  }

  private get interval(): number {
    return this.o.intervalMs ?? 2000;
  }

  start(): void {
    this.stopped = false;
    void this.round();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** The snapshot of a target, with `online` false when it is stale or was never seen. */
  get(key: string): ClusterSnapshot | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    const fresh = this.now() - e.at <= (this.o.staleMs ?? this.interval * 3);
    return fresh ? e.snapshot : { ...e.snapshot, online: false };
  }

  /** Every known snapshot by key, staleness applied. */
  all(): Map<string, ClusterSnapshot> {
    const out = new Map<string, ClusterSnapshot>();
    for (const key of this.entries.keys()) out.set(key, this.get(key)!);
    return out;
  }

  /**
   * One view per cluster id, for the admin's metrics: online when any target of that id
   * answers, with the most free cpu among those that do.
   */
  byCluster(): Map<string, ClusterSnapshot> {
    const out = new Map<string, ClusterSnapshot>();
    for (const s of this.all().values()) {
      const prev = out.get(s.clusterId);
      const better =
        !prev ||
        (s.online && !prev.online) ||
        (s.online === prev.online && s.totalFreeCpuMillis > prev.totalFreeCpuMillis);
      if (better) out.set(s.clusterId, s);
    }
    return out;
  }

  /** Lowers the cached free capacity after sending a job there. */
  reserve(key: string, job: JobDemand): void {
    const e = this.entries.get(key);
    if (!e) return;
    e.snapshot = reserveOnSnapshot(e.snapshot, job);
    const list = this.reservations.get(key) ?? [];
    list.push({ at: this.now(), job });
    this.reservations.set(key, list);
  }

  /** Marks a target offline at once (a send to it failed). */
  markOffline(key: string): void {
    const e = this.entries.get(key);
    if (e) e.snapshot = { ...e.snapshot, online: false };
  }

  private forget(key: string): void {
    this.entries.delete(key);
    this.reservations.delete(key);
    this.backoff.delete(key);
  }

  /** Polls every target that is due once (also used by tests to fill the cache now). */
  async refresh(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const targets = await this.o.targets();
      // No service names it any more: neither polled nor kept.
      for (const key of [...this.entries.keys(), ...this.backoff.keys()]) {
        if (!targets.has(key)) this.forget(key);
      }
      const now = this.now();
      await Promise.all(
        [...targets]
          .filter(([key]) => (this.backoff.get(key)?.next ?? 0) <= now)
          .map(([key, target]) => this.poll(key, target)),
      );
    } finally {
      this.polling = false;
    }
  }

  private async poll(key: string, target: PeerTarget): Promise<void> {
    try {
      const sentAt = this.now();
      const status = await this.o.peers.status(target, AbortSignal.timeout(this.o.timeoutMs ?? 1500));
      // The round trip is topsis's latency criterion.
      let snapshot = snapshotFromStatus(target.clusterId, status, this.now() - sentAt);
      const since = (this.reservations.get(key) ?? []).filter((r) => r.at >= sentAt);
      for (const r of since) snapshot = reserveOnSnapshot(snapshot, r.job);
      if (since.length) this.reservations.set(key, since);
      else this.reservations.delete(key);
      this.entries.set(key, { snapshot, at: this.now() });
      this.backoff.delete(key);
    } catch (e) {
      // Errors carry no peer body and no credentials (PeerClient's contract).
      this.o.logger?.debug({ cluster: target.clusterId, err: (e as Error).message }, 'status poll failed');
      const failures = (this.backoff.get(key)?.failures ?? 0) + 1;
      const wait = Math.min(this.o.maxBackoffMs ?? 60_000, this.interval * 2 ** Math.min(failures, 20));
      this.backoff.set(key, { failures, next: this.now() + wait });
      const prev = this.entries.get(key);
      if (prev) prev.snapshot = { ...prev.snapshot, online: false };
      else
        this.entries.set(key, {
          snapshot: { clusterId: target.clusterId, online: false, nodes: [], totalFreeCpuMillis: 0 },
          at: 0,
        });
    }
  }

  private async round(): Promise<void> {
    if (this.stopped) return;
    if (this.leading) {
      await this.refresh().catch(() => {});
      const entries = [...this.entries].map(([key, e]) => ({ key, ...e }));
      await this.o.shared?.publish(entries).catch(() => {});
    } else {
      await this.follow().catch(() => {});
    }
    if (this.stopped) return;
    // ±20 % jitter so many managers do not poll in step.
    const delay = this.interval * (0.8 + Math.random() * 0.4);
    this.timer = setTimeout(() => void this.round(), delay);
    this.timer.unref();
  }
}
