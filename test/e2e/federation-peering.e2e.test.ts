// Federation over the peer channel with real `flotilla up` processes and real mTLS: the
// coordinator `a` enrolled with b, c, d (grants to subject alice) and e (a grant without
// `replicate`); FDLs carry no `clusters` map and no password. A star and a tree are created,
// a job is delegated over the channel, and the receivers refuse what the grant does not give
// (no `replicate`, max_cpu). Last, a revoked grant: the next call fails at TLS and the member
// shows pending/failed, never a 500. No password is anywhere in the stored state.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClusterProcess, freePort, type Harness, startClusters } from '../support/cluster-harness.ts';
import {
  type CreateReportView,
  createFederated,
  type FederationView,
  federationOf,
  member,
  replicaKeys,
  requireService,
  serviceOn,
  waitFor,
} from '../support/federation.ts';

const PASSWORD = 'peering-e2e-admin-password-7c1d9e4b';
const FULL = {
  resources: ['services', 'jobs', 'status'],
  verbs: ['get', 'replicate', 'delegate'],
  max_cpu: '1',
};
const NO_REPLICATE = { resources: ['services', 'jobs', 'status'], verbs: ['get', 'delegate'] };

let h: Harness;
const c: Record<string, ClusterProcess> = {};

/** On `to`: a grant for a's subject alice; on a: enrollment with its token. */
const enroll = async (to: ClusterProcess, scope: unknown): Promise<string> => {
  const g = await to.client.request<{ id: string }>('POST', '/system/grants', {
    body: { peer: 'a', subject: 'alice', scope },
  });
  const { token } = await to.client.request<{ token: string }>('POST', `/system/grants/${g.id}/token`, {
    body: { ttl: 600 },
  });
  const peer = await c.a.client.request<{ name: string; state: string }>('POST', '/system/peers', {
    body: { url: to.url, token },
  });
  expect(peer).toMatchObject({ name: to.id, state: 'active' });
  return g.id;
};

/** A service for the coordinator: no `clusters`, no credentials. */
const fdl = (name: string, federation: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  name,
  image: 'ghcr.io/grycap/alpine',
  script: '#!/bin/sh\necho "ran on $OSCAR_SERVICE_NAME"\n',
  cpu: '0.5',
  memory: '64Mi',
  federation,
  ...extra,
});

const created = async (name: string, federation: Record<string, unknown>) => {
  const body = fdl(name, federation);
  expect(JSON.stringify(body)).not.toMatch(/clusters|auth_password|auth_user/);
  const res = await createFederated(c.a, body);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  const report = res.body as CreateReportView;
  expect(report.outcome).toBe('created');
  expect(report.members.every((m) => m.status === 'created')).toBe(true);
  return report;
};

/** Every file under a directory, recursively. */
const filesUnder = async (dir: string): Promise<string[]> => {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
};

let bGrant: string;

beforeAll(async () => {
  const ids = ['a', 'b', 'c', 'd', 'e'];
  const ports = await Promise.all(ids.map(() => freePort()));
  h = await startClusters(
    ids.map((id, i) => ({
      id,
      // a cannot run the 0.5-cpu jobs itself: they are delegated.
      args: ['--peer-listen', `127.0.0.1:${ports[i]}`, '--cpus', id === 'a' ? '0.25' : '2'],
    })),
    { adminPassword: PASSWORD, parallel: 2, startTimeoutMs: 150_000, prefix: 'flotilla-peering-e2e-' },
  );
  for (const id of ids) c[id] = h.get(id);
  bGrant = await enroll(c.b, FULL);
  await enroll(c.c, FULL);
  await enroll(c.d, FULL);
  await enroll(c.e, NO_REPLICATE);
}, 400_000);

afterAll(async () => {
  await h?.close();
});

describe('federation over the peer channel, no passwords anywhere', () => {
  it('creates a star: workers on b and c, owned by the grant subject, reached by certificate', async () => {
    await created('pstar', { topology: 'star', members: [member('b', 'pstar-b'), member('c', 'pstar-c')] });
    for (const id of ['b', 'c']) {
      const w = await requireService(c[id], `pstar-${id}`);
      expect(w.owner).toBe('alice');
      expect(replicaKeys(w)).toEqual(['a/pstar']);
      // Only the coordinator's own entry (its public URL, for storage), no credentials.
      expect(Object.keys(w.clusters ?? {})).toEqual(['a']);
      expect(JSON.stringify(w)).not.toMatch(/auth_password|auth_user/);
    }
    const view = await federationOf(c.a, 'pstar');
    expect(view.members.map((m) => m.sync?.state)).toEqual(['synced', 'synced']);
  });

  it('creates a tree: b with child d, and c; d delegates to its parent first', async () => {
    await created('ptree', {
      topology: 'tree',
      members: [member('b', 'ptree-b', { members: [member('d', 'ptree-d')] }), member('c', 'ptree-c')],
    });
    expect(replicaKeys(await requireService(c.d, 'ptree-d'))).toEqual(['b/ptree-b']);
    expect(replicaKeys(await requireService(c.b, 'ptree-b'))).toEqual(['a/ptree', 'd/ptree-d']);
    expect(replicaKeys(await requireService(c.c, 'ptree-c'))).toEqual(['a/ptree']);
  });

  it('delegates a job over the channel and mirrors its status and log', async () => {
    await created('pjob', {
      topology: 'star',
      delegation: 'static',
      rescheduler_threshold: 1,
      members: [member('b', 'pjob-b')],
    });
    const token = String((await c.a.client.getService('pjob')).token);
    const res = await fetch(`${c.a.url}/job/pjob`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
      body: 'hello',
    });
    expect(res.status).toBe(201);
    const { job_id: id } = (await res.json()) as { job_id: string };
    await waitFor(
      async () => {
        const jobs = await c.a.client.request<{ jobs: Record<string, { status: string }> }>(
          'GET',
          '/system/logs/pjob',
        );
        expect(jobs.jobs[id]?.status, JSON.stringify(jobs.jobs[id])).toBe('Succeeded');
      },
      { timeoutMs: 90_000, what: 'the delegated job to succeed' },
    );
    const log = await (await c.a.client.send('GET', `/system/logs/pjob/${id}`)).text();
    expect(log).toContain('ran on pjob-b');
    const onB = await c.b.client.request<{ jobs: Record<string, { status: string }> }>(
      'GET',
      '/system/logs/pjob-b',
    );
    expect(Object.values(onB.jobs).map((j) => j.status)).toEqual(['Succeeded']);
  }, 120_000); // the wait above allows 90 s (five managers on two loaded cores): so does the test

  it('refuses a member whose grant has no replicate verb, and one over max_cpu; nothing is kept', async () => {
    const norep = await createFederated(
      c.a,
      fdl('pnorep', { topology: 'star', members: [member('e', 'pnorep-e')] }),
    );
    expect(norep.status).toBe(502);
    expect(norep.body.details.report.members[0]).toMatchObject({ cluster_id: 'e', status: 'unreachable' });
    expect(await serviceOn(c.e, 'pnorep-e')).toBeUndefined();

    const big = await createFederated(
      c.a,
      fdl('pbig', { topology: 'star', members: [member('b', 'pbig-b')] }, { cpu: '2' }),
    );
    expect(big.status).toBe(502);
    expect(big.body.details.report.members[0]).toMatchObject({ cluster_id: 'b', status: 'failed' });
    expect(await serviceOn(c.b, 'pbig-b')).toBeUndefined();
    expect(await serviceOn(c.a, 'pbig')).toBeUndefined();
  });

  it('a revoked grant: the next call fails at TLS, the member shows pending/failed, the peer revoked', async () => {
    await c.b.client.request('POST', `/system/grants/${bGrant}/revoke`, { body: { reason: 'e2e' } });
    const upd = await c.a.client.send('PUT', '/system/services', {
      body: fdl(
        'pstar',
        { topology: 'star', members: [member('b', 'pstar-b'), member('c', 'pstar-c')] },
        { environment: { variables: { WAVE: '2' } } },
      ),
      timeoutMs: 60_000,
    });
    expect(upd.status).toBe(204);
    await waitFor(async () => {
      const w = await requireService(c.c, 'pstar-c');
      expect(w.environment?.variables?.WAVE).toBe('2');
    });
    const view: FederationView = await waitFor(async () => {
      const v = await federationOf(c.a, 'pstar');
      const b = v.members.find((m) => m.cluster_id === 'b')!;
      expect(['pending', 'failed']).toContain(b.sync?.state);
      expect(b.sync?.last_error).toBeTruthy();
      return v;
    });
    expect(view.members.find((m) => m.cluster_id === 'c')?.sync?.state).toBe('synced');
    expect((await requireService(c.b, 'pstar-b')).environment?.variables?.WAVE).toBeUndefined();
    const peer = await c.a.client.request<{ state: string }>('GET', '/system/peers/b');
    expect(peer.state).toBe('revoked');
  });

  it('stores no password: not in any service, not in any data dir or log file', async () => {
    for (const cl of Object.values(c)) {
      const list = JSON.stringify(await cl.client.listServices());
      expect(list).not.toMatch(/auth_password|auth_user/);
    }
    for (const cl of Object.values(c)) await cl.stop();
    for (const cl of Object.values(c)) {
      for (const f of [...(await filesUnder(cl.dataDir)), cl.logFile]) {
        if ((await stat(f)).size > 64 * 1024 ** 2) continue;
        expect((await readFile(f)).includes(PASSWORD), f).toBe(false);
      }
    }
  });
});
