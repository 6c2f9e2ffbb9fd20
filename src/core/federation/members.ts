// Member operations behind /system/federation/{service} (OSCAR v4.1 request shape
// `{members, update?, clusters?, storage_providers?, delete?}`). Each returns a new spec
// with revision + 1 and leaves the input untouched; the caller re-validates the result with
// parseFederation (known clusters, the coordinator itself, depth) before expanding it.
// Request members are matched as written unless `defaults` is given, in which case they
// are normalized first (type, priority, service_name default), as parseFederation would.
import { fail } from '../errors.ts';
import type { FederationSpec, Member, NodeRef } from './model.ts';
import { nodeKey } from './model.ts';
import { memberKey, memberLabel, walkMembers } from './tree.ts';
import { type MemberDefaults, normalizeMembers } from './validate.ts';

interface Named {
  member: Member;
  /** Where the request writes it, e.g. "members[1].members[0]". */
  path: string;
}

const where = ({ member, path }: Named): string => `${path} (${memberLabel(member)})`;

/** The request's top-level members; with `nested`, every member at any depth. */
const named = (members: readonly Member[], nested: boolean): Named[] =>
  nested
    ? Array.from(walkMembers(members, 'members'))
    : members.map((member, i) => ({ member, path: `members[${i}]` }));

/** Keys of the named members, refusing a member named twice in one request. */
const requestKeys = (request: readonly Named[]): Map<string, Named> => {
  const keys = new Map<string, Named>();
  for (const entry of request) {
    const key = memberKey(entry.member);
    const first = keys.get(key);
    if (first)
      fail('FEDERATION_INVALID', `${where(entry)}: listed twice in the request (also ${first.path})`);
    keys.set(key, entry);
  }
  return keys;
};

const keysOf = (members: readonly Member[]): Set<string> =>
  new Set(Array.from(walkMembers(members), ({ member }) => memberKey(member)));

/** Refuses request members not found in the spec, naming the first. */
const requireKnown = (request: readonly Named[], found: ReadonlySet<string>): void => {
  const missing = request.find(({ member }) => !found.has(memberKey(member)));
  if (missing) fail('FEDERATION_INVALID', `${where(missing)}: not a member of this federation`);
};

const prepare = (members: readonly Member[], defaults: MemberDefaults | undefined): readonly Member[] =>
  defaults ? normalizeMembers(members, defaults, 'members') : members;

const next = (spec: FederationSpec, members: Member[]): FederationSpec => ({
  ...structuredClone(spec),
  members,
  revision: spec.revision + 1,
});

/**
 * Appends members (with any subtrees they carry) under the coordinator. A member already
 * in the federation, at any depth, is a CONFLICT (409) naming it: adding is not updating.
 * To attach under an existing tree node, update that node with its new `members`.
 */
export const addMembers = (
  spec: FederationSpec,
  written: readonly Member[],
  defaults?: MemberDefaults,
): FederationSpec => {
  const members = prepare(written, defaults);
  const request = named(members, true);
  requestKeys(request);
  const existing = keysOf(spec.members);
  const again = request.find(({ member }) => existing.has(memberKey(member)));
  if (again) fail('CONFLICT', `${where(again)}: already a member of this federation`);
  return next(spec, [...structuredClone(spec.members), ...structuredClone(members)]);
};

const replaceIn = (
  list: readonly Member[],
  updates: ReadonlyMap<string, Member>,
  found: Set<string>,
): Member[] =>
  list.map((m) => {
    const children = m.members && replaceIn(m.members, updates, found);
    const update = updates.get(memberKey(m));
    if (!update) return children ? { ...m, members: children } : { ...m };
    found.add(memberKey(m));
    // The update replaces the member's fields; its place in the tree is kept unless it says otherwise.
    const replaced: Member = { ...structuredClone(update) };
    const subtree = update.members ?? children;
    if (subtree) replaced.members = subtree;
    return replaced;
  });

/**
 * Replaces each matching member (same type, cluster_id, service_name; same url for an
 * endpoint) by the given one, e.g. to change its priority. A member not in the federation
 * is FEDERATION_INVALID naming it. Omitted `members` keep the node's children.
 */
export const updateMembers = (
  spec: FederationSpec,
  written: readonly Member[],
  defaults?: MemberDefaults,
): FederationSpec => {
  const members = prepare(written, defaults);
  const request = named(members, false);
  const updates = new Map(Array.from(requestKeys(request), ([key, entry]) => [key, entry.member]));
  const found = new Set<string>();
  const replaced = replaceIn(spec.members, updates, found);
  requireKnown(request, found);
  return next(spec, replaced);
};

const pruneFrom = (list: readonly Member[], doomed: ReadonlySet<string>, found: Set<string>): Member[] =>
  list.flatMap((m) => {
    const children = m.members && pruneFrom(m.members, doomed, found);
    if (!doomed.has(memberKey(m))) return [children ? { ...m, members: children } : { ...m }];
    found.add(memberKey(m));
    // Only the named members leave: a removed tree node's children move up to its parent.
    return children ?? [];
  });

/**
 * Removes the named members (and any named in their nested `members`), wherever they are
 * in the tree. A member not in the federation is FEDERATION_INVALID naming it.
 */
export const removeMembers = (
  spec: FederationSpec,
  written: readonly Member[],
  defaults?: MemberDefaults,
): FederationSpec => {
  const members = prepare(written, defaults);
  const request = named(members, true);
  const doomed = new Set(requestKeys(request).keys());
  const found = new Set<string>();
  const pruned = pruneFrom(spec.members, doomed, found);
  requireKnown(request, found);
  return next(spec, pruned);
};

export interface NodeDiff {
  /** In `after` only: services to create. */
  added: NodeRef[];
  /** In `before` only: nodes that lose their replica links (and, with delete, their service). */
  removed: NodeRef[];
  /** In both: services to update. */
  kept: NodeRef[];
}

/** Which deployed nodes a change adds, removes and keeps (each list in its source's order). */
export const diffNodes = (before: readonly NodeRef[], after: readonly NodeRef[]): NodeDiff => {
  const was = new Set(before.map(nodeKey));
  const is = new Set(after.map(nodeKey));
  return {
    added: after.filter((n) => !was.has(nodeKey(n))),
    removed: before.filter((n) => !is.has(nodeKey(n))),
    kept: after.filter((n) => was.has(nodeKey(n))),
  };
};
