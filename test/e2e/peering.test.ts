// Peering between two real managers on loopback over real mTLS: grants, single-use tokens,
// enrollment, the guard's order of checks, revocation through the CRL, and a network failure
// that must not look like a revocation.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlotillaClient } from '../../client/api-client.ts';
import { certTools } from '../../src/adapters/pki/x509-pki.ts';
import { createSecretBox, loadSecretKey } from '../../src/adapters/secret-box/aes-gcm-box.ts';
import type { Service } from '../../src/core/fdl/service.ts';
import { OID_GRANT_ID, OID_SUBJECT, readClaims } from '../../src/core/trust/claims.ts';
import { ADMIN_PASSWORD, startInProcess, type TestManager } from '../support/in-process.ts';
import { forgeClient, managerCa, mtlsGet, mtlsPost, strangerCa, utf8Ext } from '../support/peering.ts';

let a: TestManager;
let b: TestManager;
let ca: FlotillaClient; // admin of A
let cb: FlotillaClient; // admin of B
let bUrl: string;
let bPeer: string;

const scope = {
  resources: ['services', 'jobs'],
  verbs: ['list', 'get', 'replicate'],
  max_rows_per_query: 50,
  max_cpu: '2',
};

const newGrant = async (subject = 'alice', peer = 'a') =>
  cb.request<Record<string, unknown>>('POST', '/system/grants', { body: { peer, subject, scope } });
const newToken = async (id: string) =>
  (await cb.request<{ token: string }>('POST', `/system/grants/${id}/token`, { body: { ttl: 600 } })).token;
const rawEnroll = (token: string, csr: string) =>
  fetch(`${bUrl}/federation/v1/enroll`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token, csr }),
  });

beforeAll(async () => {
  b = await startInProcess({ clusterId: 'b', peerListen: '127.0.0.1:0' });
  a = await startInProcess({ clusterId: 'a', peerListen: '127.0.0.1:0' });
  bUrl = await b.manager.listen();
  await a.manager.listen();
  ca = new FlotillaClient({ endpoint: a.manager.publicUrl(), password: ADMIN_PASSWORD });
  cb = new FlotillaClient({ endpoint: bUrl, password: ADMIN_PASSWORD });
  const info = await cb.request<{ peer_channel_url: string }>('GET', '/system/info');
  bPeer = info.peer_channel_url;
});

afterAll(async () => {
  await a?.close();
  await b?.close();
});

describe('grants and tokens (B side)', () => {
  it('creates a grant pending, id first, and advertises the peer channel', async () => {
    const g = await newGrant();
    expect(Object.keys(g)[0]).toBe('id');
    expect(g).toMatchObject({ status: 'pending', subject_user: 'alice', peer_name: 'a' });
    expect(bPeer).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  });

  it('refuses a scope with an unknown resource (400 naming the field) and unknown keys', async () => {
    const bad = await cb.send('POST', '/system/grants', {
      body: { peer: 'a', subject: 'alice', scope: { ...scope, resources: ['services', 'secrets'] } },
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { message: string }).message).toContain('scope.resources.1');
    const extra = await cb.send('POST', '/system/grants', {
      body: { peer: 'a', subject: 'alice', scope, admin: true },
    });
    expect(extra.status).toBe(400);
  });

  it('is admin only: no credentials, a wrong password, and the peer routes', async () => {
    const anon = new FlotillaClient({ endpoint: bUrl });
    for (const [m, p] of [
      ['GET', '/system/grants'],
      ['POST', '/system/grants'],
      ['GET', '/system/peers'],
      ['DELETE', '/system/peers/x'],
    ] as const)
      expect((await anon.send(m, p, { body: m === 'POST' ? {} : undefined })).status, `${m} ${p}`).toBe(401);
    const wrong = new FlotillaClient({ endpoint: bUrl, password: 'nope' });
    expect((await wrong.send('GET', '/system/grants')).status).toBe(401);
  });

  it('caps the token TTL at 15 minutes and refuses tokens for non-pending grants', async () => {
    const g = await newGrant();
    expect((await cb.send('POST', `/system/grants/${g.id}/token`, { body: { ttl: 901 } })).status).toBe(400);
    await cb.request('POST', `/system/grants/${g.id}/revoke`, { body: { reason: 'test' } });
    expect((await cb.send('POST', `/system/grants/${g.id}/token`, { body: {} })).status).toBe(409);
    expect((await cb.send('POST', `/system/grants/${g.id}/revoke`, { body: {} })).status).toBe(409);
    expect((await cb.send('GET', '/system/grants/grt_nope')).status).toBe(404);
  });
});

describe('enrollment', () => {
  let grantId: string;
  let token: string;

  it('enrolls A: an active peer named after B with certificate and sealed key; the grant turns active', async () => {
    grantId = String((await newGrant()).id);
    token = await newToken(grantId);
    const res = await ca.send('POST', '/system/peers', { body: { url: bUrl, token } });
    const text = await res.text();
    expect(res.status, text).toBe(201);
    expect(text).not.toMatch(/PRIVATE KEY|key_sealed|v1:/);
    const peer = JSON.parse(text);
    expect(peer).toMatchObject({
      name: 'b',
      cluster_id: 'b',
      state: 'active',
      grant_id: grantId,
      subject: 'alice',
    });
    expect(peer.peer_channel_url).toBe(bPeer);
    const grant = await cb.request<Record<string, unknown>>('GET', `/system/grants/${grantId}`);
    expect(grant).toMatchObject({ status: 'active', cert_serial: peer.cert_serial });
  });

  it('keeps private keys as ciphertext at rest (A peer key, B CA key)', async () => {
    const stored = (await a.store.trust.getPeer('b'))!;
    expect(stored.keySealed).toMatch(/^v1:/);
    expect(stored.keySealed).not.toContain('PRIVATE');
    const boxA = createSecretBox(await loadSecretKey(undefined, a.dataDir));
    expect(boxA.open(stored.keySealed)).toContain('BEGIN PRIVATE KEY');
    const caB = await managerCa(b.store, b.dataDir);
    expect(caB.keySealed).toMatch(/^v1:/);
    expect(await b.store.getSetting('pki.ca')).not.toContain('PRIVATE');
  });

  it('answers a replayed token 410, an unknown one 404, a garbage token 404 and a bad CSR 400', async () => {
    const { csrPem } = await certTools.createKeyAndCsr('x');
    expect((await rawEnroll(token, csrPem)).status).toBe(410);
    expect((await rawEnroll('f'.repeat(64), csrPem)).status).toBe(404);
    expect((await rawEnroll("' OR 1=1 --", csrPem)).status).toBe(404);
    const t = await newToken(String((await newGrant()).id));
    expect(
      (await rawEnroll(t, '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----'))
        .status,
    ).toBe(400);
    // The bad CSR did not burn the token.
    expect((await rawEnroll(t, csrPem)).status).toBe(200);
  });

  it('refuses hostile enrollment input: oversized bodies, wrong types, URLs with credentials', async () => {
    const big = await rawEnroll('a'.repeat(64), `CERTIFICATE REQUEST${'A'.repeat(20_000)}`);
    expect(big.status).toBe(413);
    const typed = await fetch(`${bUrl}/federation/v1/enroll`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: ['x'], csr: { pem: 1 } }),
    });
    expect(typed.status).toBe(400);
    const t = 'b'.repeat(64);
    for (const body of [
      { url: 'http://user:pw@127.0.0.1:1', token: t },
      { url: 'file:///etc/passwd', token: t },
      { url: bUrl, token: 'short' },
      { url: bUrl, token: t, name: '../x' },
    ])
      expect((await ca.send('POST', '/system/peers', { body })).status, JSON.stringify(body)).toBe(400);
  });

  it('gives one winner of a concurrent double claim, and its certificate carries exactly grant id and subject', async () => {
    const g = await newGrant('carol');
    const t = await newToken(String(g.id));
    const [c1, c2] = await Promise.all([certTools.createKeyAndCsr('x'), certTools.createKeyAndCsr('y')]);
    const res = await Promise.all([rawEnroll(t, c1.csrPem), rawEnroll(t, c2.csrPem)]);
    expect(res.map((r) => r.status).sort()).toEqual([200, 410]);
    const win = (await res.find((r) => r.status === 200)!.json()) as {
      certificate: string;
      chain: string[];
      cluster_id: string;
    };
    expect(win.cluster_id).toBe('b');
    const claims = readClaims(certTools.read(win.certificate).extensions);
    expect(claims).toEqual({ ok: true, claims: { grantId: g.id, subject: 'carol' } });
  });

  it('lets A call B over the peer channel and shows what the grant allows', async () => {
    const s = await ca.request<Record<string, unknown>>('GET', '/system/peers/b');
    expect(s.last_success_at).not.toBeNull();
    expect(s.capabilities).toMatchObject({
      grant_id: grantId,
      subject: 'alice',
      resources: ['services', 'jobs'],
      verbs: ['list', 'get', 'replicate'],
      max_rows_per_query: 50,
      max_cpu: '2',
    });
    const list = await ca.request<Array<Record<string, unknown>>>('GET', '/system/peers');
    expect(list.map((p) => p.name)).toEqual(['b']);
  });
});

describe('the peer channel guard', () => {
  it('refuses a certificate of another CA in the TLS handshake (no HTTP answer)', async () => {
    const other = await strangerCa();
    const g = await newGrant();
    const forged = await forgeClient(other, [
      utf8Ext(OID_GRANT_ID, String(g.id)),
      utf8Ext(OID_SUBJECT, 'alice'),
    ]);
    const caB = await managerCa(b.store, b.dataDir);
    const r = await mtlsGet(`${bPeer}/federation/v1/capabilities`, {
      ca: caB.certPem,
      cert: forged.certPem,
      key: forged.keyPem,
    });
    expect(r.status).toBeUndefined();
    expect(r.error).toBeDefined();
    const none = await mtlsGet(`${bPeer}/federation/v1/capabilities`, { ca: caB.certPem });
    expect(none.status).toBeUndefined();
  });

  it('refuses malformed OIDs, an unrecorded serial, and grant X acting for grant Y’s subject, all 401 alike', async () => {
    const caB = await managerCa(b.store, b.dataDir);
    const x = await b.store.trust.getGrant((await a.store.trust.getPeer('b'))!.grantId);
    const y = await newGrant('bob');
    const cases = [
      [utf8Ext(OID_GRANT_ID, x!.id)], // no subject
      [utf8Ext(OID_GRANT_ID, x!.id), utf8Ext(OID_GRANT_ID, x!.id), utf8Ext(OID_SUBJECT, 'alice')], // duplicate
      [utf8Ext(OID_GRANT_ID, 'grt_../../etc'), utf8Ext(OID_SUBJECT, 'alice')], // bad value
      [utf8Ext(OID_GRANT_ID, x!.id), utf8Ext(OID_SUBJECT, 'alice')], // right claims, serial not recorded
      [utf8Ext(OID_GRANT_ID, x!.id), utf8Ext(OID_SUBJECT, String(y.subject_user))], // X acting as Y's subject
      [utf8Ext(OID_GRANT_ID, String(y.id)), utf8Ext(OID_SUBJECT, 'bob')], // Y is pending
    ];
    const bodies = new Set<string>();
    for (const exts of cases) {
      const f = await forgeClient(caB, exts);
      const r = await mtlsGet(`${bPeer}/federation/v1/capabilities`, {
        ca: caB.certPem,
        cert: f.certPem,
        key: f.keyPem,
      });
      expect(r.status).toBe(401);
      bodies.add(JSON.stringify(r.body));
    }
    // One generic denial: nothing tells which check failed or that a grant exists.
    expect([...bodies]).toEqual([
      JSON.stringify({ code: 'UNAUTHORIZED', message: 'peer not authorized', statusCode: 401 }),
    ]);
  });
});

const svc = (name: string, owner: string, extra: Partial<Service> = {}): Service => ({
  name,
  image: 'alpine',
  script: 'echo hi',
  cpu: '0.5',
  memory: '128Mi',
  log_level: 'INFO',
  visibility: 'private',
  token: 'e'.repeat(64),
  owner,
  environment: { variables: {}, secrets: { api_key: 'never-shown' } },
  ...extra,
});

describe('scope over the channel: POST /federation/v1/list/services', () => {
  const enrollAs = async (name: string, s: Record<string, unknown>) => {
    const g = await cb.request<{ id: string }>('POST', '/system/grants', {
      body: { peer: 'a', subject: 'alice', scope: s },
    });
    await ca.request('POST', '/system/peers', { body: { url: bUrl, token: await newToken(g.id), name } });
    const p = (await a.store.trust.getPeer(name))!;
    const box = createSecretBox(await loadSecretKey(undefined, a.dataDir));
    return { ca: p.caPem, cert: p.certPem, key: box.open(p.keySealed) };
  };

  it('honours the row cap with paging, the subject’s own rights and filters that only narrow; exclusions are 403', async () => {
    await b.store.createService(svc('s1', 'alice'));
    await b.store.createService(svc('s2', 'zed', { visibility: 'public', federation: { group_id: 'g1' } }));
    await b.store.createService(svc('s3', 'zed', { visibility: 'public', federation: { group_id: 'g2' } }));
    await b.store.createService(svc('s4', 'zed')); // private to zed: alice may not see it
    await b.store.createService(
      svc('s5', 'zed', {
        visibility: 'restricted',
        allowed_users: ['alice'],
        federation: { group_id: 'g1' },
      }),
    );
    const tls = await enrollAs('rows', { resources: ['services'], verbs: ['list'], max_rows_per_query: 2 });
    const url = `${bPeer}/federation/v1/list/services`;
    // The services went into b's store behind its back: b's service cache (2 s) may still hold
    // an earlier, empty listing (CI saw []). Ask until it has been refreshed.
    let first = await mtlsPost(url, tls, { limit: 1000 });
    for (const deadline = Date.now() + 10_000; first.body?.rows?.length === 0 && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 200));
      first = await mtlsPost(url, tls, { limit: 1000 });
    }
    expect(first.status).toBe(200);
    expect(first.body.rows.map((r: { name: string }) => r.name)).toEqual(['s1', 's2']);
    expect(JSON.stringify(first.body)).not.toContain('never-shown');
    const second = await mtlsPost(url, tls, { cursor: first.body.next_cursor });
    expect(second.body.rows.map((r: { name: string }) => r.name)).toEqual(['s3', 's5']);
    expect(second.body.next_cursor).toBeNull();
    const g1 = await mtlsPost(url, tls, { filter: { include_groups: ['g1'] } });
    expect(g1.body.rows.map((r: { name: string }) => r.name)).toEqual(['s2', 's5']);
    const mine = await mtlsPost(url, tls, { filter: { include_personal: true } });
    expect(mine.body.rows.map((r: { name: string }) => r.name)).toEqual(['s1']);
    expect((await mtlsPost(url, tls, { filter: { widen: true } })).status).toBe(400);
    expect((await mtlsPost(url, tls, { limit: -1 })).status).toBe(400);

    // The grant narrows to group g2: asking for g1 cannot widen it.
    const narrow = await enrollAs('narrow', {
      resources: ['services'],
      verbs: ['list'],
      filters: { services: { include_groups: ['g2'] } },
    });
    const widened = await mtlsPost(url, narrow, { filter: { include_groups: ['g1', 'g2'] } });
    expect(widened.body.rows.map((r: { name: string }) => r.name)).toEqual(['s3']);

    const excluded = await enrollAs('excl', {
      resources: ['services', 'jobs'],
      verbs: ['list'],
      excluded_resources: ['services'],
    });
    const denied = await mtlsPost(url, excluded, {});
    expect(denied).toMatchObject({ status: 403, body: { code: 'FORBIDDEN', message: 'forbidden by grant' } });
    const noVerb = await enrollAs('getonly', { resources: ['services'], verbs: ['get'] });
    expect((await mtlsPost(url, noVerb, {})).status).toBe(403);
  });
});

describe('renewal', () => {
  it('swaps certificates without breaking calls in flight; the old one works only for a grace period', async () => {
    const g = await newGrant('erin');
    await ca.request('POST', '/system/peers', {
      body: { url: bUrl, token: await newToken(String(g.id)), name: 'b3' },
    });
    const before = (await a.store.trust.getPeer('b3'))!;
    const boxA = createSecretBox(await loadSecretKey(undefined, a.dataDir));
    const probes = Array.from({ length: 12 }, () =>
      ca.request<Record<string, unknown>>('GET', '/system/peers/b3'),
    );
    const renewed = await ca.request<Record<string, unknown>>('POST', '/system/peers/b3/renew');
    const results = await Promise.all(probes);
    for (const r of results) expect(r.capabilities).toMatchObject({ grant_id: g.id });
    expect(renewed.state).toBe('active');
    expect(renewed.cert_serial).not.toBe(before.certSerial);
    const onB = await cb.request<Record<string, unknown>>('GET', `/system/grants/${g.id}`);
    expect(onB.cert_serial).toBe(renewed.cert_serial);
    const after = await ca.request<Record<string, unknown>>('GET', '/system/peers/b3');
    expect(after.capabilities).toMatchObject({ grant_id: g.id });
    // The previous certificate is still accepted (grace for calls in flight)…
    const old = await mtlsGet(`${bPeer}/federation/v1/capabilities`, {
      ca: before.caPem,
      cert: before.certPem,
      key: boxA.open(before.keySealed),
    });
    expect(old.status).toBe(200);
    // …and the new key is a new key, sealed.
    const now = (await a.store.trust.getPeer('b3'))!;
    expect(now.keySealed).not.toBe(before.keySealed);
    expect(boxA.open(now.keySealed)).not.toBe(boxA.open(before.keySealed));
  });
});

describe('revocation and failures', () => {
  it('revoke → the next request fails at TLS and A shows the peer revoked', async () => {
    await ca.request('GET', '/system/peers/b'); // a keep-alive connection is open now
    const grantId = (await a.store.trust.getPeer('b'))!.grantId;
    const revoked = await cb.request<Record<string, unknown>>('POST', `/system/grants/${grantId}/revoke`, {
      body: { reason: 'done' },
    });
    expect(revoked).toMatchObject({ status: 'revoked', revoke_reason: 'done' });
    const crl = await (await fetch(`${bUrl}/federation/v1/crl`)).text();
    const caB = await managerCa(b.store, b.dataDir);
    expect(await certTools.revokedSerials(crl, caB.certPem)).toContain(revoked.cert_serial);
    // Straight over TLS with A's own certificate: no HTTP answer at all.
    const p = (await a.store.trust.getPeer('b'))!;
    const boxA = createSecretBox(await loadSecretKey(undefined, a.dataDir));
    const direct = await mtlsGet(`${bPeer}/federation/v1/capabilities`, {
      ca: p.caPem,
      cert: p.certPem,
      key: boxA.open(p.keySealed),
    });
    expect(direct.status).toBeUndefined();
    const s = await ca.request<Record<string, unknown>>('GET', '/system/peers/b');
    expect(s.state).toBe('revoked');
    expect(s.capabilities).toBeUndefined();
  });

  it('a dropped connection (B gone) does not revoke: the peer stays active with the failure recorded', async () => {
    const g = await newGrant('dave');
    const t = await newToken(String(g.id));
    await ca.request('POST', '/system/peers', { body: { url: bUrl, token: t, name: 'b2' } });
    expect((await ca.request<Record<string, unknown>>('GET', '/system/peers/b2')).state).toBe('active');
    await b.close();
    const s = await ca.request<Record<string, unknown>>('GET', '/system/peers/b2');
    expect(s.state).toBe('active');
    expect(s.last_failure_at).not.toBeNull();
    expect(s.last_error).toMatch(/unreachable/);
    // A renewal that fails (B gone) degrades the peer; it still is not revoked.
    const r = await ca.request<Record<string, unknown>>('POST', '/system/peers/b2/renew');
    expect(r.state).toBe('degraded');
    expect(r.last_error).toMatch(/renewal failed/);
    await ca.send('DELETE', '/system/peers/b2');
    expect((await ca.send('GET', '/system/peers/b2')).status).toBe(404);
  });
});
