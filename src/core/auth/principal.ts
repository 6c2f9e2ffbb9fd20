// Who is calling, and what that caller may do with a service. Pure rules, no I/O.
import { fail } from '../errors.ts';
import type { Service } from '../fdl/service.ts';

export const ADMIN_USER = 'oscar';
/** OSCAR's owner for services created through Basic auth. */
export const ADMIN_OWNER = 'cluster_admin';

export type Principal =
  | { kind: 'admin'; user: typeof ADMIN_USER }
  | { kind: 'user'; sub: string; issuer: string }
  /** A service's own token: may invoke that service and read its jobs, nothing else. */
  | { kind: 'service-token'; service: string }
  /** A cluster this one delegated a job to: may fetch storage keys for that service's buckets. */
  | { kind: 'delegation'; service: string };

export const ownerOf = (p: Principal): string =>
  p.kind === 'admin' ? ADMIN_OWNER : p.kind === 'user' ? p.sub : `${p.kind}:${p.service}`;

type Access = Pick<Service, 'name' | 'owner' | 'visibility' | 'allowed_users'>;

/** See the service (list, get) and invoke it. */
export const canUse = (p: Principal, s: Access): boolean => {
  if (p.kind === 'admin') return true;
  if (p.kind === 'service-token') return p.service === s.name;
  if (p.kind === 'delegation') return false;
  if (s.owner === p.sub) return true;
  if (s.visibility === 'public') return true;
  if (s.visibility === 'restricted') return (s.allowed_users ?? []).includes(p.sub);
  return false;
};

/** Change or delete the service definition. */
export const canManage = (p: Principal, s: Access): boolean => {
  if (p.kind === 'admin') return true;
  if (p.kind !== 'user') return false;
  return s.owner === p.sub;
};

/** A delegation token is for /system/config alone (keys to its service's buckets): 403 elsewhere. */
export const refuseDelegation = (p: Principal): void => {
  if (p.kind === 'delegation') fail('FORBIDDEN', 'a delegation token may only read /system/config');
};

/** A service's token is shown to its owner and the admin only. */
export const mayReadToken = (p: Principal, s: Pick<Service, 'owner'>): boolean =>
  p.kind === 'admin' || (p.kind === 'user' && p.sub === s.owner);

/**
 * Whose jobs of a service a caller sees and deletes: every job for the owner, the admin and
 * the service's own token (undefined); another user of a public or restricted service, only
 * the jobs they submitted (their owner id).
 */
export const jobOwnerScope = (p: Principal, s: Pick<Service, 'name' | 'owner'>): string | undefined => {
  if (p.kind === 'admin') return undefined;
  if (p.kind === 'service-token' && p.service === s.name) return undefined;
  if (p.kind === 'user' && p.sub === s.owner) return undefined;
  return ownerOf(p);
};

const OPENNESS = { private: 0, restricted: 1, public: 2 } as const;

/**
 * Fewer users may use the service than before: public→restricted/private, restricted→private,
 * or a user removed from allowed_users of a restricted service. Its token then rotates.
 */
export const narrowsVisibility = (previous: Access, next: Access): boolean => {
  const before = OPENNESS[previous.visibility ?? 'private'] ?? 0;
  const after = OPENNESS[next.visibility ?? 'private'] ?? 0;
  if (after < before) return true;
  if (before !== OPENNESS.restricted || after !== OPENNESS.restricted) return false;
  const still = new Set(next.allowed_users ?? []);
  return (previous.allowed_users ?? []).some((u) => !still.has(u));
};
