// Services read on every invocation: a short-lived cache in front of the store, cleared
// by this process's own changes. The TTL bounds staleness when another manager instance changes one.
import type { Service } from '../core/fdl/service.ts';
import type { ServiceStore } from '../core/ports.ts';

export class ServiceCache {
  private entries = new Map<string, { at: number; service: Service | undefined }>();
  private snapshot: { at: number; list: Promise<Service[]> } | undefined;

  constructor(
    private readonly store: Pick<ServiceStore, 'getService' | 'listServices'>,
    private readonly ttlMs = 2_000,
  ) {}

  /** Every service; concurrent callers share one read. */
  list(): Promise<Service[]> {
    if (!this.snapshot || Date.now() - this.snapshot.at >= this.ttlMs) {
      const list = this.store.listServices();
      this.snapshot = { at: Date.now(), list };
      list.catch(() => {
        this.snapshot = undefined;
      });
    }
    return this.snapshot.list;
  }

  async get(name: string): Promise<Service | undefined> {
    const hit = this.entries.get(name);
    if (hit && Date.now() - hit.at < this.ttlMs) return hit.service;
    const service = await this.store.getService(name);
    this.entries.set(name, { at: Date.now(), service });
    if (this.entries.size > 10_000) this.entries.clear();
    return service;
  }

  invalidate(name: string): void {
    this.entries.delete(name);
    this.snapshot = undefined;
  }
}
