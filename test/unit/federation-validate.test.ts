// The federation block's validation (DESIGN §4): defaults, and one example per refusal,
// each asserting that the message names the member (or field) at fault.
import { describe, expect, it } from 'vitest';
import { FlotillaError } from '../../src/core/errors.ts';
import { applyDefaults, parseServiceInput, type Service } from '../../src/core/fdl/service.ts';
import type { Member } from '../../src/core/federation/model.ts';
import {
  deployedMembers,
  type FederationContext,
  knownClustersOf,
  normalizeMembers,
  parseFederation,
} from '../../src/core/federation/validate.ts';

const CTX: FederationContext = { clusterId: 'a', knownClusters: new Set(['a', 'b', 'c', 'd']) };

const service = (federation: unknown, extra: Record<string, unknown> = {}): Service =>
  applyDefaults(
    parseServiceInput({
      name: 'grayify',
      image: 'alpine',
      script: 'echo hi',
      clusters: {
        b: { endpoint: 'https://b.example.org', auth_user: 'oscar', auth_password: 'pw-b' },
        c: { endpoint: 'https://c.example.org' },
      },
      ...extra,
      ...(federation === undefined ? {} : { federation }),
    }),
    { token: 'tok', owner: 'alice' },
  );

/** Bypasses the zod schema, as a caller holding a stored (or hand-built) service would. */
const raw = (federation: unknown): Service => ({ ...service(undefined), federation }) as Service;

/** The FlotillaError parseFederation throws for `svc`. */
const refusal = (svc: Service, ctx: FederationContext = CTX): FlotillaError => {
  try {
    parseFederation(svc, ctx);
  } catch (e) {
    expect(e).toBeInstanceOf(FlotillaError);
    const err = e as FlotillaError;
    expect(err.code).toBe('FEDERATION_INVALID');
    expect(err.status).toBe(400);
    return err;
  }
  throw new Error('parseFederation accepted the block');
};

const chain = (depth: number): Member[] => {
  let members: Member[] = [];
  for (let level = depth; level >= 1; level--) {
    members = [{ type: 'oscar', cluster_id: 'b', service_name: `n${level}`, members }];
  }
  return members;
};

describe('parseFederation: defaults', () => {
  it('returns undefined without a federation block', () => {
    expect(parseFederation(service(undefined), CTX)).toBeUndefined();
  });

  it('fills every default (star when members exist, type oscar, priority 0)', () => {
    const spec = parseFederation(service({ members: [{ cluster_id: 'b', service_name: 'grayify-b' }] }), CTX);
    expect(spec).toEqual({
      group_id: 'grayify',
      topology: 'star',
      delegation: 'static',
      rescheduler_threshold: 10,
      deployment: 'atomic',
      members: [{ type: 'oscar', cluster_id: 'b', service_name: 'grayify-b', priority: 0 }],
      revision: 0,
    });
  });

  it('is topology none without members, and keeps an existing revision and group', () => {
    const spec = parseFederation(service({ group_id: 'g1', revision: 7 }), CTX);
    expect(spec).toMatchObject({ topology: 'none', group_id: 'g1', revision: 7, members: [] });
  });

  it('keeps written values, accepting any letter case for the enumerations', () => {
    const spec = parseFederation(
      service({
        topology: 'Mesh',
        delegation: 'load-based',
        deployment: 'best-effort',
        rescheduler_threshold: 0,
        members: [{ type: 'endpoint', url: 'https://x.example.org/run/svc', priority: 5, ssl_verify: false }],
      }),
      CTX,
    );
    expect(spec).toMatchObject({
      topology: 'mesh',
      delegation: 'load-based',
      deployment: 'best-effort',
      rescheduler_threshold: 0,
      members: [{ type: 'endpoint', url: 'https://x.example.org/run/svc', priority: 5, ssl_verify: false }],
    });
  });

  it("defaults service_name to the coordinator's name on another cluster", () => {
    const spec = parseFederation(raw({ members: [{ cluster_id: 'b' }] }), CTX);
    expect(spec?.members[0]).toMatchObject({ type: 'oscar', cluster_id: 'b', service_name: 'grayify' });
  });

  it("allows a member on the coordinator's own cluster with another service name", () => {
    const spec = parseFederation(service({ members: [{ cluster_id: 'a', service_name: 'grayify-2' }] }), CTX);
    expect(deployedMembers(spec!)).toEqual([{ cluster_id: 'a', service_name: 'grayify-2' }]);
  });

  it('treats the coordinator cluster as known even when not listed', () => {
    const ctx = { clusterId: 'a', knownClusters: new Set<string>() };
    expect(
      parseFederation(service({ members: [{ cluster_id: 'a', service_name: 'other' }] }), ctx),
    ).toBeDefined();
  });

  it('keeps unknown member fields (round-trip)', () => {
    const spec = parseFederation(raw({ members: [{ cluster_id: 'b', service_name: 'x', note: 'hi' }] }), CTX);
    expect(spec?.members[0]).toMatchObject({ note: 'hi' });
  });

  it('accepts a tree exactly 8 levels deep', () => {
    const spec = parseFederation(service({ topology: 'tree', members: chain(8) }), CTX);
    expect(deployedMembers(spec!)).toHaveLength(8);
  });

  it('accepts topology none with members, but deploys nothing', () => {
    const spec = parseFederation(
      service({ topology: 'none', members: [{ cluster_id: 'b', service_name: 'x' }] }),
      CTX,
    );
    expect(spec?.members).toHaveLength(1);
    expect(deployedMembers(spec!)).toEqual([]);
  });
});

describe('parseFederation: refusals name the field or member', () => {
  it.each([
    [
      'topology',
      { topology: 'ring' },
      /federation\.topology: unknown topology "ring"; allowed: none, star, mesh, tree/,
    ],
    [
      'delegation',
      { delegation: 'fastest' },
      /federation\.delegation: .*"fastest"; allowed: static, random, load-based/,
    ],
    ['deployment', { deployment: 'yolo' }, /federation\.deployment: .*"yolo"; allowed: atomic, best-effort/],
  ])('unknown %s lists the allowed values', (_field, block, message) => {
    expect(refusal(raw(block)).message).toMatch(message);
  });

  it.each([-1, 1.5, '10'])('rescheduler_threshold %j is refused', (value) => {
    expect(refusal(raw({ rescheduler_threshold: value })).message).toMatch(
      /federation\.rescheduler_threshold: must be a non-negative integer \(seconds\)/,
    );
  });

  it('a federation block that is not an object, or members not a list', () => {
    expect(refusal(raw('star')).message).toMatch(/^federation: must be an object/);
    expect(refusal(raw({ members: { b: 1 } })).message).toMatch(/^federation\.members: must be a list/);
  });

  it('duplicate (type, cluster_id, service_name)', () => {
    const err = refusal(
      service({
        members: [
          { cluster_id: 'b', service_name: 'grayify-b' },
          { cluster_id: 'c', service_name: 'grayify-c' },
          { cluster_id: 'b', service_name: 'grayify-b', priority: 3 },
        ],
      }),
    );
    expect(err.message).toBe(
      'federation.members[2] (cluster b/grayify-b): duplicate member (already listed at federation.members[0])',
    );
  });

  it('the same node reached twice in a tree (how a cycle shows) is a duplicate', () => {
    const err = refusal(
      service({
        topology: 'tree',
        members: [
          {
            cluster_id: 'c',
            service_name: 'grayify-c',
            members: [{ cluster_id: 'd', service_name: 'grayify-d' }],
          },
          {
            cluster_id: 'd',
            service_name: 'grayify-d',
            members: [{ cluster_id: 'c', service_name: 'grayify-c' }],
          },
        ],
      }),
    );
    expect(err.message).toMatch(/^federation\.members\[1\] \(cluster d\/grayify-d\): duplicate member/);
  });

  it('duplicate endpoints (same url)', () => {
    const url = 'https://x.example.org/run/a';
    const err = refusal(
      service({
        members: [
          { type: 'endpoint', url },
          { type: 'endpoint', url },
        ],
      }),
    );
    expect(err.message).toMatch(
      /^federation\.members\[1\] \(endpoint https:\/\/x\.example\.org\/run\/a\): duplicate/,
    );
  });

  it('a member that is the coordinator itself', () => {
    const err = refusal(service({ members: [{ cluster_id: 'a', service_name: 'grayify' }] }));
    expect(err.message).toBe(
      'federation.members[0] (cluster a/grayify): a member cannot be the coordinator itself',
    );
  });

  it('nested members outside tree name the parent and the topology', () => {
    const err = refusal(
      service({
        topology: 'mesh',
        members: [
          { cluster_id: 'b', service_name: 'x' },
          { cluster_id: 'c', service_name: 'y', members: [{ cluster_id: 'd', service_name: 'z' }] },
        ],
      }),
    );
    expect(err.message).toBe(
      'federation.members[1] (cluster c/y): nested members are only allowed with topology tree (this is mesh)',
    );
  });

  it('nested members under the default star topology', () => {
    const err = refusal(
      service({
        members: [{ cluster_id: 'c', service_name: 'y', members: [{ cluster_id: 'd', service_name: 'z' }] }],
      }),
    );
    expect(err.message).toMatch(
      /federation\.members\[0\] \(cluster c\/y\): nested members .*\(this is star\)/,
    );
  });

  it('a tree deeper than 8 levels names the member at level 8', () => {
    const err = refusal(service({ topology: 'tree', members: chain(9) }));
    const path = `federation${'.members[0]'.repeat(8)}`;
    expect(err.message).toBe(
      `${path} (cluster b/n8): the tree is deeper than 8 levels (a cycle, or nest less)`,
    );
  });

  it('an endpoint with nested members', () => {
    const err = refusal(
      service({
        topology: 'tree',
        members: [
          {
            type: 'endpoint',
            url: 'https://e.example.org',
            members: [{ cluster_id: 'b', service_name: 'x' }],
          },
        ],
      }),
    );
    expect(err.message).toBe(
      'federation.members[0] (endpoint https://e.example.org): an endpoint member cannot have members',
    );
  });

  it('an oscar member without cluster_id', () => {
    const err = refusal(
      service({ members: [{ cluster_id: 'b', service_name: 'x' }, { service_name: 'lost' }] }),
    );
    expect(err.message).toBe('federation.members[1] (cluster ?/lost): cluster_id is required');
  });

  it("an oscar member on the coordinator's cluster without service_name", () => {
    const err = refusal(
      service({ topology: 'tree', members: [{ cluster_id: 'b', members: [{ cluster_id: 'a' }] }] }),
    );
    expect(err.message).toBe(
      "federation.members[0].members[0] (cluster a/?): service_name is required for a member on the coordinator's own cluster",
    );
  });

  it('a service_name that is not a DNS label', () => {
    const err = refusal(service({ members: [{ cluster_id: 'b', service_name: 'Bad_Name' }] }));
    expect(err.message).toMatch(
      /^federation\.members\[0\] \(cluster b\/Bad_Name\): service_name must be a DNS label/,
    );
  });

  it('an unknown cluster_id, at any depth', () => {
    const err = refusal(
      service({
        topology: 'tree',
        members: [{ cluster_id: 'b', service_name: 'x', members: [{ cluster_id: 'zz', service_name: 'y' }] }],
      }),
    );
    expect(err.message).toMatch(
      /^federation\.members\[0\]\.members\[0\] \(cluster zz\/y\): unknown cluster_id "zz"/,
    );
  });

  it.each([
    [{ type: 'endpoint' }, 'endpoint (no url)'],
    [{ type: 'endpoint', url: 'ftp://files.example.org' }, 'endpoint ftp://files.example.org'],
    [{ type: 'endpoint', url: 'not a url' }, 'endpoint not a url'],
  ])('an endpoint member without a valid http(s) url: %j', (member, label) => {
    const err = refusal(service({ members: [{ cluster_id: 'b', service_name: 'x' }, member] }));
    expect(err.message).toBe(`federation.members[1] (${label}): an endpoint member needs an http(s) url`);
  });

  it.each([-1, 1.5, '3'])('priority %j is refused', (priority) => {
    const err = refusal(raw({ members: [{ cluster_id: 'b', service_name: 'x', priority }] }));
    expect(err.message).toMatch(
      /^federation\.members\[0\] \(cluster b\/x\): priority: must be a non-negative integer/,
    );
  });

  it('an unknown member type', () => {
    const err = refusal(raw({ members: [{ type: 'lambda', cluster_id: 'b' }] }));
    expect(err.message).toBe(
      'federation.members[0] (cluster b/?): unknown member type "lambda"; allowed: oscar, endpoint',
    );
  });

  it('a member that is not an object', () => {
    expect(refusal(raw({ members: ['b'] })).message).toBe('federation.members[0]: must be an object');
  });

  it('bad ssl_verify and headers', () => {
    const base = { type: 'endpoint', url: 'https://e.example.org' };
    expect(refusal(raw({ members: [{ ...base, ssl_verify: 'no' }] })).message).toMatch(
      /\(endpoint https:\/\/e\.example\.org\): ssl_verify must be true or false/,
    );
    expect(refusal(raw({ members: [{ ...base, headers: { a: 1 } }] })).message).toMatch(
      /\(endpoint https:\/\/e\.example\.org\): headers must be a map of strings/,
    );
  });

  it('carries the field path in details', () => {
    const err = refusal(service({ members: [{ cluster_id: 'zz', service_name: 'y' }] }));
    expect(err.details).toEqual({ fields: ['federation.members[0]'] });
  });
});

describe('knownClustersOf, deployedMembers, normalizeMembers', () => {
  it("knownClustersOf is the keys of the service's clusters map", () => {
    expect(knownClustersOf(service(undefined))).toEqual(new Set(['b', 'c']));
    expect(knownClustersOf({ ...service(undefined), clusters: undefined })).toEqual(new Set());
  });

  it('deployedMembers lists oscar members at any depth in written order, without endpoints', () => {
    const spec = parseFederation(
      service({
        topology: 'tree',
        members: [
          { cluster_id: 'b', service_name: 'b1' },
          {
            cluster_id: 'c',
            service_name: 'c1',
            members: [
              { cluster_id: 'd', service_name: 'd1' },
              { type: 'endpoint', url: 'https://e.example.org' },
            ],
          },
          { cluster_id: 'b', service_name: 'b2' },
        ],
      }),
      CTX,
    );
    expect(deployedMembers(spec!)).toEqual([
      { cluster_id: 'b', service_name: 'b1' },
      { cluster_id: 'c', service_name: 'c1' },
      { cluster_id: 'd', service_name: 'd1' },
      { cluster_id: 'b', service_name: 'b2' },
    ]);
  });

  it('normalizeMembers names request members by the path it is given', () => {
    const defaults = { clusterId: 'a', serviceName: 'grayify', topology: 'star' as const };
    expect(normalizeMembers([{ cluster_id: 'b' }], defaults, 'members')).toEqual([
      { type: 'oscar', cluster_id: 'b', service_name: 'grayify', priority: 0 },
    ]);
    expect(() => normalizeMembers([{ type: 'endpoint' }], defaults, 'members')).toThrow(
      /^members\[0\] \(endpoint \(no url\)\)/,
    );
  });
});
