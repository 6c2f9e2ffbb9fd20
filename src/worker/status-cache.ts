// The status cache: every replica cluster's /system/status, polled in the background at an
// interval with jitter and a short timeout. Decisions read it; none makes a network call.
// A cluster not heard from within `staleMs` counts as offline.
import {
  type ClusterSnapshot,
  type JobDemand,
  reserveOnSnapshot,
  snapshotFromStatus,
} from '../core/delegation/policy.ts';
import type { PeerClient, PeerTarget } from '../core/ports.ts';

export interface StatusCacheOptions {
  peers: PeerClient;
  /** The clusters to poll now and how to reach each (recomputed every round). */
  targets: () => Promise<Map<string, PeerTarget>>;
  intervalMs?: number;
  timeoutMs?: number;
  /** Older than this → offline. Default 3 × interval. */
  staleMs?: number;
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
   * Reservations by cluster, with when they were made. A poll answer was computed no earlier
   * than its request was sent: reservations made after that may not be in it, so they are
   * applied again on top of it instead of being wiped by it.
   */
  private readonly reservations = new Map<string, Array<{ at: number; job: JobDemand }>>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private polling = false;
  /** Whether this replica polls (always, without sharing; the leader, with it). */
  private leading: boolean;

  constructor(private readonly o: StatusCacheOptions) {
    this.leading = !o.shared;
  }

  /** Becomes (or stops being) the replica that polls for the others. */
  lead(leading: boolean): void {
    if (!this.o.shared || leading === this.leading) return;
    this.leading = leading;
    if (leading && !this.stopped) void this.refresh().catch(() => {});
  }

  /** Takes the leader's snapshots, re-applying the reservations made here since. */
  private async follow(): Promise<void> {
    const shared = await this.o.shared!.load();
    for (const { snapshot, at } of shared) {
      const mine = this.entries.get(snapshot.clusterId);
      if (mine && mine.at >= at) continue;
      let s = snapshot;
      const since = (this.reservations.get(snapshot.clusterId) ?? []).filter((r) => r.at >= at);
      for (const r of since) s = reserveOnSnapshot(s, r.job);
      this.entries.set(snapshot.clusterId, { snapshot: s, at });
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

  /** The snapshot of a cluster, with `online` false when it is stale or was never seen. */
  get(clusterId: string): ClusterSnapshot | undefined {
    const e = this.entries.get(clusterId);
    if (!e) return undefined;
    const fresh = Date.now() - e.at <= (this.o.staleMs ?? this.interval * 3);
    return fresh ? e.snapshot : { ...e.snapshot, online: false };
  }

  /** Every known snapshot, staleness applied. */
  all(): Map<string, ClusterSnapshot> {
    const out = new Map<string, ClusterSnapshot>();
    for (const id of this.entries.keys()) out.set(id, this.get(id)!);
    return out;
  }

  /** Lowers the cached free capacity after sending a job there. */
  reserve(clusterId: string, job: JobDemand): void {
    const e = this.entries.get(clusterId);
    if (!e) return;
    e.snapshot = reserveOnSnapshot(e.snapshot, job);
    const list = this.reservations.get(clusterId) ?? [];
    list.push({ at: Date.now(), job });
    this.reservations.set(clusterId, list);
  }

  /** Marks a cluster offline at once (a send to it failed). */
  markOffline(clusterId: string): void {
    const e = this.entries.get(clusterId);
    if (e) e.snapshot = { ...e.snapshot, online: false };
  }

  /** Polls every target once (also used by tests to fill the cache now). */
  async refresh(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const targets = await this.o.targets();
      await Promise.all(
        [...targets].map(async ([clusterId, target]) => {
          try {
            const sentAt = Date.now();
            const status = await this.o.peers.status(target, AbortSignal.timeout(this.o.timeoutMs ?? 1500));
            // The round trip is topsis's latency criterion.
            let snapshot = snapshotFromStatus(clusterId, status, Date.now() - sentAt);
            const since = (this.reservations.get(clusterId) ?? []).filter((r) => r.at >= sentAt);
            for (const r of since) snapshot = reserveOnSnapshot(snapshot, r.job);
            if (since.length) this.reservations.set(clusterId, since);
            else this.reservations.delete(clusterId);
            this.entries.set(clusterId, { snapshot, at: Date.now() });
          } catch (e) {
            this.o.logger?.debug({ cluster: clusterId, err: (e as Error).message }, 'status poll failed');
            const prev = this.entries.get(clusterId);
            if (prev) prev.snapshot = { ...prev.snapshot, online: false };
            else
              this.entries.set(clusterId, {
                snapshot: { clusterId, online: false, nodes: [], totalFreeCpuMillis: 0 },
                at: 0,
              });
          }
        }),
      );
    } finally {
      this.polling = false;
    }
  }

  private async round(): Promise<void> {
    if (this.stopped) return;
    if (this.leading) {
      await this.refresh().catch(() => {});
      await this.o.shared?.publish([...this.entries.values()]).catch(() => {});
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
