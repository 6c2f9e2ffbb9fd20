// JobQueue on the jobs table itself (local and standalone tiers). Nothing extra is stored:
// a job is offered exactly while its row is Pending and not delegated, oldest first, so the
// queue survives restarts for free and `remove` has nothing to do (the claim, Pending →
// Running, already took the job out of `store.pendingJobs`).
//
// Wake-ups are in-process only: `subscribe` hears `publish` calls made through THIS queue
// object. Jobs stored by another process (a second manager on the same PostgreSQL database,
// or a CLI writing rows) do not notify subscribers here, so runners must also poll (they do:
// the runner takes a pass on a timer as well as on wake-ups). The federated tier, where
// several replicas must wake each other, uses the BullMQ adapter instead.
import { EventEmitter } from 'node:events';
import type { JobQueue, JobStore } from '../../core/ports.ts';

const PUBLISHED = 'published';

export type DbJobQueue = JobQueue & { readonly kind: 'store' };

export const createDbQueue = (store: Pick<JobStore, 'pendingJobs' | 'countJobs'>): DbJobQueue => {
  const events = new EventEmitter();
  // Every runner and status loop of a process may subscribe; this is not a leak.
  events.setMaxListeners(0);
  let closed = false;

  return {
    kind: 'store',

    async publish(jobs) {
      // The rows are already committed by the caller: that is what makes them offered.
      if (closed || jobs.length === 0) return;
      events.emit(PUBLISHED);
    },

    async peek(limit) {
      if (limit <= 0) return [];
      const pending = await store.pendingJobs(Math.floor(limit));
      return pending.map((j) => j.id);
    },

    async remove() {
      // A claimed, delegated, finished or deleted job is no longer a Pending local row.
    },

    subscribe(cb) {
      const listener = (): void => {
        try {
          cb();
        } catch {
          // A subscriber's failure must not break publish for the others.
        }
      };
      events.on(PUBLISHED, listener);
      return () => {
        events.off(PUBLISHED, listener);
      };
    },

    async size() {
      // Pending rows, including any Pending row delegated to another cluster (which
      // `peek` does not offer): an upper bound, good for status and tests.
      return (await store.countJobs()).Pending;
    },

    async close() {
      closed = true;
      events.removeAllListeners();
    },
  };
};
