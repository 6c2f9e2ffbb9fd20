// The buckets of a service's lifecycle on this cluster's store (DESIGN §3.1, §3.2): checked
// and made before the service is stored, following its visibility on update, deleted with it
// when it made them. Decides with core (planServiceBuckets), acts here.
import type { Principal } from '../core/auth/principal.ts';
import { FlotillaError, fail } from '../core/errors.ts';
import type { Service } from '../core/fdl/service.ts';
import type { BucketRecord, BucketStore, ObjectStore } from '../core/ports.ts';
import {
  type BucketPlan,
  planServiceBuckets,
  serviceBucketNeeds,
  serviceOwnerSubject,
} from '../core/storage/service-buckets.ts';
import type { ServiceHooks } from './services.ts';

const bucketListOf = (s: Service): string[] => {
  const list = (s as { bucket_list?: unknown }).bucket_list;
  return Array.isArray(list) ? list.filter((b): b is string => typeof b === 'string') : [];
};

export class ServiceBuckets {
  constructor(
    private readonly deps: {
      objects: ObjectStore;
      store: BucketStore;
      clusterId: string;
      log: { warn(obj: Record<string, unknown>, msg: string): void };
    },
  ) {}

  hooks(): ServiceHooks {
    return {
      beforeCreate: (s, p) => this.prepare(s, undefined, p),
      beforeUpdate: (s, previous, p) => this.prepare(s, previous, p),
      afterDelete: (s) => this.deleteCreatedBy(s.name),
    };
  }

  /**
   * Checks every bucket the definition names, then makes and records the new ones. Sets the
   * server's fields OSCAR has for USER isolation (bucket_list, the owner in allowed_users)
   * on the definition about to be stored.
   */
  async prepare(service: Service, previous: Service | undefined, principal: Principal): Promise<void> {
    const needs = serviceBucketNeeds(service, this.deps.clusterId);
    const records = new Map<string, BucketRecord>();
    const existing = new Set<string>();
    for (const b of needs.buckets) {
      const rec = await this.deps.store.getBucket(b.name);
      if (rec) records.set(b.name, rec);
      else if (await this.exists(b.name)) existing.add(b.name);
    }
    const plan = planServiceBuckets({
      needs,
      service: service.name,
      owner: serviceOwnerSubject(service),
      callerIsAdmin: principal.kind === 'admin',
      records,
      existing,
      created: previous ? await this.deps.store.bucketsCreatedBy(service.name) : [],
      previousIsolated: previous ? bucketListOf(previous) : [],
    });
    if (plan.refused.length > 0) {
      fail(
        'FORBIDDEN',
        `service "${service.name}" may not use bucket${plan.refused.length > 1 ? 's' : ''} ` +
          `${plan.refused.map((b) => `"${b}"`).join(', ')}: a service names only buckets its owner ` +
          'owns, may read (inputs) or may write (outputs)',
        { buckets: plan.refused },
      );
    }
    await this.act(
      service.name,
      plan,
      needs.buckets.map((b) => b.name),
    );
    const fields = service as Record<string, unknown>;
    if (needs.bucketList.length > 0) fields.bucket_list = needs.bucketList;
    else delete fields.bucket_list;
    if (needs.allowedUsers !== service.allowed_users) service.allowed_users = needs.allowedUsers;
  }

  private async act(service: string, plan: BucketPlan, named: string[]): Promise<void> {
    const claimed = new Set<string>();
    for (const rec of plan.create) {
      const held = await this.deps.store.claimBucket(rec);
      // Lost a race for the name to someone else's claim: refused like any taken bucket.
      if (held.owner !== rec.owner || held.createdBy !== rec.createdBy) {
        fail(
          'FORBIDDEN',
          `service "${service}" may not use bucket "${rec.name}": it belongs to another user`,
        );
      }
      claimed.add(rec.name);
    }
    // Every named bucket exists before the service is stored (one deleted on the store
    // behind the manager's back is made again); a new record goes if its bucket cannot be made.
    for (const name of named) {
      try {
        await this.deps.objects.ensureBucket(name);
      } catch (e) {
        for (const c of claimed) await this.deps.store.deleteBucketRecord(c).catch(() => {});
        throw new FlotillaError('UNAVAILABLE', `cannot create bucket "${name}": ${(e as Error).message}`);
      }
    }
    for (const u of plan.update) {
      await this.deps.store.updateBucket(u.name, { visibility: u.visibility, allowedUsers: u.allowedUsers });
    }
    for (const name of plan.release) {
      await this.deps.store.updateBucket(name, { createdBy: null, visibility: 'private', allowedUsers: [] });
    }
    for (const name of plan.remove) await this.deleteBucket(name);
  }

  /** After the service is deleted: the buckets it created go with it. */
  async deleteCreatedBy(service: string): Promise<void> {
    for (const rec of await this.deps.store.bucketsCreatedBy(service)) await this.deleteBucket(rec.name);
  }

  private async deleteBucket(name: string): Promise<void> {
    try {
      if (await this.exists(name)) await this.deps.objects.deleteBucket(name, { force: true });
      await this.deps.store.deleteBucketRecord(name);
    } catch (e) {
      // The service is gone either way; the record stays, so a retry (or the admin) can finish.
      this.deps.log.warn({ bucket: name, err: (e as Error).message }, 'could not delete a service bucket');
    }
  }

  private async exists(name: string): Promise<boolean> {
    try {
      return await this.deps.objects.bucketExists(name);
    } catch (e) {
      throw new FlotillaError(
        'UNAVAILABLE',
        `cannot reach the object store for bucket "${name}": ${(e as Error).message}`,
      );
    }
  }
}
