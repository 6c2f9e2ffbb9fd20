// Expansion (DESIGN §4), property-based: random member trees for each topology, checked
// against a reference model of each topology written independently of the code.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Service } from '../../src/core/fdl/service.ts';
import { delegationGraph, expand } from '../../src/core/federation/expand.ts';
import {
  type ExpandContext,
  type ExpansionPlan,
  FEDERATION_WORKER,
  type FederationSpec,
  MAX_TREE_DEPTH,
  type Member,
  ORIGIN_CLUSTER,
  ORIGIN_SERVICE,
  REPLICAS_FIELD,
  type Replica,
  type Topology,
  type WorkerPlan,
} from '../../src/core/federation/model.ts';
import { knownClustersOf, parseFederation } from '../../src/core/federation/validate.ts';

const RUNS = 250;
const HOME = 'home';
const PUBLIC_URL = 'http://127.0.0.1:8080';
// "home" is the coordinator's own cluster: members there (other service names) are allowed.
const CLUSTERS = [HOME, 'b', 'c', 'd'] as const;

const coordinatorService = (federation: Record<string, unknown>, withHomeEntry: boolean): Service => ({
  name: 'grayify',
  script: 'echo hi',
  cpu: '0.5',
  memory: '256Mi',
  log_level: 'INFO',
  visibility: 'private',
  token: 'coordinator-token',
  owner: 'alice',
  annotations: { team: 'imaging' },
  environment: { variables: { MODE: 'gray' }, secrets: { refresh_token: 'rt-secret', api_key: 'k1' } },
  clusters: {
    b: { endpoint: 'https://b.example.org', auth_user: 'oscar', auth_password: 'pw-b', ssl_verify: true },
    c: { endpoint: 'https://c.example.org', auth_user: 'oscar', auth_password: 'pw-c' },
    d: { endpoint: 'https://d.example.org' },
    ...(withHomeEntry ? { [HOME]: { endpoint: 'https://home.example.org', auth_password: 'pw-home' } } : {}),
  },
  federation,
});

// --- random member trees -------------------------------------------------------------

interface NodeDraft {
  /** "prev" nests under the previous node (makes deep chains likely), else picks any earlier. */
  parent: 'prev' | number;
  cluster: (typeof CLUSTERS)[number];
  endpoint: boolean;
  priority: number;
  extras: boolean;
}

const draftArb: fc.Arbitrary<NodeDraft> = fc.record({
  parent: fc.oneof(fc.constant('prev' as const), fc.nat()),
  cluster: fc.constantFrom(...CLUSTERS),
  endpoint: fc.nat(3).map((n) => n === 0),
  priority: fc.nat(9),
  extras: fc.boolean(),
});

/** Parent index for draft i (-1 = the coordinator), keeping every member within MAX_TREE_DEPTH. */
const parentIndex = (d: NodeDraft, i: number, depth: number[]): number => {
  const wanted = d.parent === 'prev' ? i - 1 : (d.parent % (i + 1)) - 1;
  return wanted >= 0 && depth[wanted] < MAX_TREE_DEPTH ? wanted : -1;
};

/** Builds a member list (a tree when `nested`); names are unique, so members are too. */
const buildMembers = (drafts: NodeDraft[], nested: boolean): Member[] => {
  const depth: number[] = [];
  const parents = drafts.map((d, i) => {
    const p = nested ? parentIndex(d, i, depth) : -1;
    depth.push(p < 0 ? 1 : depth[p] + 1);
    return p;
  });
  const hasChildren = new Set(parents);
  const members: Member[] = drafts.map((d, i) => {
    if (d.endpoint && !hasChildren.has(i)) {
      const url = `https://ep-${i}.example.org/run/grayify`;
      return d.extras
        ? { type: 'endpoint', url, priority: d.priority, ssl_verify: false, headers: { 'X-Key': `k${i}` } }
        : { type: 'endpoint', url, priority: d.priority };
    }
    return { type: 'oscar', cluster_id: d.cluster, service_name: `svc-${i}`, priority: d.priority };
  });
  const roots: Member[] = [];
  for (const [i, p] of parents.entries()) {
    if (p < 0) roots.push(members[i]);
    else members[p].members = [...(members[p].members ?? []), members[i]];
  }
  return roots;
};

interface Case {
  service: Service;
  spec: FederationSpec;
}

const caseArb = (topology: Topology, nested: boolean): fc.Arbitrary<Case> =>
  fc
    .record({
      drafts: fc.array(draftArb, { minLength: 1, maxLength: 24, size: 'medium' }),
      revision: fc.nat(1000),
      withHomeEntry: fc.boolean(),
    })
    .map(({ drafts, revision, withHomeEntry }) => {
      const members = buildMembers(drafts, nested);
      const service = coordinatorService(
        { topology, members, revision, delegation: 'random' },
        withHomeEntry,
      );
      // The generated blocks are valid by construction: parseFederation must accept them.
      const spec = parseFederation(service, { clusterId: HOME, knownClusters: knownClustersOf(service) });
      return { service, spec: spec! };
    });

const context = (): ExpandContext & { issued: string[] } => {
  const issued: string[] = [];
  return {
    clusterId: HOME,
    publicUrl: PUBLIC_URL,
    issued,
    newToken: () => {
      const token = `token-${issued.length}`;
      issued.push(token);
      return token;
    },
  };
};

// --- a reference model of the member tree ----------------------------------------------

const HUB_KEY = `${HOME}/grayify`;
const keyOf = (m: Replica): string =>
  m.type === 'endpoint' ? `endpoint ${m.url}` : `${m.cluster_id}/${m.service_name}`;

interface Flat {
  member: Member;
  parentKey: string;
}

const flatten = (members: Member[], parentKey = HUB_KEY): Flat[] =>
  members.flatMap((member) => [{ member, parentKey }, ...flatten(member.members ?? [], keyOf(member))]);

const oscarOf = (members: Member[]) => flatten(members).filter((f) => f.member.type === 'oscar');

const replicasOf = (s: Service): Replica[] => s[REPLICAS_FIELD] as Replica[];

/** Each node's targets by key: the coordinator's and every worker's. */
const targetsByNode = (plan: ExpansionPlan): Map<string, string[]> =>
  new Map([
    [HUB_KEY, replicasOf(plan.coordinator).map(keyOf)],
    ...plan.workers.map(
      (w) => [`${w.cluster_id}/${w.service_name}`, replicasOf(w.definition).map(keyOf)] as const,
    ),
  ]);

const childrenKeys = (members: Member[]): string[] => members.map(keyOf);

// --- invariants every topology keeps -------------------------------------------------------

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** What is wrong with one worker's definition, as readable strings (cheaper than many expects). */
const workerProblems = ({ service, spec }: Case, w: WorkerPlan): string[] => {
  const def = w.definition;
  const f = (def.federation ?? {}) as Record<string, unknown>;
  const annotations = def.annotations ?? {};
  const home = service.clusters?.[HOME];
  const checks: Array<[string, boolean]> = [
    ['name and cluster_id are the member', def.name === w.service_name && def.cluster_id === w.cluster_id],
    ['no owner', !('owner' in def)],
    ['federation.members is empty', same(f.members, [])],
    ['federation.revision is the spec', f.revision === spec.revision],
    [
      'federation settings are the group',
      f.group_id === spec.group_id && f.topology === spec.topology && f.delegation === spec.delegation,
    ],
    ['federation.coordinator', same(f.coordinator, { cluster_id: HOME, service_name: 'grayify' })],
    ['federation.view is the full member list', same(f.view, spec.members)],
    ['annotations kept', annotations.team === 'imaging'],
    [
      'origin annotations',
      annotations[ORIGIN_CLUSTER] === HOME &&
        annotations[ORIGIN_SERVICE] === 'grayify' &&
        annotations[FEDERATION_WORKER] === 'true',
    ],
    [
      'no auth_user/auth_password in clusters',
      Object.values(def.clusters ?? {}).every((e) => !('auth_user' in e) && !('auth_password' in e)),
    ],
    [
      "the coordinator's own clusters entry",
      same(def.clusters?.[HOME], home ? { endpoint: home.endpoint } : { endpoint: PUBLIC_URL }),
    ],
    ['refresh_token dropped, other secrets kept', same(def.environment.secrets, { api_key: 'k1' })],
    ['variables kept', same(def.environment.variables, { MODE: 'gray' })],
  ];
  return checks.filter(([, ok]) => !ok).map(([what]) => `${w.cluster_id}/${w.service_name}: ${what}`);
};

const checkCommon = (c: Case, plan: ExpansionPlan, issued: string[]): void => {
  const { spec } = c;
  // Only oscar members are deployed, once each, in written order; endpoints never.
  expect(plan.workers.map((w) => `${w.cluster_id}/${w.service_name}`)).toEqual(
    oscarOf(spec.members).map((f) => keyOf(f.member)),
  );
  const selfOrRepeat = [...targetsByNode(plan)].filter(
    ([node, targets]) => targets.includes(node) || new Set(targets).size !== targets.length,
  );
  expect(selfOrRepeat).toEqual([]);
  // Every worker's own, distinct token from newToken; none is the coordinator's.
  expect(plan.workers.map((w) => w.definition.token)).toEqual(issued);
  expect(new Set(issued).size).toBe(issued.length);
  expect(plan.workers.flatMap((w) => workerProblems(c, w))).toEqual([]);

  expect(plan.coordinator.token).toBe('coordinator-token');
  expect(plan.coordinator.environment.secrets.refresh_token).toBe('rt-secret');
  expect(plan.coordinator.federation).toMatchObject({ ...spec });
};

/** Runs expand on a case and checks the common invariants, the input left untouched. */
const expandChecked = (c: Case): ExpansionPlan => {
  const before = structuredClone(c.service);
  const ctx = context();
  const plan = expand(c.service, c.spec, ctx);
  expect(c.service).toEqual(before);
  checkCommon(c, plan, ctx.issued);
  return plan;
};

describe('expand: properties per topology', () => {
  it('star: the coordinator targets every member; each worker targets the coordinator only', () => {
    fc.assert(
      fc.property(caseArb('star', false), (c) => {
        const plan = expandChecked(c);
        const targets = targetsByNode(plan);
        expect(targets.get(HUB_KEY)).toEqual(childrenKeys(c.spec.members));
        for (const w of plan.workers)
          expect(targets.get(`${w.cluster_id}/${w.service_name}`)).toEqual([HUB_KEY]);
      }),
      { numRuns: RUNS },
    );
  });

  it('mesh: every node targets every other deployed node and every endpoint', () => {
    fc.assert(
      fc.property(caseArb('mesh', false), (c) => {
        const plan = expandChecked(c);
        const everyone = [HUB_KEY, ...flatten(c.spec.members).map((f) => keyOf(f.member))];
        for (const [node, targets] of targetsByNode(plan)) {
          expect(targets.slice().sort()).toEqual(everyone.filter((k) => k !== node).sort());
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('tree: each node targets its parent first, then its children, at any depth ≤ 8', () => {
    fc.assert(
      fc.property(caseArb('tree', true), (c) => {
        const plan = expandChecked(c);
        const targets = targetsByNode(plan);
        expect(targets.get(HUB_KEY)).toEqual(childrenKeys(c.spec.members));
        for (const { member, parentKey } of oscarOf(c.spec.members)) {
          expect(targets.get(keyOf(member))).toEqual([parentKey, ...childrenKeys(member.members ?? [])]);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('none: nothing is deployed and nothing is delegated', () => {
    fc.assert(
      fc.property(caseArb('none', false), (c) => {
        const ctx = context();
        const plan = expand(c.service, c.spec, ctx);
        expect(plan.workers).toEqual([]);
        expect(replicasOf(plan.coordinator)).toEqual([]);
        expect(ctx.issued).toEqual([]);
        expect(delegationGraph(c.spec, { cluster_id: HOME, service_name: 'grayify' }).size).toBe(0);
      }),
      { numRuns: RUNS },
    );
  });

  it('replicas carry OSCAR Replica fields and the member priority', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<Topology>('star', 'mesh', 'tree').chain((t) => caseArb(t, t === 'tree')),
        (c) => {
          const byKey = new Map(flatten(c.spec.members).map((f) => [keyOf(f.member), f.member]));
          const plan = expand(c.service, c.spec, context());
          for (const s of [plan.coordinator, ...plan.workers.map((w) => w.definition)]) {
            for (const r of replicasOf(s)) {
              const m = byKey.get(keyOf(r));
              if (r.type === 'oscar') {
                expect(Object.keys(r).sort()).toEqual(['cluster_id', 'priority', 'service_name', 'type']);
                expect(r.priority).toBe(m ? m.priority : 0);
              } else {
                const { members: _m, ...fields } = m!;
                expect(r).toEqual(fields);
              }
            }
          }
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe('expand: examples', () => {
  const ctx = (): ExpandContext => context();
  const specOf = (svc: Service) =>
    parseFederation(svc, { clusterId: HOME, knownClusters: knownClustersOf(svc) })!;

  it('leaves a service without members alone apart from an empty replicas list', () => {
    const svc = coordinatorService({ group_id: 'g' }, false);
    const plan = expand(svc, specOf(svc), ctx());
    expect(plan.workers).toEqual([]);
    expect(plan.coordinator).toMatchObject({ ...svc, [REPLICAS_FIELD]: [] });
  });

  it('DESIGN §4 example as a tree: parents first, endpoints as leaf targets', () => {
    const svc = coordinatorService(
      {
        topology: 'tree',
        members: [
          { type: 'oscar', cluster_id: 'b', service_name: 'grayify-b', priority: 0 },
          {
            type: 'oscar',
            cluster_id: 'c',
            service_name: 'grayify-c',
            members: [{ type: 'oscar', cluster_id: 'd', service_name: 'grayify-d' }],
          },
          { type: 'endpoint', url: 'https://ext.example.org/run/grayify', priority: 5 },
        ],
      },
      false,
    );
    const plan = expand(svc, specOf(svc), ctx());
    expect(replicasOf(plan.coordinator)).toEqual([
      { type: 'oscar', cluster_id: 'b', service_name: 'grayify-b', priority: 0 },
      { type: 'oscar', cluster_id: 'c', service_name: 'grayify-c', priority: 0 },
      { type: 'endpoint', url: 'https://ext.example.org/run/grayify', priority: 5 },
    ]);
    const d = plan.workers.find((w) => w.cluster_id === 'd')!;
    expect(replicasOf(d.definition)).toEqual([
      { type: 'oscar', cluster_id: 'c', service_name: 'grayify-c', priority: 0 },
    ]);
    const c = plan.workers.find((w) => w.cluster_id === 'c')!;
    expect(replicasOf(c.definition).map(keyOf)).toEqual([HUB_KEY, 'd/grayify-d']);
    expect(plan.workers.map((w) => w.cluster_id)).toEqual(['b', 'c', 'd']);
  });

  it('a chain 8 levels deep links every level to the one above and below', () => {
    let members: Member[] = [];
    for (let level = 8; level >= 1; level--) {
      members = [{ type: 'oscar', cluster_id: 'b', service_name: `n${level}`, members }];
    }
    const svc = coordinatorService({ topology: 'tree', members }, false);
    const plan = expand(svc, specOf(svc), ctx());
    const targets = targetsByNode(plan);
    expect(targets.get('b/n1')).toEqual([HUB_KEY, 'b/n2']);
    expect(targets.get('b/n5')).toEqual(['b/n4', 'b/n6']);
    expect(targets.get('b/n8')).toEqual(['b/n7']);
  });

  it('workers do not share objects with each other or with the coordinator', () => {
    const svc = coordinatorService(
      {
        topology: 'mesh',
        members: [
          { cluster_id: 'b', service_name: 'x' },
          { cluster_id: 'c', service_name: 'y' },
        ],
      },
      false,
    );
    const plan = expand(svc, specOf(svc), ctx());
    const [x, y] = plan.workers.map((w) => w.definition);
    (x.federation!.view as Member[]).push({ type: 'oscar' });
    x.environment.variables.MODE = 'changed';
    expect(y.federation?.view).toHaveLength(2);
    expect(y.environment.variables.MODE).toBe('gray');
    expect(svc.environment.variables.MODE).toBe('gray');
  });
});
