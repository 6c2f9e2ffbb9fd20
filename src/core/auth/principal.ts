// Who is calling, and what that caller may do with a service. Pure rules, no I/O.
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
