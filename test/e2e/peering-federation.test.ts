// Federation over the peer channel between two real managers on loopback, real mTLS: A's
// member `b` names a peer record, so A needs no `clusters` entry and no password; B serves
// replica changes, delegated jobs and status as the grant's subject, with the grant's verbs
// and max_cpu enforced. Then what a hostile peer tries, with certificates of B's own CA.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlotillaClient } from '../../client/api-client.ts';
import { certTools } from '../../src/adapters/pki/x509-pki.ts';
import { waitFor } from '../support/federation.ts';
import { ADMIN_PASSWORD, startInProcess, type TestManager } from '../support/in-process.ts';
import { mtlsCall } from '../support/peering.ts';

let a: TestManager;
let b: TestManager;
let ca: FlotillaClient;
let cb: FlotillaClient;
let bUrl: string;
let channel: string;
let bCa: string;

const FULL = {
  resources: ['services', 'jobs', 'status'],
  verbs: ['get', 'replicate', 'delegate'],
  max_cpu: '1',
};

const grant = (subject: string, scope: unknown, peer = 'a') =>
  cb.request<{ id: string }>('POST', '/system/grants', { body: { peer, subject, scope } });
const token = async (id: string) =>
  (await cb.request<{ token: string }>('POST', `/system/grants/${id}/token`, { body: { ttl: 600 } })).token;

/** A certificate of B's CA for a new grant, enrolled by hand (the test holds the key). */
const rawPeer = async (subject: string, scope: unknown) => {
  const g = await grant(subject, scope);
  const { keyPem, csrPem } = await certTools.createKeyAndCsr('hostile');
  const res = await fetch(`${bUrl}/federation/v1/enroll`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token: await token(g.id), csr: csrPem }),
  });
  expect(res.status).toBe(200);
  const { certificate } = (await res.json()) as { certificate: string };
  return { grantId: g.id, tls: { ca: bCa, cert: certificate, key: keyPem } };
};

const proof = (service: string, tok = randomBytes(32).toString('hex')) => ({
  'x-flotilla-origin': `a/${service}`,
  'x-flotilla-worker-token': tok,
});

const replica = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  image: 'ghcr.io/grycap/alpine',
  script: '#!/bin/sh\necho ran-on-b\n',
  cpu: '0.5',
  memory: '64Mi',
  ...extra,
});

beforeAll(async () => {
  b = await startInProcess({ clusterId: 'b', peerListen: '127.0.0.1:0', cpus: '2' });
  a = await startInProcess({ clusterId: 'a', peerListen: '127.0.0.1:0' });
  bUrl = await b.manager.listen();
  await a.manager.listen();
  ca = new FlotillaClient({ endpoint: a.manager.publicUrl(), password: ADMIN_PASSWORD });
  cb = new FlotillaClient({ endpoint: bUrl, password: ADMIN_PASSWORD });
  channel = `${(await cb.request<{ peer_channel_url: string }>('GET', '/system/info')).peer_channel_url}/federation/v1`;
  const g = await grant('alice', FULL);
  const peer = await ca.request<{ name: string; state: string }>('POST', '/system/peers', {
    body: { url: bUrl, token: await token(g.id) },
  });
  expect(peer).toMatchObject({ name: 'b', state: 'active' });
  bCa = (await a.store.trust.getPeer('b'))!.caPem;
}, 60_000);

afterAll(async () => {
  await a?.close();
  await b?.close();
});

describe('a federated service over the peer channel', () => {
  it('creates, updates and deletes the worker on B as the grant subject, with no clusters entry and no password', async () => {
    const fdl = {
      ...replica('pc-star'),
      cpu: '0.5',
      federation: {
        topology: 'star',
        members: [{ type: 'oscar', cluster_id: 'b', service_name: 'pc-star-b' }],
      },
    };
    expect(JSON.stringify(fdl)).not.toMatch(/auth_password|clusters/);
    const res = await ca.send('POST', '/system/services', { body: fdl });
    const report = await res.json();
    expect(res.status, JSON.stringify(report)).toBe(201);
    expect((report as { outcome: string }).outcome).toBe('created');

    const worker = (await b.store.getService('pc-star-b'))!;
    expect(worker.owner).toBe('alice');
    expect(worker.annotations?.['oscar.grycap/federation-worker']).toBe('true');
    // The coordinator's own entry only (its public URL, for storage), no password anywhere.
    expect(Object.keys(worker.clusters ?? {})).toEqual(['a']);
    for (const s of [worker, (await a.store.getService('pc-star'))!])
      expect(JSON.stringify(s)).not.toMatch(/auth_password|auth_user/);

    const upd = await ca.send('PUT', '/system/services', {
      body: { ...fdl, environment: { variables: { WAVE: '2' } } },
    });
    expect(upd.status).toBe(204);
    await waitFor(async () => {
      expect((await b.store.getService('pc-star-b'))?.environment?.variables?.WAVE).toBe('2');
    });
    const view = await ca.request<{ members: Array<{ sync: { state: string } }> }>(
      'GET',
      '/system/federation/pc-star',
    );
    expect(view.members[0].sync.state).toBe('synced');
    // The outbox keeps the target by peer name: no secret in a durable row.
    const rows = await a.store.outboxOfGroup('pc-star');
    expect(rows.every((r) => r.target.auth.kind === 'peer')).toBe(true);

    expect((await ca.send('DELETE', '/system/services/pc-star')).status).toBe(204);
    await waitFor(async () => expect(await b.store.getService('pc-star-b')).toBeUndefined());
  });

  it('refuses a member over max_cpu at B (403 by the receiver): the atomic create rolls back', async () => {
    const fdl = {
      ...replica('pc-big'),
      cpu: '1.5',
      federation: {
        topology: 'star',
        members: [{ type: 'oscar', cluster_id: 'b', service_name: 'pc-big-b' }],
      },
    };
    const res = await ca.send('POST', '/system/services', { body: fdl });
    const body = (await res.json()) as { details?: { report?: { members: Array<{ status: string }> } } };
    expect(res.status).toBe(502);
    expect(body.details?.report?.members[0].status).toBe('failed');
    expect(await b.store.getService('pc-big-b')).toBeUndefined();
    expect(await a.store.getService('pc-big')).toBeUndefined();
  });
});

describe('what a hostile peer tries on the channel', () => {
  let alice: Awaited<ReturnType<typeof rawPeer>>;
  let bob: Awaited<ReturnType<typeof rawPeer>>;
  let reader: Awaited<ReturnType<typeof rawPeer>>;

  beforeAll(async () => {
    alice = await rawPeer('alice', FULL);
    bob = await rawPeer('bob', FULL);
    reader = await rawPeer('alice', { resources: ['services'], verbs: ['get'] });
  });

  it('creates a replica with the replicate verb and a worker proof; reads show only its name', async () => {
    const res = await mtlsCall(`${channel}/system/services`, alice.tls, {
      method: 'POST',
      body: replica('hx-a'),
      headers: proof('hx'),
    });
    expect(res.status, res.text).toBe(201);
    expect((await b.store.getService('hx-a'))?.owner).toBe('alice');
    const read = await mtlsCall(`${channel}/system/services/hx-a`, alice.tls);
    expect(read.json).toEqual({ name: 'hx-a' });
  });

  it('without replicate, over max_cpu (however the key is spelled), with members or without a proof: refused', async () => {
    const denied = await mtlsCall(`${channel}/system/services`, reader.tls, {
      method: 'POST',
      body: replica('hx-r'),
      headers: proof('hx'),
    });
    expect(denied.status).toBe(403);
    expect(denied.json).toMatchObject({ message: 'forbidden by grant' });
    for (const body of [replica('hx-c', { cpu: '4' }), { ...replica('hx-c'), cpu: undefined, CPU: '4' }]) {
      const r = await mtlsCall(`${channel}/system/services`, alice.tls, {
        method: 'POST',
        body,
        headers: proof('hx'),
      });
      expect(r.status, JSON.stringify(body)).toBe(403);
      expect(r.json).toMatchObject({ message: 'forbidden by grant' });
    }
    const fan = await mtlsCall(`${channel}/system/services`, alice.tls, {
      method: 'POST',
      body: replica('hx-f', {
        federation: { topology: 'star', members: [{ type: 'oscar', cluster_id: 'c', service_name: 'x' }] },
      }),
      headers: proof('hx'),
    });
    expect(fan.status).toBe(400);
    const bare = await mtlsCall(`${channel}/system/services`, alice.tls, {
      method: 'POST',
      body: replica('hx-p'),
    });
    expect(bare.status).toBe(403);
    for (const name of ['hx-r', 'hx-c', 'hx-f', 'hx-p'])
      expect(await b.store.getService(name)).toBeUndefined();
    // Bad input is a 4xx, never a 500.
    for (const body of ['not json', [1, 2], { name: 'Bad Name!' }]) {
      const r = await mtlsCall(`${channel}/system/services`, alice.tls, {
        method: 'POST',
        body,
        headers: proof('hx'),
      });
      expect(r.status, JSON.stringify(body)).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
    }
    const nul = await mtlsCall(`${channel}/system/logs/hx-a/%00`, alice.tls);
    expect(nul.status).toBeGreaterThanOrEqual(400);
    expect(nul.status).toBeLessThan(500);
  });

  it("grant X's certificate cannot change or delete a replica of grant Y's subject, nor invoke it", async () => {
    const put = await mtlsCall(`${channel}/system/services`, bob.tls, {
      method: 'PUT',
      body: replica('hx-a', { script: '#!/bin/sh\necho pwned\n' }),
      headers: proof('hx'),
    });
    expect(put.status).toBe(403);
    const del = await mtlsCall(`${channel}/system/services/hx-a`, bob.tls, {
      method: 'DELETE',
      headers: proof('hx'),
    });
    expect(del.status).toBe(403);
    const job = await mtlsCall(`${channel}/job/hx-a`, bob.tls, { method: 'POST', raw: Buffer.from('{}') });
    expect(job.status).toBe(403);
    expect((await b.store.getService('hx-a'))?.script).toContain('ran-on-b');
    // Alice with another proof (not the worker's token) cannot take it over either.
    const other = await mtlsCall(`${channel}/system/services`, alice.tls, {
      method: 'PUT',
      body: replica('hx-a', { script: '#!/bin/sh\necho pwned\n' }),
      headers: proof('hx'),
    });
    expect(other.status).toBeGreaterThanOrEqual(400);
    expect(other.status).toBeLessThan(500);
    expect((await b.store.getService('hx-a'))?.script).toContain('ran-on-b');
  });

  it('delegates a job as the subject and reads its status; without delegate, or over max_cpu, refused', async () => {
    const sent = await mtlsCall(`${channel}/job/hx-a`, alice.tls, {
      method: 'POST',
      raw: Buffer.from(JSON.stringify({ storage_provider: 'minio.a', event: 'hi' })),
      headers: { 'x-delegated-job-id': `a:${randomBytes(4).toString('hex')}`, 'x-delegated-from': 'a' },
    });
    expect(sent.status, sent.text).toBe(201);
    const id = (sent.json as { job_id: string }).job_id;
    expect((await b.store.getJob(id))?.owner).toBe('alice');
    await waitFor(
      async () => {
        const r = await mtlsCall(`${channel}/system/logs/hx-a/${id}`, alice.tls);
        expect(r.status).toBe(200);
        expect(r.headers?.['x-job-status']).toBe('Succeeded');
        expect(r.text).toContain('ran-on-b');
      },
      { timeoutMs: 30_000 },
    );
    expect(
      (await mtlsCall(`${channel}/job/hx-a`, reader.tls, { method: 'POST', raw: Buffer.from('{}') })).status,
    ).toBe(403);
    const status = await mtlsCall(`${channel}/system/status`, alice.tls);
    expect(status.status).toBe(200);
    // Capacity only: no job counts or storage totals of B.
    expect(Object.keys(status.json)).toEqual(['cluster']);
    expect(status.json.cluster.nodes.length).toBeGreaterThan(0);
    expect((await mtlsCall(`${channel}/system/status`, reader.tls)).status).toBe(403);
    // The grant narrows below the service's cpu: its jobs are refused.
    const small = await rawPeer('alice', { ...FULL, max_cpu: '250m' });
    const over = await mtlsCall(`${channel}/job/hx-a`, small.tls, { method: 'POST', raw: Buffer.from('{}') });
    expect(over.status).toBe(403);
    expect(over.json).toMatchObject({ message: 'forbidden by grant' });
  });

  it('deleting a user revokes their grants: the next request of their certificate fails at TLS', async () => {
    expect((await mtlsCall(`${channel}/system/info`, bob.tls)).status).toBe(200);
    const res = await cb.request<{ revoked: Array<{ id: string; status: string }> }>(
      'POST',
      '/system/grants/revoke',
      { body: { subject: 'bob' } },
    );
    expect(res.revoked.map((g) => g.id)).toEqual([bob.grantId]);
    expect(res.revoked[0].status).toBe('revoked');
    const after = await mtlsCall(`${channel}/system/info`, bob.tls);
    expect(after.status).toBeUndefined();
    expect(after.error).toBeDefined();
    // Alice's grants are untouched; an unknown subject revokes nothing; a bad one is 400.
    expect((await mtlsCall(`${channel}/system/info`, alice.tls)).status).toBe(200);
    expect(
      (
        await cb.request<{ revoked: unknown[] }>('POST', '/system/grants/revoke', {
          body: { subject: 'nobody' },
        })
      ).revoked,
    ).toEqual([]);
    expect((await cb.send('POST', '/system/grants/revoke', { body: { subject: 7 } })).status).toBe(400);
    expect(
      (
        await new FlotillaClient({ endpoint: bUrl }).send('POST', '/system/grants/revoke', {
          body: { subject: 'alice' },
        })
      ).status,
    ).toBe(401);
  });
});
