// Topology-wide member management end to end (SC-002): add, update and remove members
// through /system/federation and its alias /system/replicas, then read the topology on
// EVERY node; removed members keep their service (unlinked) or lose it with delete: true;
// duplicates are refused; and a member that is down during 20 changes converges to the
// latest graph and revision once it is back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError } from '../../client/api-client.ts';
import type { ClusterProcess, Harness } from '../support/cluster-harness.ts';
import {
  changeMembers,
  clustersMap,
  createFederated,
  federatedService,
  federationOf,
  type MemberSpec,
  member,
  memberShape,
  type ReplicaView,
  replicaKeys,
  requireService,
  serviceOn,
  startFederationClusters,
  syncStates,
  waitFor,
} from '../support/federation.ts';

describe('federation members across the topology', () => {
  let h: Harness;
  let a: ClusterProcess;

  beforeAll(async () => {
    h = await startFederationClusters(['a', 'b', 'c', 'd', 'e']);
    a = h.get('a');
  }, 300_000);

  afterAll(async () => {
    await h?.close();
  });

  const create = async (name: string, topology: string, members: MemberSpec[]) => {
    const res = await createFederated(
      a,
      federatedService(name, { topology, members }, clustersMap(h.clusters)),
    );
    expect(res.status, JSON.stringify(res.body)).toBe(201);
  };

  /** Delegation targets with their priorities, as "cluster/service:priority". */
  const targets = (svc: Record<string, any>): string[] =>
    ((svc.replicas ?? []) as ReplicaView[]).map(
      (r) => `${r.cluster_id}/${r.service_name}:${r.priority ?? 0}`,
    );

  /** The graph a star or mesh should have: node "cluster/service" → its targets. */
  const expectedGraph = (
    topology: 'star' | 'mesh',
    coordinator: string,
    members: MemberSpec[],
  ): Record<string, string[]> => {
    const hub = `a/${coordinator}:0`;
    const ms = members.map((m) => `${m.cluster_id}/${m.service_name}:${m.priority ?? 0}`);
    const node = (t: string) => t.slice(0, t.lastIndexOf(':'));
    const graph: Record<string, string[]> = { [node(hub)]: ms };
    for (const m of ms) {
      graph[node(m)] = topology === 'star' ? [hub] : [hub, ...ms].filter((t) => node(t) !== node(m));
    }
    return graph;
  };

  /**
   * On every node of the federation: its own service has the expected targets, and its
   * GET /system/federation (and /system/replicas) shows the same members and revision.
   */
  const expectEverywhere = async (
    coordinator: string,
    topology: 'star' | 'mesh',
    members: MemberSpec[],
    revision: number,
  ) => {
    const graph = expectedGraph(topology, coordinator, members);
    for (const [node, want] of Object.entries(graph)) {
      const [clusterId, name] = node.split('/');
      const c = h.get(clusterId);
      expect(targets(await requireService(c, name)), `replicas of ${node}`).toEqual(want);
      for (const alias of [false, true]) {
        const view = await federationOf(c, name, alias);
        expect(memberShape(view.members), `members on ${node}${alias ? ' (replicas)' : ''}`).toEqual(
          memberShape(members),
        );
        expect(view.topology).toBe(topology);
        expect(view.revision, `revision on ${node}`).toBe(revision);
        expect(view.role).toBe(clusterId === 'a' ? 'coordinator' : 'worker');
        if (alias) expect(memberShape(view.replicas as MemberSpec[])).toEqual(memberShape(members));
      }
    }
    // The coordinator shows every member synced at this revision.
    const sync = syncStates(await federationOf(a, coordinator));
    for (const m of members) {
      expect(sync.get(`${m.cluster_id}/${m.service_name}`), `sync of ${m.cluster_id}`).toMatchObject({
        state: 'synced',
        revision,
        last_error: null,
      });
    }
  };

  /** A removed member left in place: no links, no worker mark, no federation of its own. */
  const expectDetached = async (c: ClusterProcess, name: string) => {
    const svc = await requireService(c, name);
    expect(svc.replicas ?? []).toEqual([]);
    expect(svc.annotations?.['oscar.grycap/federation-worker']).toBeUndefined();
    const view = await federationOf(c, name);
    // OSCAR answers a service without members with `members: null`.
    expect(view.members).toBeNull();
    expect(view).toMatchObject({ topology: 'none', role: 'none' });
  };

  for (const alias of [false, true]) {
    const route = alias ? '/system/replicas' : '/system/federation';
    const p = alias ? 'mr' : 'mf';
    it(`add, update and remove members through ${route}; every node reads the same (SC-002)`, async () => {
      const bm = member('b', `${p}-b`);
      const cm = member('c', `${p}-c`);
      const dm = member('d', `${p}-d`);
      const em = member('e', `${p}-e`);
      const coord = `${p}-a`;
      await create(coord, 'star', [bm, cm]);
      await expectEverywhere(coord, 'star', [bm, cm], 1);

      // Add d and e: both are created and every node learns of them.
      const added = await changeMembers(a, 'POST', coord, { members: [dm, em] }, alias);
      expect(memberShape(added.members)).toEqual(memberShape([bm, cm, dm, em]));
      await waitFor(() => expectEverywhere(coord, 'star', [bm, cm, dm, em], 2), { what: 'add everywhere' });
      expect((await requireService(h.get('d'), `${p}-d`)).annotations['oscar.grycap/origin-service']).toBe(
        coord,
      );

      // Update c's priority: the hub's targets and every view show it.
      const c5 = { ...cm, priority: 5 };
      const body = alias ? { members: [c5] } : { update: [c5] };
      await changeMembers(a, 'PUT', coord, body, alias);
      await waitFor(() => expectEverywhere(coord, 'star', [bm, c5, dm, em], 3), {
        what: 'update everywhere',
      });

      // Remove b with delete: true: its service is gone.
      await changeMembers(a, 'DELETE', coord, { members: [bm], delete: true }, alias);
      await waitFor(() => expectEverywhere(coord, 'star', [c5, dm, em], 4), { what: 'remove b everywhere' });
      await waitFor(async () => expect(await serviceOn(h.get('b'), `${p}-b`)).toBeUndefined(), {
        what: 'b deleted',
      });

      // Remove d without delete: its service stays, unlinked and no longer a worker.
      await changeMembers(a, 'DELETE', coord, { members: [dm] }, alias);
      await waitFor(() => expectEverywhere(coord, 'star', [c5, em], 5), { what: 'remove d everywhere' });
      await waitFor(() => expectDetached(h.get('d'), `${p}-d`), { what: 'd detached' });

      // Deleting the coordinator takes the remaining workers, not the detached one.
      await a.client.deleteService(coord);
      await waitFor(async () => {
        for (const id of ['a', 'c', 'e']) expect(await serviceOn(h.get(id), `${p}-${id}`)).toBeUndefined();
      });
      await expectDetached(h.get('d'), `${p}-d`);
      await h.get('d').client.deleteService(`${p}-d`);
    }, 120_000);
  }

  it('tree: removing a middle node moves its children up; an update attaches a new child; all nodes agree', async () => {
    // a → b → c, a → d
    const cm = member('c', 'tm-c');
    const bm = member('b', 'tm-b', { members: [cm] });
    const dm = member('d', 'tm-d');
    await create('tm-a', 'tree', [bm, dm]);
    const graphOn = async (want: Record<string, string[]>, members: MemberSpec[], revision: number) => {
      for (const [node, targets] of Object.entries(want)) {
        const [id, name] = node.split('/');
        const svc = await requireService(h.get(id), name);
        expect(replicaKeys(svc), node).toEqual(targets);
        const view = await federationOf(h.get(id), name);
        expect(memberShape(view.members), node).toEqual(memberShape(members));
        expect(view.revision, node).toBe(revision);
      }
    };
    await graphOn(
      {
        'a/tm-a': ['b/tm-b', 'd/tm-d'],
        'b/tm-b': ['a/tm-a', 'c/tm-c'],
        'c/tm-c': ['b/tm-b'],
        'd/tm-d': ['a/tm-a'],
      },
      [bm, dm],
      1,
    );

    // Remove b (and its service): c takes b's place under the coordinator.
    await changeMembers(a, 'DELETE', 'tm-a', { members: [member('b', 'tm-b')], delete: true });
    await waitFor(() =>
      graphOn({ 'a/tm-a': ['c/tm-c', 'd/tm-d'], 'c/tm-c': ['a/tm-a'], 'd/tm-d': ['a/tm-a'] }, [cm, dm], 2),
    );
    expect(await serviceOn(h.get('b'), 'tm-b')).toBeUndefined();

    // Update d with a child e: e is created under d.
    const em = member('e', 'tm-e');
    const d2 = { ...dm, priority: 1, members: [em] };
    await changeMembers(a, 'PUT', 'tm-a', { update: [d2] });
    await waitFor(() =>
      graphOn(
        {
          'a/tm-a': ['c/tm-c', 'd/tm-d'],
          'c/tm-c': ['a/tm-a'],
          'd/tm-d': ['a/tm-a', 'e/tm-e'],
          'e/tm-e': ['d/tm-d'],
        },
        [cm, d2],
        3,
      ),
    );
    await a.client.deleteService('tm-a');
    await waitFor(async () => {
      for (const id of ['a', 'c', 'd', 'e']) expect(await serviceOn(h.get(id), `tm-${id}`)).toBeUndefined();
    });
  }, 120_000);

  it('a worker refuses a definition older than the revision it holds (409 STALE_REVISION)', async () => {
    const bm = member('b', 'st-b');
    await create('st-a', 'star', [bm]);
    await changeMembers(a, 'PUT', 'st-a', { update: [{ ...bm, priority: 2 }] });
    const b = h.get('b');
    const held = await waitFor(async () => {
      const svc = await requireService(b, 'st-b');
      expect(svc.federation.revision).toBe(2);
      return svc;
    });
    const older = {
      ...held,
      federation: { ...held.federation, revision: 1 },
      image: 'alpine',
      script: '#!/bin/sh\necho old\n',
    };
    // Sent as the coordinator sends it (its origin and the worker's token): a late retry.
    const err = await b.client
      .request('PUT', '/system/services', {
        body: older,
        headers: { 'x-flotilla-origin': 'a/st-a', 'x-flotilla-worker-token': String(held.token) },
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(409);
    expect((err as ApiError).code).toBe('STALE_REVISION');
    const after = await requireService(b, 'st-b');
    expect(after.script).toBe(held.script);
    expect(after.federation.revision).toBe(2);
    await a.client.deleteService('st-a');
  });

  it('duplicates and unknown members are refused, and the topology stays as it was everywhere', async () => {
    const bm = member('b', 'dup-b');
    const cm = member('c', 'dup-c');

    // At create: the same member twice → 400, nothing created anywhere.
    const bad = await createFederated(
      a,
      federatedService(
        'dup-a',
        { topology: 'mesh', members: [bm, cm, { ...bm, priority: 3 }] },
        clustersMap(h.clusters),
      ),
    );
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/duplicate/);
    expect(bad.body.message).toContain('b/dup-b');
    for (const c of h.clusters)
      for (const n of ['dup-a', 'dup-b', 'dup-c']) expect(await serviceOn(c, n)).toBeUndefined();

    await create('dup-a', 'mesh', [bm, cm]);
    const refused = async (
      method: 'POST' | 'PUT' | 'DELETE',
      body: Record<string, unknown>,
      alias = false,
    ) => {
      const err = await changeMembers(a, method, 'dup-a', body, alias).catch((e: unknown) => e);
      expect(err, JSON.stringify(body)).toBeInstanceOf(ApiError);
      const { status } = err as ApiError;
      expect(
        status,
        `${method} ${JSON.stringify(body)}: ${(err as ApiError).message}`,
      ).toBeGreaterThanOrEqual(400);
      expect(status).toBeLessThan(500);
      return err as ApiError;
    };
    // Adding an existing member (either route), or one listed twice in the request.
    expect((await refused('POST', { members: [bm] })).status).toBe(409);
    expect((await refused('POST', { members: [{ ...cm, priority: 9 }] }, true)).status).toBe(409);
    const invalid = async (
      method: 'POST' | 'PUT' | 'DELETE',
      body: Record<string, unknown>,
      names: string,
    ) => {
      const err = await refused(method, body);
      expect(err.status, err.message).toBe(400);
      expect(err.code).toBe('FEDERATION_INVALID');
      expect(err.message).toContain(names);
    };
    await invalid('POST', { members: [member('d', 'dup-d'), member('d', 'dup-d')] }, 'd/dup-d');
    // Updating or removing a member that is not in the federation.
    await invalid('PUT', { update: [member('d', 'dup-d', { priority: 1 })] }, 'd/dup-d');
    await invalid('DELETE', { members: [member('e', 'dup-e')] }, 'e/dup-e');
    // The coordinator itself as a member; a cluster nobody knows.
    await invalid('POST', { members: [member('a', 'dup-a')] }, 'a/dup-a');
    await invalid('POST', { members: [member('zz', 'dup-zz')] }, 'zz');
    // Nested members outside a tree.
    await invalid('POST', { members: [member('d', 'dup-d', { members: [member('e', 'dup-e')] })] }, 'tree');

    await expectEverywhere('dup-a', 'mesh', [bm, cm], 1);
    expect(await serviceOn(h.get('d'), 'dup-d')).toBeUndefined();
    expect(await serviceOn(h.get('e'), 'dup-e')).toBeUndefined();
  }, 120_000);

  it('a member down during 20 changes converges to the latest graph and revision once it is back', async () => {
    const d = h.get('d');
    let members = [member('b', 'cv-b'), member('c', 'cv-c'), member('d', 'cv-d')];
    await create('cv-a', 'mesh', members);
    await expectEverywhere('cv-a', 'mesh', members, 1);
    // A second federation with d: its change goes first into d's queue, so the changes
    // below wait behind another service's row, as with several services per peer.
    const other = [member('d', 'cv2-d')];
    await create('cv2-a', 'star', other);

    await d.kill();
    other[0] = { ...other[0], priority: 4 };
    await changeMembers(a, 'PUT', 'cv2-a', { update: other });
    const started = Date.now();
    const durations: number[] = [];
    try {
      let revision = 1;
      const withE = () => members.some((m) => m.cluster_id === 'e');
      for (let i = 1; i <= 20; i++) {
        const t0 = Date.now();
        if (i % 5 === 0) {
          // Add/remove cycles of e: added at 5 and 15, removed (with its service) at 10 and 20.
          if (withE()) {
            await changeMembers(
              a,
              'DELETE',
              'cv-a',
              { members: [member('e', 'cv-e')], delete: true },
              i % 2 === 0,
            );
            members = members.filter((m) => m.cluster_id !== 'e');
          } else {
            await changeMembers(a, 'POST', 'cv-a', { members: [member('e', 'cv-e')] }, i % 2 === 0);
            members = [...members, member('e', 'cv-e')];
          }
        } else {
          // Priority updates, mostly of the member that is down.
          const target = i % 3 === 0 ? 'b' : 'd';
          members = members.map((m) => (m.cluster_id === target ? { ...m, priority: i } : m));
          const changed = members.filter((m) => m.cluster_id === target);
          await changeMembers(a, 'PUT', 'cv-a', { update: changed }, i % 2 === 0);
        }
        revision++;
        durations.push(Date.now() - t0);
      }
      // While d is down, the coordinator shows it pending, behind the others.
      const sync = syncStates(await federationOf(a, 'cv-a'));
      expect(sync.get('d/cv-d')?.state).toBe('pending');
      // It holds revision 1; the sync state must not claim a revision d never received
      // (skipped, superseded rows are no proof; null means not known).
      expect([1, null]).toContain(sync.get('d/cv-d')?.revision);
      expect(sync.get('b/cv-b')).toMatchObject({ state: 'synced', revision });
      expect(revision).toBe(21);
      expect(withE()).toBe(false);
    } finally {
      await d.start();
    }
    console.info(
      `20 changes with a member down took ${Date.now() - started} ms (each: ${durations.join(', ')} ms)`,
    );
    // A member that is down does not hold every change up to the propagation timeout (5 s).
    const median = [...durations].sort((x, y) => x - y)[durations.length / 2];
    expect(median, `durations ${durations.join(', ')}`).toBeLessThan(2500);
    await waitFor(() => expectEverywhere('cv-a', 'mesh', members, 21), {
      what: 'every node converged to revision 21',
      timeoutMs: 45_000,
    });
    // d holds exactly the latest definition: its priority from change 19, e gone from its targets.
    const dsvc = await requireService(d, 'cv-d');
    expect(dsvc.federation.revision).toBe(21);
    expect(targets(dsvc)).toEqual(['a/cv-a:0', 'b/cv-b:18', 'c/cv-c:0']);
    expect(await serviceOn(h.get('e'), 'cv-e')).toBeUndefined();
    // The other federation's change reached d too.
    await waitFor(() => expectEverywhere('cv2-a', 'star', other, 2), { what: 'cv2 converged' });
  }, 240_000);
});
