// Federation topologies end to end (SC-001), with five real managers: one create request
// on the coordinator yields a service on every member cluster with the right replica graph
// (mesh complete, star hub, tree parent-first-then-children); workers never expand; a
// coordinator's delete takes its workers along everywhere, and `?cascade=false` keeps them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError } from '../../client/api-client.ts';
import type { ClusterProcess, Harness } from '../support/cluster-harness.ts';
import {
  ADMIN_PASSWORD,
  type CreateReportView,
  clustersMap,
  createFederated,
  expectNowhere,
  federatedService,
  federationOf,
  type MemberSpec,
  member,
  memberShape,
  replicaKeys,
  requireService,
  serviceOn,
  startFederationClusters,
  waitFor,
} from '../support/federation.ts';

describe('federation topologies across five clusters', () => {
  let h: Harness;
  let a: ClusterProcess;
  let all: ClusterProcess[];
  let clusters: ReturnType<typeof clustersMap>;

  beforeAll(async () => {
    h = await startFederationClusters(['a', 'b', 'c', 'd', 'e']);
    all = h.clusters;
    a = h.get('a');
    clusters = clustersMap(all);
  }, 300_000);

  afterAll(async () => {
    await h?.close();
  });

  /** Creates `name` on a with the given topology and members; expects 201 and every member created. */
  const create = async (name: string, topology: string, members: MemberSpec[]): Promise<CreateReportView> => {
    const res = await createFederated(a, federatedService(name, { topology, members }, clusters));
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const report = res.body as CreateReportView;
    expect(report).toMatchObject({
      service: name,
      topology,
      deployment: 'atomic',
      revision: 1,
      outcome: 'created',
    });
    expect(report.members.every((m) => m.status === 'created')).toBe(true);
    return report;
  };

  /** Each node's service, read on its own cluster, with the expected delegation targets in order. */
  const expectGraph = async (coordinator: string, graph: Record<string, string[]>, members: MemberSpec[]) => {
    const coord = await requireService(a, coordinator);
    for (const [node, targets] of Object.entries(graph)) {
      const [clusterId, name] = node.split('/');
      const svc = await requireService(h.get(clusterId), name);
      expect(replicaKeys(svc), `replicas of ${node}`).toEqual(targets);
      expect(svc.cluster_id).toBe(clusterId);
      const view = await federationOf(h.get(clusterId), name);
      // SC-002: every node shows the same member list.
      expect(memberShape(view.members), `members seen on ${node}`).toEqual(memberShape(members));
      if (node === `a/${coordinator}`) {
        expect(view.role).toBe('coordinator');
        continue;
      }
      // A worker: the coordinator's definition, its own name and token, no members of its own.
      expect(view).toMatchObject({
        role: 'worker',
        revision: 1,
        coordinator: { cluster_id: 'a', service_name: coordinator },
      });
      expect(svc.annotations).toMatchObject({
        'oscar.grycap/origin-cluster': 'a',
        'oscar.grycap/origin-service': coordinator,
        'oscar.grycap/federation-worker': 'true',
      });
      expect(svc.federation.members).toEqual([]);
      expect(svc.federation.revision).toBe(1);
      expect(svc.script).toBe(coord.script);
      expect(svc.environment.variables).toEqual({ GREETING: 'hello' });
      expect(svc.token).toMatch(/^[0-9a-f]{64}$/);
      expect(svc.token).not.toBe(coord.token);
      // Workers never receive another cluster's password.
      for (const entry of Object.values(svc.clusters ?? {}) as Array<Record<string, unknown>>) {
        expect(entry).not.toHaveProperty('auth_password');
        expect(entry).not.toHaveProperty('auth_user');
      }
      expect(svc.clusters.a.endpoint).toBe(a.url);
      expect(JSON.stringify(svc)).not.toContain(`"${ADMIN_PASSWORD}"`);
    }
  };

  /** Service names on each cluster with a given prefix: proves nothing else was deployed. */
  const namesWith = async (prefix: string): Promise<Record<string, string[]>> => {
    const out: Record<string, string[]> = {};
    for (const c of all) {
      out[c.id] = (await c.client.listServices())
        .map((s) => s.name)
        .filter((n) => n.startsWith(prefix))
        .sort();
    }
    return out;
  };

  it('mesh of five: every node delegates to every other node', async () => {
    const members = ['b', 'c', 'd', 'e'].map((id) => member(id, `mesh-${id}`));
    await create('mesh-a', 'mesh', members);
    const nodes = ['a', 'b', 'c', 'd', 'e'].map((id) => `${id}/mesh-${id}`);
    const graph = Object.fromEntries(nodes.map((n) => [n, nodes.filter((o) => o !== n)]));
    await expectGraph('mesh-a', graph, members);
    expect(await namesWith('mesh-')).toEqual({
      a: ['mesh-a'],
      b: ['mesh-b'],
      c: ['mesh-c'],
      d: ['mesh-d'],
      e: ['mesh-e'],
    });
  });

  it('star of four: the hub delegates to every worker, each worker to the hub', async () => {
    const members = [
      member('b', 'star-b', { priority: 2 }),
      member('c', 'star-c', { priority: 1 }),
      member('d', 'star-d'),
    ];
    await create('star-a', 'star', members);
    await expectGraph(
      'star-a',
      {
        'a/star-a': ['b/star-b', 'c/star-c', 'd/star-d'],
        'b/star-b': ['a/star-a'],
        'c/star-c': ['a/star-a'],
        'd/star-d': ['a/star-a'],
      },
      members,
    );
    const hub = await requireService(a, 'star-a');
    expect((hub.replicas as Array<{ priority: number }>).map((r) => r.priority)).toEqual([2, 1, 0]);
    expect(await namesWith('star-')).toEqual({
      a: ['star-a'],
      b: ['star-b'],
      c: ['star-c'],
      d: ['star-d'],
      e: [],
    });
  });

  it('tree of depth 3 with a sibling: each node delegates to its parent first, then its children', async () => {
    // a → b → c → d, and a → e
    const members = [
      member('b', 'tree-b', { members: [member('c', 'tree-c', { members: [member('d', 'tree-d')] })] }),
      member('e', 'tree-e'),
    ];
    await create('tree-a', 'tree', members);
    await expectGraph(
      'tree-a',
      {
        'a/tree-a': ['b/tree-b', 'e/tree-e'],
        'b/tree-b': ['a/tree-a', 'c/tree-c'],
        'c/tree-c': ['b/tree-b', 'd/tree-d'],
        'd/tree-d': ['c/tree-c'],
        'e/tree-e': ['a/tree-a'],
      },
      members,
    );
    // The coordinator deployed every node itself: each cluster holds exactly its one node.
    expect(await namesWith('tree-')).toEqual({
      a: ['tree-a'],
      b: ['tree-b'],
      c: ['tree-c'],
      d: ['tree-d'],
      e: ['tree-e'],
    });
  });

  it('workers never expand: role worker, member changes refused with 409, no members of their own', async () => {
    const members = [member('b', 'wk-b'), member('c', 'wk-c')];
    await create('wk-a', 'star', members);
    const b = h.get('b');

    const view = await federationOf(b, 'wk-b');
    expect(view.role).toBe('worker');
    expect(view.coordinator).toEqual({ cluster_id: 'a', service_name: 'wk-a' });
    const aliasView = await federationOf(b, 'wk-b', true);
    expect(aliasView.role).toBe('worker');

    for (const [method, path, body] of [
      ['POST', '/system/federation/wk-b', { members: [member('d', 'wk-d')] }],
      ['PUT', '/system/federation/wk-b', { update: [member('c', 'wk-c', { priority: 3 })] }],
      ['DELETE', '/system/federation/wk-b', { members: [member('c', 'wk-c')] }],
      ['POST', '/system/replicas/wk-b', { replicas: [member('d', 'wk-d')] }],
    ] as const) {
      const err = await b.client.request(method, path, { body }).catch((e: unknown) => e);
      expect(err, `${method} ${path}`).toBeInstanceOf(ApiError);
      expect((err as ApiError).status, `${method} ${path}: ${(err as ApiError).message}`).toBe(409);
      expect((err as ApiError).message).toContain('wk-a');
    }

    // A worker's definition given members of its own is refused too (it would expand).
    const worker = await requireService(b, 'wk-b');
    const sneaky: Record<string, unknown> = {
      ...worker,
      federation: { ...worker.federation, members: [member('d', 'wk-d')] },
    };
    delete sneaky.token;
    // Not from its coordinator: a worker is changed only there.
    const direct = await b.client.updateService(sneaky).catch((e: unknown) => e);
    expect(direct).toBeInstanceOf(ApiError);
    expect((direct as ApiError).status).toBe(409);
    expect((direct as ApiError).message).toContain('wk-a');
    // With the coordinator's proof (its origin and the worker's token): still no members.
    const err = await b.client
      .request('PUT', '/system/services', {
        body: sneaky,
        headers: { 'x-flotilla-origin': 'a/wk-a', 'x-flotilla-worker-token': String(worker.token) },
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(400);

    expect(await serviceOn(h.get('d'), 'wk-d')).toBeUndefined();
    expect(await namesWith('wk-')).toEqual({ a: ['wk-a'], b: ['wk-b'], c: ['wk-c'], d: [], e: [] });
    // The refused changes left the topology as it was on every node.
    for (const [c, n] of [
      [a, 'wk-a'],
      [b, 'wk-b'],
      [h.get('c'), 'wk-c'],
    ] as const) {
      const v = await federationOf(c, n);
      expect(memberShape(v.members)).toEqual(memberShape(members));
      expect(v.revision).toBe(1);
    }
  });

  it('deleting the coordinator removes every worker on every cluster (tree, all depths)', async () => {
    const members = [
      member('b', 'del-b', { members: [member('c', 'del-c', { members: [member('d', 'del-d')] })] }),
      member('e', 'del-e'),
    ];
    await create('del-a', 'tree', members);
    const names = ['del-a', 'del-b', 'del-c', 'del-d', 'del-e'];
    await waitFor(async () => {
      for (const id of ['b', 'c', 'd', 'e']) await requireService(h.get(id), `del-${id}`);
    });

    const res = await a.client.send('DELETE', '/system/services/del-a');
    expect(res.status).toBe(204);
    await waitFor(() => expectNowhere(all, names), { what: 'every del-* service gone', timeoutMs: 20_000 });
    // And nothing comes back: the delete rows were applied once, not replayed.
    await new Promise((r) => setTimeout(r, 1000));
    await expectNowhere(all, names);
  });

  it('deleting the coordinator with ?cascade=false keeps every worker', async () => {
    const members = [member('b', 'keep-b'), member('c', 'keep-c'), member('d', 'keep-d')];
    await create('keep-a', 'mesh', members);

    const res = await a.client.send('DELETE', '/system/services/keep-a?cascade=false');
    expect(res.status).toBe(204);
    expect(await serviceOn(a, 'keep-a')).toBeUndefined();
    // Give a wrongly queued delete time to arrive (the outbox polls every 500 ms).
    await new Promise((r) => setTimeout(r, 2000));
    for (const id of ['b', 'c', 'd']) {
      const svc = await requireService(h.get(id), `keep-${id}`);
      expect(svc.annotations['oscar.grycap/federation-worker']).toBe('true');
      expect(replicaKeys(svc).length).toBe(3);
    }
    // The kept workers are ordinary services now: their own cluster can delete them.
    for (const id of ['b', 'c', 'd']) {
      expect((await h.get(id).client.send('DELETE', `/system/services/keep-${id}`)).status).toBe(204);
    }
    await expectNowhere(all, ['keep-a', 'keep-b', 'keep-c', 'keep-d']);
  });

  it('an endpoint member is a delegation target of every node and is deployed nowhere', async () => {
    const url = 'https://oscar.example.org';
    const members: MemberSpec[] = [
      member('b', 'ep-b'),
      { type: 'endpoint', url, priority: 7 },
      member('c', 'ep-c'),
    ];
    const report = await create('ep-a', 'mesh', members);
    expect(report.members.map((m) => `${m.cluster_id}/${m.service_name}`)).toEqual(['b/ep-b', 'c/ep-c']);
    await expectGraph(
      'ep-a',
      {
        'a/ep-a': ['b/ep-b', url, 'c/ep-c'],
        'b/ep-b': ['a/ep-a', url, 'c/ep-c'],
        'c/ep-c': ['a/ep-a', 'b/ep-b', url],
      },
      members,
    );
    expect(await namesWith('ep-')).toEqual({ a: ['ep-a'], b: ['ep-b'], c: ['ep-c'], d: [], e: [] });
  });

  it("an update of the coordinator's definition reaches every worker", async () => {
    const members = [member('b', 'up-b'), member('c', 'up-c', { members: [member('d', 'up-d')] })];
    await create('up-a', 'tree', members);
    // An OSCAR client's habit: GET the service, edit it, PUT it back (secrets come back masked).
    const coord = await requireService(a, 'up-a');
    expect(coord.clusters.b.auth_password).toBe('***');
    const edited = {
      ...coord,
      image: 'alpine',
      script: '#!/bin/sh\necho v2\n',
      environment: { variables: { GREETING: 'v2' } },
    };
    await a.client.updateService(edited);
    await waitFor(
      async () => {
        for (const id of ['a', 'b', 'c', 'd']) {
          const svc = await requireService(h.get(id), `up-${id}`);
          expect(svc.script, id).toContain('echo v2');
          expect(svc.environment.variables, id).toEqual({ GREETING: 'v2' });
          expect(svc.federation.revision, id).toBe(2);
        }
      },
      { what: 'v2 on every node' },
    );
    // The graph is unchanged, the passwords kept (masked PUT), and every member synced at 2.
    expect(replicaKeys(await requireService(h.get('d'), 'up-d'))).toEqual(['c/up-c']);
    const view = await federationOf(a, 'up-a');
    expect(view.revision).toBe(2);
    for (const m of [view.members[0], view.members[1], view.members[1].members?.[0]]) {
      expect((m as { sync?: unknown }).sync).toMatchObject({ state: 'synced', revision: 2 });
    }
    // The coordinator can still reach its members with the kept credentials.
    await a.client.deleteService('up-a');
    await waitFor(() => expectNowhere(all, ['up-a', 'up-b', 'up-c', 'up-d']));
  });

  it('a cascade delete reaches a member that was down, once it is back', async () => {
    const members = [member('b', 'cd-b'), member('e', 'cd-e')];
    await create('cd-a', 'star', members);
    const e = h.get('e');
    await e.kill();
    try {
      expect((await a.client.send('DELETE', '/system/services/cd-a')).status).toBe(204);
      await waitFor(() => expectNowhere([a, h.get('b')], ['cd-a', 'cd-b']));
    } finally {
      await e.start();
    }
    await waitFor(() => expectNowhere(all, ['cd-a', 'cd-b', 'cd-e']), {
      what: 'cd-e deleted after e restarted',
      timeoutMs: 30_000,
    });
  }, 120_000);
});
