// Red-team findings of issue #11 that need real managers talking to each other: two
// `flotilla up` processes (a, b) trusting one real OIDC provider with two users, and a
// loopback "peer" that answers with marker bodies. Forged worker annotations (6), SSRF and
// echoed peer bodies (7), a worker's token rotating with its coordinator (10), and one
// user's `clusters` entry poisoning the status cache for everyone (13).
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlotillaClient, jobsApi } from '../../client/api-client.ts';
import { type ClusterProcess, type Harness, startClusters } from '../support/cluster-harness.ts';
import { allJobs, CACHE_ROUND_MS, sleep, waitJobsEnded } from '../support/delegation.ts';
import {
  type FakePeer,
  type FakePeerHandler,
  sendJson,
  sendText,
  startFakePeer,
  statusBody,
} from '../support/fake-peer.ts';
import { type FederationView, syncStates, waitFor } from '../support/federation.ts';
import { type OidcProviderFixture, startOidcProvider } from '../support/oidc-provider.ts';

const ALICE = 'alice@egi.example';
const BOB = 'bob@egi.example';
/** Never to be seen by any caller, in any answer, error, sync state or log. */
const MARKER = `peer-body-marker-${randomBytes(6).toString('hex')}`;
/** The coordinator's secret: must never reach a service someone else made. */
const SECRET = `coordinator-secret-${randomBytes(6).toString('hex')}`;

const ENV_SCRIPT = '#!/bin/sh\necho "--- env"\nenv | sort\necho "--- end"\n';

/**
 * The marker peer. Under /evil and /full it plays an OSCAR cluster at fixed paths; anywhere
 * else — the path a `?` or `#` in an endpoint would pick — it answers 200 with the marker.
 */
const markerPeer: FakePeerHandler = (req, res) => {
  const path = req.url.split('?')[0];
  if (path === '/full/system/status') return sendJson(res, 200, statusBody(0, { note: MARKER }));
  if (path === '/evil/system/status') return sendJson(res, 200, statusBody(4000, { note: MARKER }));
  if (path.startsWith('/evil/system/services')) {
    if (req.method === 'GET') return sendJson(res, 404, { code: 'SERVICE_NOT_FOUND', message: MARKER });
    if (req.method === 'DELETE') return sendText(res, 204, '');
    if (req.body.includes('ssrf-atomic')) return sendText(res, 500, `boom ${MARKER}`);
    return sendJson(res, 400, { code: 'BAD_REQUEST', message: `refused: ${MARKER}` });
  }
  if (req.method === 'POST' && path.startsWith('/evil/job/')) {
    return sendJson(res, 201, { job_id: 'remote-1', note: MARKER });
  }
  // The logs path, but not the shape of a job log (no X-Job-Status, not text/plain).
  if (path.startsWith('/evil/system/logs/')) return sendText(res, 200, `<h1>${MARKER}</h1>`, 'text/html');
  sendText(res, 200, MARKER);
};

describe('federation hardening with real managers (#11)', () => {
  let idp: OidcProviderFixture;
  let h: Harness;
  let a: ClusterProcess;
  let b: ClusterProcess;
  let peer: FakePeer;
  const tokens: Record<string, string> = {};
  const as = (c: ClusterProcess, who: string) => new FlotillaClient({ endpoint: c.url, token: tokens[who] });

  beforeAll(async () => {
    idp = await startOidcProvider();
    peer = await startFakePeer(markerPeer);
    const env = { FLOTILLA_OIDC_ISSUERS: idp.issuer };
    h = await startClusters(
      [
        // a: half a core (a one-core job is delegated at intake); debug: the log holds all.
        { id: 'a', args: ['--cpus', '0.5', '--log-level', 'debug'], env },
        { id: 'b', args: ['--cpus', '2'], env },
      ],
      { adminPassword: 'pw', parallel: 2, startTimeoutMs: 150_000, prefix: 'flotilla-hard-e2e-' },
    );
    a = h.get('a');
    b = h.get('b');
    for (const who of [ALICE, BOB]) tokens[who] = (await idp.mintTokens(who)).accessToken;
  }, 240_000);

  afterAll(async () => {
    await h?.close();
    await peer?.close();
    await idp?.stop();
  });

  const bAdmin = () => ({ endpoint: b.url, auth_user: 'oscar', auth_password: b.adminPassword });
  const send = async (client: FlotillaClient, method: string, path: string, body?: unknown) => {
    const res = await client.send(method, path, { body, timeoutMs: 120_000 });
    const text = await res.text();
    return { status: res.status, text, json: text ? (JSON.parse(text) as any) : undefined };
  };
  const fedView = (name: string) => a.client.request<FederationView>('GET', `/system/federation/${name}`);

  // ---------------------------------------------------------------- 6 and 10

  it('a service pre-made with forged worker annotations never gets the coordinator’s update or secrets (#11.6)', async () => {
    const forged = {
      'oscar.grycap/origin-cluster': 'a',
      'oscar.grycap/origin-service': 'fw',
      'oscar.grycap/federation-worker': 'true',
    };
    const bobsService = {
      name: 'fw-b',
      image: 'alpine',
      script: ENV_SCRIPT,
      annotations: forged,
      federation: { topology: 'mesh', members: [], revision: 0 },
    };
    const refused = await send(as(b, BOB), 'POST', '/system/services', bobsService);
    expect(refused.status, refused.text).toBe(400);
    expect(refused.json.message).toMatch(/oscar\.grycap\//);
    // Bob holds the name anyway, even posing with a coordinator's headers and a token of his own.
    const posing = await as(b, BOB).send('POST', '/system/services', {
      body: bobsService,
      headers: { 'x-flotilla-origin': 'a/fw', 'x-flotilla-worker-token': 'f'.repeat(64) },
    });
    if (posing.status !== 201) {
      const plain = await send(as(b, BOB), 'POST', '/system/services', {
        name: 'fw-b',
        image: 'alpine',
        script: ENV_SCRIPT,
      });
      expect(plain.status, plain.text).toBe(201);
    }

    // Alice federates "fw" onto b with b's admin credentials; fw-b is taken, fw-ok is not.
    const created = await send(as(a, ALICE), 'POST', '/system/services', {
      name: 'fw',
      image: 'alpine',
      script: '#!/bin/sh\necho coordinator\n',
      cpu: '0.1',
      memory: '64Mi',
      visibility: 'public',
      environment: { variables: {}, secrets: { API_KEY: SECRET } },
      clusters: { b: bAdmin() },
      federation: {
        topology: 'star',
        deployment: 'best-effort',
        members: [
          { type: 'oscar', cluster_id: 'b', service_name: 'fw-b' },
          { type: 'oscar', cluster_id: 'b', service_name: 'fw-ok' },
        ],
      },
    });
    expect(created.status, created.text).toBe(201);
    const byName = Object.fromEntries(
      (created.json.members as Array<{ service_name: string; status: string }>).map((x) => [
        x.service_name,
        x.status,
      ]),
    );
    expect(byName).toEqual({ 'fw-b': 'exists', 'fw-ok': 'created' });
    const settled = await waitFor(
      async () => {
        const s = syncStates(await fedView('fw')).get('b/fw-b');
        if (!s || s.state === 'pending') throw new Error(`b/fw-b still ${JSON.stringify(s)}`);
        return s;
      },
      { timeoutMs: 60_000, what: 'the outbox to try b/fw-b' },
    );
    expect(settled.state).toBe('failed');

    // Bob edits his service as OSCAR clients do (GET, edit, PUT) and runs it: no secret.
    const mine = (await as(b, BOB).getService('fw-b')) as Record<string, any>;
    await as(b, BOB).send('PUT', '/system/services', { body: { ...mine, script: ENV_SCRIPT } });
    const job = await jobsApi(as(b, BOB)).submit('fw-b', Buffer.from('x').toString('base64'));
    await waitJobsEnded(as(b, BOB), 'fw-b', [job.job_id]);
    const { text } = await jobsApi(as(b, BOB)).log('fw-b', job.job_id);
    expect(text).toContain('--- env');
    expect(text).not.toContain(SECRET);
    const stored = (await b.client.getService('fw-b')) as Record<string, any>;
    expect(Object.keys(stored.environment?.secrets ?? {})).not.toContain('API_KEY');
    expect(stored.owner).toBe(BOB);

    // The real worker was made and is the coordinator's.
    const worker = (await b.client.getService('fw-ok')) as Record<string, any>;
    expect(worker.annotations).toMatchObject({ 'oscar.grycap/federation-worker': 'true' });
    expect(worker.environment.secrets.API_KEY).toBe('***');
  }, 240_000);

  it('the coordinator keeps updating its worker, whose token rotates when visibility narrows; a cascade delete spares the same-named stranger (#11.6, #11.10)', async () => {
    const coordinator = (await as(a, ALICE).getService('fw')) as Record<string, any>;
    const before = ((await b.client.getService('fw-ok')) as Record<string, any>).token as string;
    expect(before).toMatch(/^[0-9a-f]{64}$/);
    const narrowed = await send(as(a, ALICE), 'PUT', '/system/services', {
      ...coordinator,
      visibility: 'private',
    });
    expect(narrowed.status, narrowed.text).toBe(204);
    const rotated = await waitFor(
      async () => {
        const t = ((await b.client.getService('fw-ok')) as Record<string, any>).token as string;
        if (t === before) throw new Error('worker token not rotated yet');
        return t;
      },
      { timeoutMs: 30_000, what: 'the worker token to rotate' },
    );
    expect(rotated).toMatch(/^[0-9a-f]{64}$/);
    expect(((await b.client.getService('fw-ok')) as Record<string, any>).visibility).toBe('private');
    // With the rotated token in place the next change still lands.
    const again = (await as(a, ALICE).getService('fw')) as Record<string, any>;
    const changed = await send(as(a, ALICE), 'PUT', '/system/services', {
      ...again,
      image: 'alpine',
      script: '#!/bin/sh\necho coordinator v2\n',
    });
    expect(changed.status, changed.text).toBe(204);
    await waitFor(
      async () => {
        const w = (await b.client.getService('fw-ok')) as Record<string, any>;
        if (!String(w.script).includes('v2')) throw new Error('worker not updated yet');
      },
      { timeoutMs: 30_000, what: 'the worker to take the change' },
    );

    const gone = await send(as(a, ALICE), 'DELETE', '/system/services/fw');
    expect(gone.status, gone.text).toBe(204);
    await waitFor(
      async () => {
        const res = await b.client.send('GET', '/system/services/fw-ok');
        if (res.status !== 404) throw new Error(`fw-ok still there (${res.status})`);
      },
      { timeoutMs: 30_000, what: 'the worker to be deleted' },
    );
    expect(((await b.client.getService('fw-b')) as Record<string, any>).owner).toBe(BOB);
  }, 120_000);

  // ---------------------------------------------------------------- 13

  it('one user’s clusters entry for a cluster does not change what another user’s service sees of it (#11.13)', async () => {
    // Bob's service sorts first and says cluster "b" is his endpoint, which reports no room.
    const poison = await send(as(a, BOB), 'POST', '/system/services', {
      name: 'aaa-poison',
      image: 'alpine',
      script: 'echo',
      replicas: [{ type: 'oscar', cluster_id: 'b', service_name: 'nothing' }],
      clusters: { b: { endpoint: `${peer.url}/full`, auth_user: 'bob', auth_password: 'bobs' } },
    });
    expect(poison.status, poison.text).toBe(201);
    const victim = await send(as(a, ALICE), 'POST', '/system/services', {
      name: 'zz-victim',
      image: 'alpine',
      script: '#!/bin/sh\necho victim ran\n',
      cpu: '1',
      memory: '64Mi',
      clusters: { b: bAdmin() },
      federation: {
        topology: 'star',
        members: [{ type: 'oscar', cluster_id: 'b', service_name: 'zz-victim-b' }],
      },
    });
    expect(victim.status, victim.text).toBe(201);
    await sleep(2 * CACHE_ROUND_MS);
    const job = await jobsApi(as(a, ALICE)).submit('zz-victim', Buffer.from('x').toString('base64'));
    expect(job.delegated_to, 'the real b has room').toBe('b');
    // And bob's own service sees his endpoint's view (no room), not b's.
    const bobs = await jobsApi(as(a, BOB)).submit('aaa-poison', Buffer.from('x').toString('base64'));
    expect(bobs.delegated_to).toBeNull();
  }, 120_000);

  // ---------------------------------------------------------------- 7

  it('an atomic create against a peer answering with bodies shows none of them (#11.7)', async () => {
    const res = await send(as(a, ALICE), 'POST', '/system/services', {
      name: 'ssrf-atomic',
      image: 'alpine',
      script: 'echo',
      clusters: { m1: { endpoint: `${peer.url}/evil?x=`, auth_user: 'oscar', auth_password: 'm-pw' } },
      federation: { members: [{ type: 'oscar', cluster_id: 'm1', service_name: 'ssrf-atomic-m' }] },
    });
    expect(res.status, res.text).toBe(502);
    expect(res.json.code).toBe('FEDERATION_FAILED');
    expect(res.text).not.toContain(MARKER);
    expect(res.text).toMatch(/500/);
  }, 60_000);

  it('a best-effort create’s report and its sync state show no peer body (#11.7)', async () => {
    const res = await send(as(a, ALICE), 'POST', '/system/services', {
      name: 'ssrf-be',
      image: 'alpine',
      script: 'echo',
      clusters: { m2: { endpoint: `${peer.url}/evil#frag`, auth_user: 'oscar', auth_password: 'm-pw' } },
      federation: {
        deployment: 'best-effort',
        members: [{ type: 'oscar', cluster_id: 'm2', service_name: 'ssrf-be-m' }],
      },
    });
    expect(res.status, res.text).toBe(201);
    expect(res.text).not.toContain(MARKER);
    const sync = await waitFor(
      async () => {
        const s = syncStates(await fedView('ssrf-be')).get('m2/ssrf-be-m');
        if (!s?.last_error || s.last_error === 'retrying')
          throw new Error(`no error yet: ${JSON.stringify(s)}`);
        return s;
      },
      { timeoutMs: 30_000, what: 'the outbox to record an error' },
    );
    expect(sync.last_error).not.toContain(MARKER);
    expect(sync.last_error).toMatch(/400/);
    const view = await a.client.send('GET', '/system/federation/ssrf-be');
    expect(await view.text()).not.toContain(MARKER);
  }, 60_000);

  it('a job delegated there: its listing and log show no peer body (#11.7)', async () => {
    const made = await send(as(a, ALICE), 'POST', '/system/services', {
      name: 'ssrf-dlg',
      image: 'alpine',
      script: 'echo',
      cpu: '1',
      memory: '64Mi',
      replicas: [{ type: 'oscar', cluster_id: 'm3', service_name: 'remote' }],
      clusters: { m3: { endpoint: `${peer.url}/evil?`, auth_user: 'oscar', auth_password: 'm-pw' } },
    });
    expect(made.status, made.text).toBe(201);
    await sleep(2 * CACHE_ROUND_MS);
    const job = await jobsApi(as(a, ALICE)).submit('ssrf-dlg', Buffer.from('x').toString('base64'));
    expect(job.delegated_to).toBe('m3');
    await sleep(CACHE_ROUND_MS); // the mirror asked the peer at least once
    const listing = await a.client.send('GET', '/system/logs/ssrf-dlg');
    expect(await listing.text()).not.toContain(MARKER);
    const log = await as(a, ALICE).send('GET', `/system/logs/ssrf-dlg/${job.job_id}`);
    const text = await log.text();
    expect(log.status, text).toBe(200);
    expect(text).not.toContain(MARKER);
    expect(Object.keys(await allJobs(as(a, ALICE), 'ssrf-dlg'))).toContain(job.job_id);
  }, 60_000);

  it('the peer saw only fixed OSCAR paths under each endpoint, and the log holds no peer body (#11.7)', async () => {
    expect(peer.seen.length).toBeGreaterThan(0);
    for (const r of peer.seen) {
      const [path, query] = r.url.split('?');
      expect(path, r.url).toMatch(/^\/(evil|full)\/(system\/(status|services|logs)|job)(\/|$)/);
      expect([undefined, 'cascade=false'], r.url).toContain(query);
    }
    expect(await a.log()).not.toContain(MARKER);
  });

  it('no service names the peer any more: nothing polls it (#11.7)', async () => {
    for (const [who, name] of [
      [BOB, 'aaa-poison'],
      [ALICE, 'ssrf-be'],
      [ALICE, 'ssrf-dlg'],
      [ALICE, 'zz-victim'],
    ] as const) {
      const res = await send(as(a, who), 'DELETE', `/system/services/${name}`);
      expect(res.status, `${name}: ${res.text}`).toBe(204);
    }
    await sleep(2 * CACHE_ROUND_MS);
    const count = peer.seen.length;
    await sleep(3 * CACHE_ROUND_MS);
    expect(peer.seen.slice(count).map((r) => `${r.method} ${r.url}`)).toEqual([]);
    expect(await a.log()).not.toContain(MARKER);
  }, 60_000);
});
