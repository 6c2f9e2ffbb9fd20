// The one check of what a job may read (DESIGN §3.2), for every way a job starts: POST /job
// and /run (at intake, 400 before anything is stored), storage triggers, and the executor
// right before it downloads. The object must be under an input path of the service (core
// decides) and, on this cluster's store, readable by the service's owner and by whoever
// invoked the job; a user's own bucket under isolation_level USER by that user alone. The
// store of a delegating cluster enforces its own keys' scope.
import type { Principal } from '../core/auth/principal.ts';
import { fail } from '../core/errors.ts';
import type { Service } from '../core/fdl/service.ts';
import { parseEvent } from '../core/jobs/event.ts';
import type { BucketStore } from '../core/ports.ts';
import {
  type BucketSubject,
  bucketGrants,
  subjectOfOwner,
  subjectOfPrincipal,
} from '../core/storage/bucket-access.ts';
import { type CoveredInput, coverInput, type InputRef } from '../core/storage/job-input.ts';

const describe = (s: BucketSubject) => (s.kind === 'admin' ? 'the admin' : `user ${s.sub}`);

export class JobInputs {
  constructor(private readonly deps: { buckets: Pick<BucketStore, 'getBucket'>; clusterId: string }) {}

  /**
   * The input the object is under; throws BAD_REQUEST (400) naming the object otherwise.
   * `invoker` is who started the job (undefined: the service itself, e.g. its token).
   */
  async check(
    service: Service,
    ref: InputRef,
    opts: { invoker?: BucketSubject; origin?: string } = {},
  ): Promise<CoveredInput> {
    const verdict = coverInput(service, ref, { clusterId: this.deps.clusterId, origin: opts.origin });
    if (!verdict.ok) return fail('BAD_REQUEST', verdict.reason);
    const input = verdict.input;
    if (input.storage !== 'local') return input;
    const record = await this.deps.buckets.getBucket(ref.bucket);
    const readers: BucketSubject[] = input.isolatedFor !== undefined ? [] : [subjectOfOwner(service.owner)];
    if (opts.invoker) readers.push(opts.invoker);
    // A user's isolated bucket is read for that user: a job someone else started may not.
    if (input.isolatedFor !== undefined && !opts.invoker) readers.push(subjectOfOwner(input.isolatedFor));
    for (const reader of readers) {
      if (!bucketGrants(reader, record, 'read')) {
        fail(
          'BAD_REQUEST',
          `the event names ${ref.bucket}/${ref.key}, which ${describe(reader)} may not read`,
        );
      }
    }
    return input;
  }

  /** The intake check of a raw event body: payloads pass, S3-style events go through check(). */
  async checkEvent(
    service: Service,
    body: Uint8Array,
    opts: { invoker?: BucketSubject; origin?: string } = {},
  ): Promise<void> {
    const event = parseEvent(body);
    if (event.kind !== 'storage') return;
    await this.check(service, { provider: event.provider, bucket: event.bucket, key: event.key }, opts);
  }

  /** The intake's check of an event sent by `principal` (from cluster `origin` when delegated). */
  checkEventOf(service: Service, principal: Principal, body: Uint8Array, origin?: string): Promise<void> {
    return this.checkEvent(service, body, { invoker: subjectOfPrincipal(principal), origin });
  }
}
