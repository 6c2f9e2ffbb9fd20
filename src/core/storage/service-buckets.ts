// The buckets a service names on this cluster's store and what a create, update or delete
// does to them (DESIGN §3.1, §3.2). A service may name a bucket it creates (the service's
// owner, visibility and allowed users go with it), one its owner may read (as an input) or
// write (as an output), or one it created before; any other existing bucket is refused.
// isolation_level USER adds a private bucket "<bucket>-<uid[:10]>" per allowed user (the
// owner uses the service's own) and input bucket, owned by that user, as OSCAR does.
// Pure: the caller reads the records, this decides, the caller acts.
import { ADMIN_OWNER } from '../auth/principal.ts';
import { fail } from '../errors.ts';
import { S3_BUCKET_RE, type Service, type StorageIO } from '../fdl/service.ts';
import { type BucketRecord, type BucketSubject, bucketGrants, subjectOfOwner } from './bucket-access.ts';
import { keyPrefixProblem } from './object-key.ts';
import { isLocalProvider, splitPath } from './paths.ts';

/** A bucket a service names, with what it needs from it and what it gets when created. */
export interface NamedBucket {
  name: string;
  /** Inputs are read, outputs written (an isolated bucket is both). */
  needs: 'read' | 'write';
  /** The record it gets when the service creates it. */
  record: BucketRecord;
  /** Under USER isolation: the user this bucket belongs to. */
  isolatedFor?: string;
}

export interface ServiceBucketNeeds {
  buckets: NamedBucket[];
  /** OSCAR's `bucket_list`: the isolated buckets, in order. */
  bucketList: string[];
  /** `allowed_users` as OSCAR stores it under USER isolation: the owner joins the list. */
  allowedUsers: string[] | undefined;
}

export const isUserIsolated = (s: Pick<Service, 'isolation_level'>): boolean =>
  String(s.isolation_level ?? '').toUpperCase() === 'USER';

/**
 * OSCAR's per-user bucket name: "<bucket>-<first 10 characters of the uid>". EGI uids are
 * hex, so that is the name as is; other subjects are lowercased and characters a bucket
 * name cannot hold become "-".
 */
export const isolatedBucketName = (bucket: string, uid: string): string => {
  const part = uid
    .slice(0, 10)
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .replace(/-+$/, '');
  return `${bucket}-${part}`;
};

const ioList = (s: Service, kind: 'input' | 'output'): StorageIO[] => (s[kind] ?? []) as StorageIO[];

/** Refuses paths whose prefix could climb out of the bucket (400 naming the field). */
export const checkServicePaths = (s: Service): void => {
  for (const kind of ['input', 'output'] as const) {
    ioList(s, kind).forEach((io, i) => {
      const problem = keyPrefixProblem(splitPath(io.path).prefix);
      if (problem) {
        fail(
          'VALIDATION_FAILED',
          `invalid service: ${kind}[${i}].path: ${JSON.stringify(io.path)} ${problem}`,
          {
            fields: [`${kind}[${i}].path`],
          },
        );
      }
    });
  }
};

/** The buckets the service names on this cluster's store. Throws 400 on a path or name it cannot use. */
export const serviceBucketNeeds = (s: Service, clusterId: string): ServiceBucketNeeds => {
  checkServicePaths(s);
  const byName = new Map<string, NamedBucket>();
  const shared = (name: string, needs: 'read' | 'write') => {
    const held = byName.get(name);
    if (held) {
      if (needs === 'write') held.needs = 'write';
      return;
    }
    byName.set(name, {
      name,
      needs,
      record: {
        name,
        owner: s.owner,
        visibility: s.visibility,
        allowedUsers: [...(s.allowed_users ?? [])],
        createdBy: s.name,
      },
    });
  };
  const local = (kind: 'input' | 'output') =>
    ioList(s, kind).filter((io) => isLocalProvider(io.storage_provider, clusterId));
  for (const io of local('input')) shared(splitPath(io.path).bucket, 'read');
  for (const io of local('output')) shared(splitPath(io.path).bucket, 'write');

  const users = s.allowed_users ?? [];
  if (!isUserIsolated(s) || users.length === 0) {
    return { buckets: [...byName.values()], bucketList: [], allowedUsers: s.allowed_users };
  }
  const bucketList: string[] = [];
  const holder = new Map<string, string>();
  for (const io of local('input')) {
    const base = splitPath(io.path).bucket;
    // The owner uses the service's own buckets: no isolated one, even when listed.
    for (const user of users.filter((u) => u !== s.owner)) {
      const name = isolatedBucketName(base, user);
      if (!S3_BUCKET_RE.test(name)) {
        fail(
          'VALIDATION_FAILED',
          `isolation_level USER: "${name}" (for user ${user}) is not a valid bucket name`,
        );
      }
      const other = holder.get(name);
      if (other !== undefined && other !== user) {
        fail('CONFLICT', `isolation_level USER: users ${other} and ${user} would share the bucket "${name}"`);
      }
      if (other !== undefined || byName.has(name)) continue;
      holder.set(name, user);
      bucketList.push(name);
      byName.set(name, {
        name,
        needs: 'write',
        isolatedFor: user,
        record: { name, owner: user, visibility: 'private', allowedUsers: [], createdBy: s.name },
      });
    }
  }
  // As OSCAR: the owner joins allowed_users.
  const allowedUsers = users.includes(s.owner) || s.owner === ADMIN_OWNER ? users : [...users, s.owner];
  return { buckets: [...byName.values()], bucketList, allowedUsers };
};

export interface BucketPlan {
  /** Buckets to create on the store and record (first claim wins). */
  create: BucketRecord[];
  /** Existing records to update: the service's own buckets follow its visibility and users. */
  update: Array<Pick<BucketRecord, 'name' | 'visibility' | 'allowedUsers'>>;
  /** Buckets the service made before and names no more, kept: released private, no creator. */
  release: string[];
  /** Isolated buckets of users no longer listed: deleted, as OSCAR does on update. */
  remove: string[];
  /** Names the service may not use (403). */
  refused: string[];
}

export interface PlanInput {
  needs: ServiceBucketNeeds;
  service: string;
  /** The service's owner: whose grants a named bucket must offer. */
  owner: BucketSubject;
  /** The admin acting may name any bucket. */
  callerIsAdmin: boolean;
  /** Records of the named buckets (absent: none recorded). */
  records: ReadonlyMap<string, BucketRecord>;
  /** Named buckets that exist on the store (with or without a record). */
  existing: ReadonlySet<string>;
  /** Records of buckets this service created (an update; empty on create). */
  created: readonly BucketRecord[];
  /** The isolated buckets of the previous definition (its bucket_list). */
  previousIsolated: readonly string[];
}

/** What a create or update does to the service's buckets. */
export const planServiceBuckets = (p: PlanInput): BucketPlan => {
  const plan: BucketPlan = { create: [], update: [], release: [], remove: [], refused: [] };
  const named = new Set<string>();
  for (const b of p.needs.buckets) {
    named.add(b.name);
    const rec = p.records.get(b.name);
    if (!rec) {
      if (!p.existing.has(b.name)) plan.create.push(b.record);
      // An unrecorded existing bucket is the admin's: the admin may hand it on, not create it.
      else if (!p.callerIsAdmin && p.owner.kind !== 'admin') plan.refused.push(b.name);
      else plan.create.push({ ...b.record, owner: b.isolatedFor ?? ADMIN_OWNER, createdBy: null });
      continue;
    }
    if (b.isolatedFor !== undefined) {
      // Only the user's bucket this service made: one the user (or another service) made
      // holds what the user never meant for this service.
      if (!p.callerIsAdmin && (rec.owner !== b.isolatedFor || rec.createdBy !== p.service)) {
        plan.refused.push(b.name);
      }
      continue;
    }
    if (rec.createdBy === p.service) {
      const same =
        rec.visibility === b.record.visibility &&
        rec.allowedUsers.length === b.record.allowedUsers.length &&
        rec.allowedUsers.every((u, i) => u === b.record.allowedUsers[i]);
      if (!same) {
        plan.update.push({
          name: b.name,
          visibility: b.record.visibility,
          allowedUsers: b.record.allowedUsers,
        });
      }
      continue;
    }
    if (!p.callerIsAdmin && !bucketGrants(p.owner, rec, b.needs)) plan.refused.push(b.name);
  }
  for (const rec of p.created) {
    if (named.has(rec.name)) continue;
    if (p.previousIsolated.includes(rec.name)) plan.remove.push(rec.name);
    else plan.release.push(rec.name);
  }
  return plan;
};

/** The owner subject of a service, for bucket grants. */
export const serviceOwnerSubject = (s: Pick<Service, 'owner'>): BucketSubject => subjectOfOwner(s.owner);
