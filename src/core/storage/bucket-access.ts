// Who may do what with a bucket (DESIGN §3.2). A bucket has one owner, whoever created it
// first; its visibility grants what it says: public read to every user, restricted read to
// its allowed users, private nothing; writing objects, changing visibility and deleting the
// bucket are the owner's. The admin may do anything. Pure.
import { ADMIN_OWNER, type Principal } from '../auth/principal.ts';

export type BucketVisibility = 'private' | 'public' | 'restricted';
export const BUCKET_VISIBILITIES: readonly BucketVisibility[] = ['private', 'public', 'restricted'];

export interface BucketRecord {
  name: string;
  /** An OIDC subject, or "cluster_admin" for the admin. */
  owner: string;
  visibility: BucketVisibility;
  allowedUsers: string[];
  /** The service whose create or update made the bucket: deleting that service deletes it. */
  createdBy: string | null;
}

/** read: list and get objects; write: put, copy into and delete objects; manage: visibility, delete bucket. */
export type BucketAction = 'read' | 'write' | 'manage';

/** Whom a bucket decision is about: the admin or one user. */
export type BucketSubject = { kind: 'admin' } | { kind: 'user'; sub: string };

export const ADMIN_SUBJECT: BucketSubject = { kind: 'admin' };

/** The subject behind an owner string (a service's or a job's owner). */
export const subjectOfOwner = (owner: string): BucketSubject =>
  owner === ADMIN_OWNER ? ADMIN_SUBJECT : { kind: 'user', sub: owner };

/** The subject a caller acts as for buckets; service tokens and delegations have none. */
export const subjectOfPrincipal = (p: Principal): BucketSubject | undefined =>
  p.kind === 'admin' ? ADMIN_SUBJECT : p.kind === 'user' ? { kind: 'user', sub: p.sub } : undefined;

/**
 * Whether `subject` may do `action` on the bucket. An existing bucket without a record
 * (made before ownership was recorded, or directly on the store) is the admin's.
 */
export const bucketGrants = (
  subject: BucketSubject,
  record: BucketRecord | undefined,
  action: BucketAction,
): boolean => {
  if (subject.kind === 'admin') return true;
  if (!record) return false;
  if (record.owner === subject.sub) return true;
  if (action !== 'read') return false;
  if (record.visibility === 'public') return true;
  return record.visibility === 'restricted' && record.allowedUsers.includes(subject.sub);
};
