// Lifecycle hooks the composition root attaches to services: buckets checked, made and
// deleted with the service; caches cleared and running jobs cancelled when it changes or goes.

import type { JobRunner } from '../app/jobs/job-runner.ts';
import { ServiceBuckets } from '../app/service-buckets.ts';
import type { ServiceCache } from '../app/service-cache.ts';
import type { ServiceHooks } from '../app/services.ts';
import type { Service } from '../core/fdl/service.ts';
import type { BucketStore, Executor, ExposedServices, JobStore, ObjectStore } from '../core/ports.ts';

/**
 * The buckets a service names on this cluster's store: refused (403) when they are someone
 * else's, made and owned as the service before it is stored, deleted with it when it made them.
 */
export const bucketHooks = (deps: {
  objects: ObjectStore;
  store: BucketStore;
  clusterId: string;
  log: { warn(obj: Record<string, unknown>, msg: string): void };
}): ServiceHooks => new ServiceBuckets(deps).hooks();

export const cacheHooks = (
  cache: ServiceCache,
  runner: JobRunner,
  jobs: Pick<JobStore, 'deleteJobs'>,
): ServiceHooks => ({
  afterCreate: async (s) => cache.invalidate(s.name),
  afterUpdate: async (s) => cache.invalidate(s.name),
  afterDelete: async (s) => {
    cache.invalidate(s.name);
    runner.cancelService(s.name, `service "${s.name}" was deleted while the job ran`);
    // Its jobs and logs go with it: a later service of the same name (maybe another
    // owner's) must not list them.
    await jobs.deleteJobs(s.name, { all: true });
  },
});

/**
 * Exposed services' workloads follow the service: made (or replaced) before the service is
 * stored, so a bad `expose` block or a refusing cluster refuses the create/update (and what
 * that apply created is deleted again, nothing else); removed before the service is, so a
 * cluster that cannot be reached refuses the delete (503) and leaves the service stored: a
 * retry removes what is left (absent objects are fine) and nothing is orphaned.
 */
export const exposeHooks = (exposed: ExposedServices): ServiceHooks => ({
  beforeCreate: async (s) => exposed.apply(s),
  beforeUpdate: async (s, previous) => exposed.apply(s, previous),
  beforeDelete: async (s) => exposed.remove(s),
});

/**
 * The owner's namespace (isolation_level USER) goes when their last service in it does: before
 * the service is removed, so a cluster that cannot be reached refuses the delete (503, the
 * service stays, a retry works); only a namespace the executor made (never a same-named one
 * someone else did). An update that moves the last service out releases it too, best effort
 * (the update is already stored: a failure is logged, the empty namespace stays).
 */
export const namespaceHooks = (deps: {
  executor: Pick<Executor, 'releaseNamespace'>;
  services: { listServices(): Promise<Service[]> };
  log: { warn(obj: Record<string, unknown>, msg: string): void };
}): ServiceHooks => {
  const release = deps.executor.releaseNamespace?.bind(deps.executor);
  if (!release) return {};
  return {
    beforeDelete: async (s) => {
      await release(
        s,
        (await deps.services.listServices()).filter((o) => o.name !== s.name),
      );
    },
    afterUpdate: async (s, previous) => {
      try {
        // The stored list holds the new definition: a service still in that namespace keeps it.
        const others = (await deps.services.listServices()).filter((o) => o.name !== s.name);
        await release(previous, [...others, s]);
      } catch (e) {
        deps.log.warn({ err: (e as Error).message, service: s.name }, 'cannot release a user namespace');
      }
    },
  };
};
