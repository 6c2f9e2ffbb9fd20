// An object landing under a service's input path (bucket/prefix, prefix and suffix
// filters) starts a job with an S3-style event, as OSCAR's MinIO webhook does; under
// isolation_level USER an object in a user's own bucket starts one for that user. Every
// such job passes the same input check as POST /job (DESIGN §3.2): a service whose owner
// may no longer read the bucket is not started.
import { isFlotillaError } from '../core/errors.ts';
import { objectCreatedEvent } from '../core/jobs/event.ts';
import type { ServiceStore } from '../core/ports.ts';
import { subjectOfOwner } from '../core/storage/bucket-access.ts';
import { triggeredInput } from '../core/storage/job-input.ts';
import { objectKeyProblem } from '../core/storage/object-key.ts';
import type { JobInputs } from './job-inputs.ts';
import type { JobIntake } from './jobs/job-intake.ts';
import type { RunnerLogger } from './jobs/job-runner.ts';

export class StorageTriggers {
  constructor(
    private readonly deps: {
      store: ServiceStore;
      intake: JobIntake;
      inputs: JobInputs;
      clusterId: string;
      logger: RunnerLogger;
    },
  ) {}

  /** Enqueues one job per service whose input matches; returns the job ids. */
  async objectCreated(e: { bucket: string; key: string; size: number }): Promise<string[]> {
    const ids: string[] = [];
    if (objectKeyProblem(e.key) !== undefined) return ids;
    const event = new TextEncoder().encode(objectCreatedEvent(e.bucket, e.key, e.size));
    const ref = { provider: 'minio.default', bucket: e.bucket, key: e.key };
    for (const service of await this.deps.store.listServices()) {
      const hit = triggeredInput(service, e.bucket, e.key, this.deps.clusterId);
      if (!hit) continue;
      const owner = hit.isolatedFor ?? service.owner;
      try {
        await this.deps.inputs.check(service, ref, { invoker: subjectOfOwner(owner) });
      } catch (err) {
        if (!isFlotillaError(err)) throw err;
        this.deps.logger.warn(
          { service: service.name, bucket: e.bucket, err: err.message },
          'storage trigger refused',
        );
        continue;
      }
      ids.push(await this.deps.intake.enqueue(service, event, owner));
    }
    if (ids.length)
      this.deps.logger.info(
        { bucket: e.bucket, key: e.key, jobs: ids.length },
        'object created: jobs enqueued',
      );
    return ids;
  }
}
