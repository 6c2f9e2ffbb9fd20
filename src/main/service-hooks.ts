// Lifecycle hooks the composition root attaches to services: buckets created with the
// service; caches cleared and running jobs cancelled when it changes or goes.

import type { JobRunner } from '../app/jobs/job-runner.ts';
import type { ServiceCache } from '../app/service-cache.ts';
import type { ServiceHooks } from '../app/services.ts';
import { isLocalProvider } from '../app/storage-triggers.ts';
import { FlotillaError } from '../core/errors.ts';
import type { StorageIO } from '../core/fdl/service.ts';
import type { JobStore, ObjectStore } from '../core/ports.ts';
import { splitPath } from '../core/storage/paths.ts';

/** Input and output buckets on this cluster's store exist before the service is stored. */
export const bucketHooks = (objects: ObjectStore, clusterId: string): ServiceHooks => {
  const ensure = async (ios: StorageIO[]) => {
    const buckets = new Set(
      ios
        .filter((io) => isLocalProvider(io.storage_provider, clusterId))
        .map((io) => splitPath(io.path).bucket),
    );
    for (const b of buckets) {
      try {
        await objects.ensureBucket(b);
      } catch (e) {
        throw new FlotillaError('UNAVAILABLE', `cannot create bucket "${b}": ${(e as Error).message}`);
      }
    }
  };
  return {
    beforeCreate: async (s) => ensure([...(s.input ?? []), ...(s.output ?? [])]),
    beforeUpdate: async (s) => ensure([...(s.input ?? []), ...(s.output ?? [])]),
  };
};

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
