// Member operations behind /system/federation/{service}: add, update, remove (each a new
// spec with revision + 1) and the node diff that drives creates, updates and deletes.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FlotillaError } from '../../src/core/errors.ts';
import type { Service } from '../../src/core/fdl/service.ts';
import { expand } from '../../src/core/federation/expand.ts';
import { addMembers, diffNodes, removeMembers, updateMembers } from '../../src/core/federation/members.ts';
import type { FederationSpec, Member, NodeRef, Topology } from '../../src/core/federation/model.ts';
import {
  deployedMembers,
  normalizeMembers,
  parseFederation,
  withFederation,
} from '../../src/core/federation/validate.ts';

const oscar = (cluster_id: string, service_name: string, extra: Partial<Member> = {}): Member => ({
  type: 'oscar',
  cluster_id,
  service_name,
  priority: 0,
  ...extra,
});
const endpoint = (url: string, priority = 0): Member => ({ type: 'endpoint', url, priority });

const spec = (members: Member[], topology: Topology = 'star'): FederationSpec => ({
  group_id: 'grayify',
  topology,
  delegation: 'static',
  rescheduler_threshold: 10,
  deployment: 'atomic',
  members,
  revision: 3,
});

const TREE = spec(
  [oscar('b', 'b1'), oscar('c', 'c1', { members: [oscar('d', 'd1', { members: [oscar('b', 'b2')] })] })],
  'tree',
);

/** The FlotillaError `run` throws. */
const refusal = (run: () => unknown): FlotillaError => {
  try {
    run();
  } catch (e) {
    expect(e).toBeInstanceOf(FlotillaError);
    return e as FlotillaError;
  }
  throw new Error('the operation was accepted');
};

describe('addMembers', () => {
  it('appends under the coordinator, bumps the revision and leaves the input alone', () => {
    const before = structuredClone(TREE);
    const after = addMembers(TREE, [oscar('d', 'd2'), endpoint('https://e.example.org')]);
    expect(TREE).toEqual(before);
    expect(after.revision).toBe(4);
    expect(after.members.slice(2)).toEqual([oscar('d', 'd2'), endpoint('https://e.example.org')]);
    expect(after.members.slice(0, 2)).toEqual(TREE.members);
  });

  it('refuses a member already in the federation, at any depth, as a CONFLICT naming it', () => {
    const err = refusal(() => addMembers(TREE, [oscar('c', 'new'), oscar('b', 'b2', { priority: 4 })]));
    expect(err.code).toBe('CONFLICT');
    expect(err.message).toBe('members[1] (cluster b/b2): already a member of this federation');
  });

  it('refuses a member named twice in the request, nested ones included', () => {
    const err = refusal(() =>
      addMembers(TREE, [oscar('d', 'x', { members: [oscar('d', 'y')] }), oscar('d', 'y')]),
    );
    expect(err.code).toBe('FEDERATION_INVALID');
    expect(err.message).toBe(
      'members[1] (cluster d/y): listed twice in the request (also members[0].members[0])',
    );
  });
});

describe('updateMembers', () => {
  it('replaces a matching member (e.g. its priority) wherever it is, keeping its children', () => {
    const after = updateMembers(TREE, [oscar('d', 'd1', { priority: 7 })]);
    expect(after.revision).toBe(4);
    const d1 = after.members[1].members![0];
    expect(d1).toEqual(oscar('d', 'd1', { priority: 7, members: [oscar('b', 'b2')] }));
    expect(TREE.members[1].members![0].priority).toBe(0);
  });

  it('replaces the subtree when the update carries members', () => {
    const after = updateMembers(TREE, [oscar('c', 'c1', { members: [oscar('d', 'd9')] })]);
    expect(after.members[1]).toEqual(oscar('c', 'c1', { members: [oscar('d', 'd9')] }));
  });

  it('matches endpoints by url', () => {
    const s = spec([oscar('b', 'b1'), endpoint('https://e.example.org', 1)]);
    expect(updateMembers(s, [endpoint('https://e.example.org', 9)]).members[1]).toEqual(
      endpoint('https://e.example.org', 9),
    );
  });

  it('refuses an unknown member, naming it', () => {
    const err = refusal(() => updateMembers(TREE, [oscar('b', 'b1'), oscar('c', 'nope', { priority: 1 })]));
    expect(err.code).toBe('FEDERATION_INVALID');
    expect(err.message).toBe('members[1] (cluster c/nope): not a member of this federation');
  });

  it('refuses the same member twice in one request', () => {
    const err = refusal(() => updateMembers(TREE, [oscar('b', 'b1'), oscar('b', 'b1', { priority: 2 })]));
    expect(err.message).toBe('members[1] (cluster b/b1): listed twice in the request (also members[0])');
  });
});

describe('removeMembers', () => {
  it('removes a member and bumps the revision', () => {
    const after = removeMembers(TREE, [oscar('b', 'b1')]);
    expect(after.revision).toBe(4);
    expect(after.members.map((m) => m.service_name)).toEqual(['c1']);
  });

  it("moves a removed tree node's children up to its parent (only named members leave)", () => {
    const after = removeMembers(TREE, [oscar('d', 'd1')]);
    expect(after.members[1]).toEqual(oscar('c', 'c1', { members: [oscar('b', 'b2')] }));
    expect(deployedMembers(after).map((n) => n.service_name)).toEqual(['b1', 'c1', 'b2']);
  });

  it('removes nested members named in the request as well', () => {
    const after = removeMembers(TREE, [oscar('c', 'c1', { members: [oscar('d', 'd1')] })]);
    expect(after.members).toEqual([oscar('b', 'b1'), oscar('b', 'b2')]);
  });

  it('refuses an unknown member, naming it', () => {
    const err = refusal(() => removeMembers(TREE, [endpoint('https://nowhere.example.org')]));
    expect(err.code).toBe('FEDERATION_INVALID');
    expect(err.message).toBe(
      'members[0] (endpoint https://nowhere.example.org): not a member of this federation',
    );
  });
});

describe('request members as written (OSCAR omits type, priority, service_name)', () => {
  const defaults = { clusterId: 'a', serviceName: 'grayify', topology: 'tree' as const };
  const raw = (m: Record<string, unknown>) => m as unknown as Member;

  it('with defaults, a member written without service_name matches the defaulted one', () => {
    const s = spec([oscar('b', 'grayify', { priority: 2 })], 'tree');
    expect(updateMembers(s, [raw({ cluster_id: 'b', priority: 5 })], defaults).members).toEqual([
      oscar('b', 'grayify', { priority: 5 }),
    ]);
    expect(removeMembers(s, [raw({ cluster_id: 'b' })], defaults).members).toEqual([]);
    expect(refusal(() => addMembers(s, [raw({ cluster_id: 'b' })], defaults)).code).toBe('CONFLICT');
  });

  it('with defaults, a malformed request member is refused naming it', () => {
    const err = refusal(() => addMembers(TREE, [raw({ type: 'endpoint', url: 'ftp://x' })], defaults));
    expect(err.message).toBe('members[0] (endpoint ftp://x): an endpoint member needs an http(s) url');
  });
});

describe('diffNodes', () => {
  const n = (cluster_id: string, service_name: string): NodeRef => ({ cluster_id, service_name });

  it('splits nodes into added, removed and kept', () => {
    expect(diffNodes([n('b', 'x'), n('c', 'y')], [n('c', 'y'), n('d', 'z')])).toEqual({
      added: [n('d', 'z')],
      removed: [n('b', 'x')],
      kept: [n('c', 'y')],
    });
  });

  it('is a partition of before ∪ after (property)', () => {
    const node = fc.record({
      cluster_id: fc.constantFrom('b', 'c', 'd'),
      service_name: fc.constantFrom('x', 'y', 'z'),
    });
    const key = (x: NodeRef) => `${x.cluster_id}/${x.service_name}`;
    const nodes = fc.uniqueArray(node, { selector: key, maxLength: 9 });
    fc.assert(
      fc.property(nodes, nodes, (before, after) => {
        const { added, removed, kept } = diffNodes(before, after);
        expect([...added, ...kept].map(key).sort()).toEqual(after.map(key).sort());
        expect([...removed, ...kept].map(key).sort()).toEqual(before.map(key).sort());
        const beforeKeys = new Set(before.map(key));
        for (const a of added) expect(beforeKeys.has(key(a))).toBe(false);
      }),
      { numRuns: 200 },
    );
  });
});

describe('a /system/federation change end to end (pure part)', () => {
  const coordinator = {
    name: 'grayify',
    script: 'echo hi',
    cpu: '0.2',
    memory: '256Mi',
    log_level: 'INFO',
    visibility: 'private',
    token: 't',
    owner: 'alice',
    environment: { variables: {}, secrets: {} },
    clusters: { b: { endpoint: 'https://b.example.org' }, c: { endpoint: 'https://c.example.org' } },
    federation: {
      topology: 'mesh',
      members: [{ type: 'oscar', cluster_id: 'b', service_name: 'grayify-b' }],
    },
  } as Service;
  const ctx = { clusterId: 'a', knownClusters: new Set(['b', 'c']) };

  it('normalizes the request, adds, re-validates, expands and diffs', () => {
    const before = parseFederation(coordinator, ctx)!;
    const request = normalizeMembers([{ cluster_id: 'c' }], {
      clusterId: 'a',
      serviceName: 'grayify',
      topology: before.topology,
    });
    const next = parseFederation(withFederation(coordinator, addMembers(before, request)), ctx)!;
    expect(next.revision).toBe(1);
    const plan = expand(withFederation(coordinator, next), next, {
      clusterId: 'a',
      publicUrl: 'http://127.0.0.1:8080',
      newToken: () => 'x',
    });
    expect(plan.workers.map((w) => w.definition.federation?.revision)).toEqual([1, 1]);
    expect(diffNodes(deployedMembers(before), deployedMembers(next))).toEqual({
      added: [{ cluster_id: 'c', service_name: 'grayify' }],
      removed: [],
      kept: [{ cluster_id: 'b', service_name: 'grayify-b' }],
    });
  });

  it('re-validation refuses an added member on an unknown cluster', () => {
    const before = parseFederation(coordinator, ctx)!;
    const next = addMembers(before, [oscar('zz', 'grayify')]);
    const err = refusal(() => parseFederation(withFederation(coordinator, next), ctx));
    expect(err.message).toMatch(/^federation\.members\[1\] \(cluster zz\/grayify\): unknown cluster_id "zz"/);
  });
});
