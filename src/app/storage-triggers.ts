// An object landing under a service's input path (bucket/prefix, prefix and suffix
// filters) starts a job with an S3-style event, as OSCAR's MinIO webhook does.
import type { StorageIO } from '../core/fdl/service.ts';
import { objectCreatedEvent } from '../core/jobs/event.ts';
import type { ServiceStore } from '../core/ports.ts';
import { matchesInput } from '../core/storage/paths.ts';
import type { JobIntake } from './jobs/job-intake.ts';
import type { RunnerLogger } from './jobs/job-runner.ts';

/** Providers that name this cluster's own object store. */
export const isLocalProvider = (provider: string, clusterId: string): boolean =>
  provider === 'minio.default' || provider === `minio.${clusterId}`;

export class StorageTriggers {
  constructor(
    private readonly deps: {
      store: ServiceStore;
      intake: JobIntake;
      clusterId: string;
      logger: RunnerLogger;
    },
  ) {}

  /** Enqueues one job per service whose input matches; returns the job ids. */
  async objectCreated(e: { bucket: string; key: string; size: number }): Promise<string[]> {
    const ids: string[] = [];
    const event = new TextEncoder().encode(objectCreatedEvent(e.bucket, e.key, e.size));
    for (const service of await this.deps.store.listServices()) {
      const inputs = (service.input ?? []) as StorageIO[];
      const hit = inputs.some(
        (io) =>
          isLocalProvider(io.storage_provider, this.deps.clusterId) && matchesInput(io, e.bucket, e.key),
      );
      if (!hit) continue;
      ids.push(await this.deps.intake.enqueue(service, event, service.owner));
    }
    if (ids.length)
      this.deps.logger.info(
        { bucket: e.bucket, key: e.key, jobs: ids.length },
        'object created: jobs enqueued',
      );
    return ids;
  }
}
