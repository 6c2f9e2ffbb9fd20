// Atomic and best-effort federated create end to end, with real managers that are killed
// and restarted: an atomic create with a member down, or one that dies in the middle of
// the create, leaves no service on any cluster (the rollback delete that could not reach
// the dead member is queued and reaches it once it is back); best-effort creates what it
// can and the missing worker appears when its cluster returns.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterProcess, Harness } from '../support/cluster-harness.ts';
import {
  type CreateReportView,
  clustersMap,
  createFederated,
  expectNowhere,
  federatedService,
  federationOf,
  type MemberProxy,
  member,
  replicaKeys,
  requireService,
  serviceOn,
  startFederationClusters,
  startMemberProxy,
  syncStates,
  waitFor,
} from '../support/federation.ts';

describe('atomic and best-effort federated create', () => {
  let h: Harness;
  let a: ClusterProcess;
  let b: ClusterProcess;
  let c: ClusterProcess;
  let d: ClusterProcess;
  let proxy: MemberProxy | undefined;

  beforeAll(async () => {
    h = await startFederationClusters(['a', 'b', 'c', 'd']);
    [a, b, c, d] = ['a', 'b', 'c', 'd'].map((id) => h.get(id));
  }, 300_000);

  afterAll(async () => {
    await proxy?.close();
    await h?.close();
  });

  const statusOf = (report: CreateReportView, clusterId: string) =>
    report.members.find((m) => m.cluster_id === clusterId)?.status;

  it('atomic with a member down: 502 with a report, and no cluster holds any of the services', async () => {
    await d.kill();
    try {
      const names = ['down-a', 'down-b', 'down-c', 'down-d'];
      const res = await createFederated(
        a,
        federatedService(
          'down-a',
          {
            topology: 'mesh',
            deployment: 'atomic',
            members: ['b', 'c', 'd'].map((id) => member(id, `down-${id}`)),
          },
          clustersMap(h.clusters),
        ),
      );
      expect(res.status, JSON.stringify(res.body)).toBe(502);
      expect(res.body.code).toBe('FEDERATION_FAILED');
      const report = res.body.details.report as CreateReportView;
      expect(report).toMatchObject({ service: 'down-a', deployment: 'atomic', outcome: 'rolled-back' });
      expect(statusOf(report, 'd')).toBe('unreachable');
      expect(report.members.find((m) => m.cluster_id === 'd')?.error).toMatch(/cluster d .*unreachable/);
      expect(statusOf(report, 'b')).toBe('not-created');
      expect(statusOf(report, 'c')).toBe('not-created');
      expect(res.body.message).toContain('down-d');
      // No credentials in the answer.
      expect(JSON.stringify(res.body)).not.toContain(`"${a.adminPassword}"`);

      await expectNowhere([a, b, c], names);
      await d.start();
      await expectNowhere(h.clusters, names);
      // Nothing was queued for d either: a moment later it still holds nothing.
      await new Promise((r) => setTimeout(r, 1500));
      await expectNowhere(h.clusters, names);
    } finally {
      await d.start();
    }
  }, 180_000);

  it('atomic with a member that refuses the credentials: 502, nothing anywhere, no password in the report', async () => {
    const clusters = clustersMap(h.clusters);
    clusters.c = { ...clusters.c, auth_password: 'wrong-password-123' };
    const res = await createFederated(
      a,
      federatedService(
        'cred-a',
        { topology: 'star', members: [member('b', 'cred-b'), member('c', 'cred-c')] },
        clusters,
      ),
    );
    expect(res.status, JSON.stringify(res.body)).toBe(502);
    const report = res.body.details.report as CreateReportView;
    expect(statusOf(report, 'c')).toBe('unreachable');
    expect(report.members.find((m) => m.cluster_id === 'c')?.error).toContain('refused the credentials');
    expect(JSON.stringify(res.body)).not.toContain('wrong-password-123');
    await expectNowhere(h.clusters, ['cred-a', 'cred-b', 'cred-c']);
  }, 180_000);

  it('atomic where a member already holds the name: 502, and its own service is left untouched', async () => {
    await c.client.createService({
      name: 'ex-c',
      image: 'alpine',
      script: '#!/bin/sh\necho mine\n',
      cpu: '0.1',
      memory: '64Mi',
    });
    const res = await createFederated(
      a,
      federatedService(
        'ex-a',
        { topology: 'mesh', members: [member('b', 'ex-b'), member('c', 'ex-c')] },
        clustersMap(h.clusters),
      ),
    );
    expect(res.status, JSON.stringify(res.body)).toBe(502);
    const report = res.body.details.report as CreateReportView;
    expect(statusOf(report, 'c')).toBe('exists');
    await expectNowhere(h.clusters, ['ex-a', 'ex-b']);
    const mine = await requireService(c, 'ex-c');
    expect(mine.script).toContain('echo mine');
    expect(mine.annotations?.['oscar.grycap/federation-worker']).toBeUndefined();
    await c.client.deleteService('ex-c');
  }, 180_000);

  it('atomic where a member dies in the middle of the create: rolled back everywhere, the orphan deleted when it returns', async () => {
    // c is reached through a proxy that lets the access checks through, forwards the
    // create (so c really stores the worker), then kills c and drops the connection
    // before the answer: the coordinator cannot know whether c created it.
    proxy = await startMemberProxy(() => c.url);
    let fired = false;
    proxy.setHook(async (req, _body, forward, res) => {
      if (fired || req.method !== 'POST' || req.url !== '/system/services') return false;
      fired = true;
      const r = await forward();
      expect(r.status).toBe(201);
      await c.kill();
      res.socket?.destroy();
      return true;
    });
    const names = ['mid-a', 'mid-b', 'mid-c', 'mid-d'];
    try {
      const res = await createFederated(
        a,
        federatedService(
          'mid-a',
          {
            topology: 'mesh',
            deployment: 'atomic',
            members: ['b', 'c', 'd'].map((id) => member(id, `mid-${id}`)),
          },
          clustersMap(h.clusters, { c: proxy.url }),
        ),
      );
      expect(fired).toBe(true);
      expect(c.running).toBe(false);
      expect(res.status, JSON.stringify(res.body)).toBe(502);
      expect(res.body.code).toBe('FEDERATION_FAILED');
      const report = res.body.details.report as CreateReportView;
      expect(report.outcome).toBe('rolled-back');
      expect(statusOf(report, 'b')).toBe('rolled-back');
      expect(statusOf(report, 'd')).toBe('rolled-back');
      // c's create is in doubt and its rollback could not reach it: the delete is queued.
      expect(statusOf(report, 'c')).toBe('rollback-queued');
      expect(report.members.find((m) => m.cluster_id === 'c')?.error).toMatch(/cluster c/);

      await expectNowhere([a, b, d], names);

      // c comes back holding the orphan; the queued delete reaches it.
      await c.start();
      await waitFor(() => expectNowhere(h.clusters, names), {
        what: 'the orphan on c deleted',
        timeoutMs: 30_000,
      });
      expect(proxy.seen).toContain('DELETE /system/services/mid-c?cascade=false -> 204');
    } finally {
      proxy.setHook(undefined);
      await c.start();
    }
  }, 180_000);

  it('best-effort with a member down: 201 with a report, created where reachable, the rest once it returns', async () => {
    await d.kill();
    try {
      const members = ['b', 'c', 'd'].map((id) => member(id, `be-${id}`));
      const res = await createFederated(
        a,
        federatedService(
          'be-a',
          { topology: 'star', deployment: 'best-effort', members },
          clustersMap(h.clusters),
        ),
      );
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      const report = res.body as CreateReportView;
      expect(report).toMatchObject({
        service: 'be-a',
        deployment: 'best-effort',
        revision: 1,
        outcome: 'partial',
      });
      expect(statusOf(report, 'b')).toBe('created');
      expect(statusOf(report, 'c')).toBe('created');
      expect(statusOf(report, 'd')).toBe('queued');
      expect(report.members.find((m) => m.cluster_id === 'd')?.error).toMatch(/cluster d .*unreachable/);

      expect(replicaKeys(await requireService(a, 'be-a'))).toEqual(['b/be-b', 'c/be-c', 'd/be-d']);
      for (const x of [b, c]) expect(replicaKeys(await requireService(x, `be-${x.id}`))).toEqual(['a/be-a']);
      const pending = syncStates(await federationOf(a, 'be-a'));
      expect(pending.get('b/be-b')?.state).toBe('synced');
      expect(pending.get('d/be-d')?.state).toBe('pending');
      expect(pending.get('d/be-d')?.last_error).toMatch(/cluster d/);

      await d.start();
      const worker = await waitFor(() => requireService(d, 'be-d'), {
        what: 'be-d created on d',
        timeoutMs: 30_000,
      });
      expect(replicaKeys(worker)).toEqual(['a/be-a']);
      expect(worker.annotations).toMatchObject({
        'oscar.grycap/origin-cluster': 'a',
        'oscar.grycap/origin-service': 'be-a',
        'oscar.grycap/federation-worker': 'true',
      });
      expect((await federationOf(d, 'be-d')).role).toBe('worker');
      await waitFor(
        async () => {
          const sync = syncStates(await federationOf(a, 'be-a'));
          for (const key of ['b/be-b', 'c/be-c', 'd/be-d']) {
            expect(sync.get(key), key).toMatchObject({ state: 'synced', revision: 1, last_error: null });
          }
        },
        { what: 'every member synced' },
      );
    } finally {
      await d.start();
    }
    // Clean up through the coordinator: the cascade reaches d too.
    await a.client.deleteService('be-a');
    await waitFor(() => expectNowhere(h.clusters, ['be-a', 'be-b', 'be-c', 'be-d']));
  }, 180_000);

  it('best-effort where a member already holds the name: reported, and its own service is never overwritten', async () => {
    await c.client.createService({
      name: 'bx-c',
      image: 'alpine',
      script: '#!/bin/sh\necho mine\n',
      cpu: '0.1',
      memory: '64Mi',
    });
    const res = await createFederated(
      a,
      federatedService(
        'bx-a',
        { topology: 'star', deployment: 'best-effort', members: [member('b', 'bx-b'), member('c', 'bx-c')] },
        clustersMap(h.clusters),
      ),
    );
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const report = res.body as CreateReportView;
    expect(statusOf(report, 'b')).toBe('created');
    expect(statusOf(report, 'c')).toBe('exists');
    expect(report.outcome).toBe('partial');
    // c is queued, and refuses: its own service stays its own, and a's view says why.
    await waitFor(
      async () => {
        const sync = syncStates(await federationOf(a, 'bx-a')).get('c/bx-c');
        expect(sync).toMatchObject({ state: 'failed' });
        // The member's refusal, told from its error code (a peer's message is never shown).
        expect(sync?.last_error).toMatch(/not this federation's worker/);
      },
      { what: "c's sync state to show the refusal" },
    );
    const mine = await requireService(c, 'bx-c');
    expect(mine.script).toContain('echo mine');
    expect(mine.annotations?.['oscar.grycap/federation-worker']).toBeUndefined();
    // Once c's owner frees the name, the queued worker is created there.
    await c.client.deleteService('bx-c');
    await waitFor(
      async () => {
        const worker = await requireService(c, 'bx-c');
        expect(worker.annotations?.['oscar.grycap/federation-worker']).toBe('true');
        expect(syncStates(await federationOf(a, 'bx-a')).get('c/bx-c')).toMatchObject({ state: 'synced' });
      },
      { what: 'the worker on c once the name is free' },
    );
    await a.client.deleteService('bx-a');
    await waitFor(() => expectNowhere(h.clusters, ['bx-a', 'bx-b', 'bx-c']));
  }, 120_000);

  it('the outbox survives a coordinator crash: a queued create reaches the member after both restart', async () => {
    await d.kill();
    try {
      const members = [member('b', 'cr-b'), member('d', 'cr-d')];
      const res = await createFederated(
        a,
        federatedService(
          'cr-a',
          { topology: 'mesh', deployment: 'best-effort', members },
          clustersMap(h.clusters),
        ),
      );
      expect(res.status).toBe(201);
      expect(statusOf(res.body as CreateReportView, 'd')).toBe('queued');
      await a.kill();
      await Promise.all([a.start(), d.start()]);
      const worker = await waitFor(() => requireService(d, 'cr-d'), {
        what: 'cr-d created on d',
        timeoutMs: 30_000,
      });
      expect(replicaKeys(worker)).toEqual(['a/cr-a', 'b/cr-b']);
      expect(await serviceOn(b, 'cr-b')).toBeDefined();
    } finally {
      await Promise.all([a.start(), d.start()]);
    }
  }, 180_000);
});
