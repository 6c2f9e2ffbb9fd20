// Per-user namespaces: a service with `isolation_level: USER` runs its jobs and its exposed
// workload in a namespace of its owner, not in the shared services namespace. Pure naming.
//
// The rule: `<base>-<slug>-<hash>`, where hash is the first 16 hex digits (64 bits) of
// SHA-256 of the owner's id exactly as stored (case and all), and slug up to 12 characters of
// the owner's id lower-cased with every run of other characters than [a-z0-9] turned into one
// "-" (for people reading `kubectl get ns`; it carries no identity: the hash does). The base
// is cut when the whole would pass 63 characters. So the name is always a DNS label (RFC 1123,
// ≤ 63), the same owner always maps to the same namespace, two owners collide only if their
// SHA-256 agree on 64 bits, and no owner id — however hostile (uppercase, dots, "..", slashes,
// unicode, 10 kB) — can name the shared namespace, another user's, or any namespace that
// does not begin with the base's first 33 characters.
import { createHash } from 'node:crypto';

export const USER_NAMESPACE_HASH_HEX = 16;
const SLUG_MAX = 12;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** Whether the service asks for a namespace of its own owner (OSCAR's isolation_level USER). */
export const wantsUserNamespace = (s: { isolation_level?: unknown }): boolean =>
  typeof s.isolation_level === 'string' && s.isolation_level.toUpperCase() === 'USER';

export function userNamespace(base: string, owner: string): string {
  const hash = createHash('sha256').update(owner, 'utf8').digest('hex').slice(0, USER_NAMESPACE_HASH_HEX);
  const slug = owner
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+/, '')
    .slice(0, SLUG_MAX)
    .replace(/-+$/, '');
  const tail = slug ? `${slug}-${hash}` : hash;
  const room = 63 - tail.length - 1;
  const head = base.slice(0, room).replace(/-+$/, '') || 'u';
  const name = `${head}-${tail}`;
  if (!DNS_LABEL.test(name)) throw new Error(`user namespace "${name}" is not a DNS label`); // cannot happen
  return name;
}
