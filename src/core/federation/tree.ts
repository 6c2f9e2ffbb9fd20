// Walking and naming the members of a federation block. Shared by validation, expansion
// and the member operations so that all three agree on what "the same member" means.
import { withoutUserInfo } from './endpoint.ts';
import type { Member, NodeRef, Replica } from './model.ts';

/**
 * A member's identity. `oscar` members are (type, cluster_id, service_name) as DESIGN §4
 * says; `endpoint` members usually carry neither cluster nor service, so they are told
 * apart by their url (two endpoints with the same url are the same delegation target).
 */
export const memberKey = (m: Replica): string =>
  m.type === 'endpoint' ? `endpoint ${m.url ?? ''}` : `oscar ${m.cluster_id ?? ''}/${m.service_name ?? ''}`;

/** How a message names a member: "cluster b/grayify-b" or "endpoint https://…" (never a password). */
export const memberLabel = (m: Partial<Replica>): string =>
  m.type === 'endpoint'
    ? `endpoint ${typeof m.url === 'string' ? withoutUserInfo(m.url) : '(no url)'}`
    : `cluster ${m.cluster_id ?? '?'}/${m.service_name ?? '?'}`;

export const isDeployed = <M extends Replica>(m: M): m is M & NodeRef =>
  m.type === 'oscar' && typeof m.cluster_id === 'string' && typeof m.service_name === 'string';

export const nodeOf = (m: NodeRef): NodeRef => ({ cluster_id: m.cluster_id, service_name: m.service_name });

export interface MemberVisit {
  member: Member;
  /** The member it nests under; undefined for a top-level member (whose parent is the coordinator). */
  parent: Member | undefined;
  /** 1 for a top-level member. */
  depth: number;
  /** Where it is written, e.g. "federation.members[1].members[0]". */
  path: string;
}

/** Every member at any depth, parents before their children, in written order. */
export function* walkMembers(
  members: readonly Member[],
  path = 'federation.members',
  depth = 1,
  parent?: Member,
): Generator<MemberVisit> {
  for (const [i, member] of members.entries()) {
    const at = `${path}[${i}]`;
    yield { member, parent, depth, path: at };
    if (member.members) yield* walkMembers(member.members, `${at}.members`, depth + 1, member);
  }
}
