// Red-team findings of issue #11 against one real manager in process (fastify inject), with
// a real OIDC provider and three users: what a delegation token may do (8), whose jobs a
// user of a public service sees (9), who sees a service token and when it rotates (10),
// throttling of failed logins (14), passwords inside endpoint URLs (15), validation of the
// federation member routes (16), and --peer-allow (7). Each case reproduces the attack.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgliteStore } from '../../src/adapters/store-pglite/pglite-store.ts';
import { loadConfig } from '../../src/config/config.ts';
import { createLogger } from '../../src/main/logger.ts';
import { createManager, type Manager } from '../../src/main/manager.ts';
import { type FakePeer, sendJson, startFakePeer, statusBody } from '../support/fake-peer.ts';
import { ADMIN_PASSWORD, basic } from '../support/in-process.ts';
import { type OidcProviderFixture, startOidcProvider } from '../support/oidc-provider.ts';
import { waitFor } from '../support/wait.ts';

const ALICE = 'alice@egi.example';
const BOB = 'bob@egi.example';
const CAROL = 'carol@egi.example';
const ADMIN = { authorization: basic() };

interface Running {
  manager: Manager;
  /** Every log line the manager wrote (debug level). */
  logs: string[];
  close(): Promise<void>;
}

/** A manager in process, as startInProcess makes one, whose log lines are kept for checks. */
const startManager = async (flags: Record<string, string>): Promise<Running> => {
  const dataDir = await mkdtemp(join(tmpdir(), 'flotilla-hardening-'));
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      logs.push(String(chunk));
      done();
    },
  });
  const config = loadConfig(
    { dataDir, adminPassword: ADMIN_PASSWORD, logLevel: 'debug', port: '0', ...flags },
    {},
  );
  const logger = createLogger({ level: 'debug', clusterId: config.clusterId, destination });
  const store = await PgliteStore.open(undefined);
  const manager = await createManager(config, { store, logger });
  return {
    manager,
    logs,
    async close() {
      await manager.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
};

let idp: OidcProviderFixture;
let m: Running;
const tokens: Record<string, string> = {};
const bearer = (who: string) => ({ authorization: `Bearer ${tokens[who]}` });

const call = (
  headers: Record<string, string>,
  opts: InjectOptions & { remoteAddress?: string },
): Promise<LightMyRequestResponse> =>
  m.manager.http.inject({ ...opts, headers: { ...headers, ...opts.headers } });

const create = async (headers: Record<string, string>, body: Record<string, unknown>) => {
  const res = await call(headers, { method: 'POST', url: '/system/services', payload: body });
  expect(res.statusCode, res.body).toBe(201);
};
const getService = (headers: Record<string, string>, name: string) =>
  call(headers, { method: 'GET', url: `/system/services/${name}` });
const tokenOf = async (name: string): Promise<string> => {
  const res = await getService(ADMIN, name);
  expect(res.statusCode, res.body).toBe(200);
  return res.json().token as string;
};
/** POST /job with `input` as the input file (base64, as OSCAR's clients send it). */
const submit = async (headers: Record<string, string>, name: string, input = 'x') => {
  const res = await call(headers, {
    method: 'POST',
    url: `/job/${name}`,
    payload: Buffer.from(input).toString('base64'),
    headers: { 'content-type': 'application/octet-stream' },
  });
  expect(res.statusCode, res.body).toBe(201);
  return res.json() as { job_id: string; delegated_to: string | null };
};
const jobIds = async (headers: Record<string, string>, name: string): Promise<string[]> => {
  const res = await call(headers, { method: 'GET', url: `/system/logs/${name}` });
  expect(res.statusCode, res.body).toBe(200);
  return Object.keys(res.json().jobs).sort();
};

beforeAll(async () => {
  idp = await startOidcProvider();
  // Half a core: a job asking for one core never fits here and is delegated at intake.
  m = await startManager({ oidcIssuers: idp.issuer, cpus: '0.5', clusterId: 'home' });
  for (const who of [ALICE, BOB, CAROL]) tokens[who] = (await idp.mintTokens(who)).accessToken;
}, 60_000);

afterAll(async () => {
  await m?.close();
  await idp?.stop();
});

// ------------------------------------------------------------------ 8

describe('a delegation token (dlg_…) reads /system/config and nothing else (#11.8)', () => {
  let replica: FakePeer;
  let dlg: string;

  beforeAll(async () => {
    // A cluster this one delegates to: it keeps the X-Delegation-Token it is handed.
    replica = await startFakePeer((req, res) => {
      if (req.url === '/system/status') return sendJson(res, 200, statusBody(4000));
      if (req.method === 'POST' && req.url.startsWith('/job/')) return sendJson(res, 201, { job_id: 'r-1' });
      sendJson(res, 404, { code: 'NOT_FOUND', message: 'not here' });
    });
    await create(bearer(ALICE), {
      name: 'dlg-origin',
      image: 'alpine',
      script: 'echo hi',
      cpu: '1',
      memory: '64Mi',
      replicas: [{ type: 'oscar', cluster_id: 'rep', service_name: 'dlg-remote' }],
      clusters: { rep: { endpoint: replica.url, auth_user: 'oscar', auth_password: 'rep-pw' } },
    });
    await m.manager.statusCache.refresh();
    const accepted = await submit(bearer(ALICE), 'dlg-origin');
    expect(accepted.delegated_to).toBe('rep');
    const sent = replica.seen.find((r) => r.method === 'POST' && r.url.startsWith('/job/'));
    dlg = String(sent?.headers['x-delegation-token'] ?? '');
    expect(dlg).toMatch(/^dlg_/);
  });
  afterAll(async () => {
    await replica?.close();
  });

  const asReplica = () => ({ authorization: `Bearer ${dlg}` });

  it('gets storage keys from /system/config', async () => {
    const res = await call(asReplica(), { method: 'GET', url: '/system/config' });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().minio_provider.access_key).not.toBe('');
  });

  it('cannot create a service or a bucket (403), and nothing is made', async () => {
    const svc = await call(asReplica(), {
      method: 'POST',
      url: '/system/services',
      payload: { name: 'dlg-made', image: 'alpine', script: 'env' },
    });
    expect(svc.statusCode, svc.body).toBe(403);
    expect((await getService(ADMIN, 'dlg-made')).statusCode).toBe(404);
    const bucket = await call(asReplica(), {
      method: 'POST',
      url: '/system/buckets',
      payload: { bucket_name: 'dlg-bucket' },
    });
    expect(bucket.statusCode, bucket.body).toBe(403);
    const buckets = await call(ADMIN, { method: 'GET', url: '/system/buckets' });
    expect(buckets.body).not.toContain('dlg-bucket');
  });

  it('cannot read, change, invoke or delete anything else (403)', async () => {
    const attempts: InjectOptions[] = [
      { method: 'GET', url: '/system/services' },
      { method: 'GET', url: '/system/services/dlg-origin' },
      {
        method: 'PUT',
        url: '/system/services',
        payload: { name: 'dlg-origin', image: 'alpine', script: 'env' },
      },
      { method: 'DELETE', url: '/system/services/dlg-origin' },
      { method: 'POST', url: '/system/federation/dlg-origin', payload: { members: [] } },
      { method: 'GET', url: '/system/logs/dlg-origin' },
      { method: 'DELETE', url: '/system/logs/dlg-origin?all=true' },
      { method: 'GET', url: '/system/buckets' },
      { method: 'POST', url: '/job/dlg-origin', payload: 'x' },
    ];
    for (const a of attempts) {
      const res = await call(asReplica(), a);
      expect(res.statusCode, `${a.method} ${a.url}: ${res.body}`).toBe(403);
    }
    expect((await getService(ADMIN, 'dlg-origin')).json().script).toBe('echo hi');
  });
});

// ------------------------------------------------------------------ 9

describe('on a public or restricted service each user sees and deletes only their own jobs (#11.9)', () => {
  const ended = async (name: string, ids: string[]) =>
    waitFor(
      async () => {
        const res = await call(ADMIN, { method: 'GET', url: `/system/logs/${name}` });
        const jobs = res.json().jobs as Record<string, { status: string }>;
        return ids.every((id) => ['Succeeded', 'Failed'].includes(jobs[id]?.status ?? ''));
      },
      30_000,
      `jobs of ${name} ended`,
    );

  it('bob lists, reads and deletes only his own jobs of alice’s public service', async () => {
    await create(bearer(ALICE), {
      name: 'pub-jobs',
      image: 'alpine',
      script: 'echo "job for $(cat "$INPUT_FILE_PATH")"',
      cpu: '0.1',
      memory: '64Mi',
      visibility: 'public',
    });
    const bob1 = (await submit(bearer(BOB), 'pub-jobs', 'bob-1')).job_id;
    const bob2 = (await submit(bearer(BOB), 'pub-jobs', 'bob-2')).job_id;
    const carol1 = (await submit(bearer(CAROL), 'pub-jobs', 'carol-1')).job_id;
    const alice1 = (await submit(bearer(ALICE), 'pub-jobs', 'alice-1')).job_id;
    await ended('pub-jobs', [bob1, bob2, carol1, alice1]);

    expect(await jobIds(bearer(BOB), 'pub-jobs')).toEqual([bob1, bob2].sort());
    expect(await jobIds(bearer(CAROL), 'pub-jobs')).toEqual([carol1]);
    expect(await jobIds(bearer(ALICE), 'pub-jobs')).toEqual([bob1, bob2, carol1, alice1].sort());
    expect(await jobIds(ADMIN, 'pub-jobs')).toEqual([bob1, bob2, carol1, alice1].sort());

    // Another user's job is not there for bob: its log, its info and its delete are 404.
    const peek = await call(bearer(BOB), { method: 'GET', url: `/system/logs/pub-jobs/${carol1}` });
    expect(peek.statusCode, peek.body).toBe(404);
    expect(peek.body).not.toContain('carol-1');
    const own = await call(bearer(BOB), { method: 'GET', url: `/system/logs/pub-jobs/${bob1}` });
    expect(own.statusCode).toBe(200);
    expect(own.body).toContain('job for bob-1');
    const del = await call(bearer(BOB), { method: 'DELETE', url: `/system/logs/pub-jobs/${carol1}` });
    expect(del.statusCode, del.body).toBe(404);

    // "Delete every job" deletes bob's, not carol's or alice's.
    const all = await call(bearer(BOB), { method: 'DELETE', url: '/system/logs/pub-jobs?all=true' });
    expect(all.statusCode, all.body).toBe(204);
    expect(await jobIds(bearer(BOB), 'pub-jobs')).toEqual([]);
    expect(await jobIds(bearer(ALICE), 'pub-jobs')).toEqual([carol1, alice1].sort());
    const finished = await call(bearer(CAROL), { method: 'DELETE', url: '/system/logs/pub-jobs' });
    expect(finished.statusCode).toBe(204);
    expect(await jobIds(bearer(ALICE), 'pub-jobs')).toEqual([alice1]);
  });

  it('the same holds for a restricted service', async () => {
    await create(bearer(ALICE), {
      name: 'res-jobs',
      image: 'alpine',
      script: 'echo restricted',
      cpu: '0.1',
      memory: '64Mi',
      visibility: 'restricted',
      allowed_users: [BOB, CAROL],
    });
    const carol1 = (await submit(bearer(CAROL), 'res-jobs')).job_id;
    await ended('res-jobs', [carol1]);
    expect(await jobIds(bearer(BOB), 'res-jobs')).toEqual([]);
    const del = await call(bearer(BOB), { method: 'DELETE', url: '/system/logs/res-jobs?all=true' });
    expect(del.statusCode).toBe(204);
    expect(await jobIds(bearer(CAROL), 'res-jobs')).toEqual([carol1]);
  });
});

describe("a job's delegation decision shows to whoever sees the job, and to no one else (#16)", () => {
  let refuser: FakePeer;
  let replica: FakePeer;

  beforeAll(async () => {
    // Two clusters with room: the first refuses the job (its grant says no), the second takes it.
    refuser = await startFakePeer((req, res) => {
      if (req.url === '/system/status') return sendJson(res, 200, statusBody(4000));
      sendJson(res, 403, { code: 'FORBIDDEN', message: 'grant does not allow delegate' });
    });
    replica = await startFakePeer((req, res) => {
      if (req.url === '/system/status') return sendJson(res, 200, statusBody(4000));
      if (req.method === 'POST' && req.url.startsWith('/job/')) return sendJson(res, 201, { job_id: 'r-2' });
      sendJson(res, 404, { code: 'NOT_FOUND', message: 'not here' });
    });
  });
  afterAll(async () => {
    await refuser?.close();
    await replica?.close();
  });

  it("bob sees why his job went where it did; carol sees neither his job nor its decision; nothing of a replica's address or password", async () => {
    await create(bearer(ALICE), {
      name: 'pub-dlg',
      image: 'alpine',
      script: 'echo hi',
      cpu: '1', // more than this manager's 0.5 cpus: delegated at intake
      memory: '64Mi',
      visibility: 'public',
      replicas: [
        { type: 'oscar', cluster_id: 'ref', service_name: 'dlg-refuses', priority: 0 },
        { type: 'oscar', cluster_id: 'rep', service_name: 'dlg-takes', priority: 1 },
      ],
      clusters: {
        ref: { endpoint: refuser.url, auth_user: 'oscar', auth_password: 'ref-secret-pw' },
        rep: { endpoint: replica.url, auth_user: 'oscar', auth_password: 'rep-secret-pw' },
      },
    });
    await m.manager.statusCache.refresh();
    const bobs = await submit(bearer(BOB), 'pub-dlg', 'bob-job');
    expect(bobs.delegated_to).toBe('rep');
    const carols = await submit(bearer(CAROL), 'pub-dlg', 'carol-job');
    expect(carols.delegated_to).toBe('rep');

    const listed = await call(bearer(BOB), { method: 'GET', url: '/system/logs/pub-dlg' });
    expect(listed.statusCode, listed.body).toBe(200);
    const jobs = listed.json().jobs as Record<string, { delegation: Record<string, unknown> | null }>;
    expect(Object.keys(jobs)).toEqual([bobs.job_id]);
    expect(jobs[bobs.job_id].delegation).toMatchObject({
      trigger: 'intake',
      policy: 'static',
      outcome: 'delegated',
      to: 'rep',
      candidates: [
        { cluster_id: 'ref', service_name: 'dlg-refuses', cache: 'fits', tried: 'refused' },
        { cluster_id: 'rep', service_name: 'dlg-takes', cache: 'fits', tried: 'accepted' },
      ],
      summary:
        'Delegated to rep at intake: no local node had 1 cpu and 64 MiB free. ' +
        'Policy static: ref (4.0 cpu free; credentials or grant refused) before rep (4.0 free).',
    });
    // The owner and the admin see both decisions.
    for (const who of [bearer(ALICE), ADMIN]) {
      const all = (await call(who, { method: 'GET', url: '/system/logs/pub-dlg' })).json().jobs;
      expect(all[bobs.job_id].delegation.to).toBe('rep');
      expect(all[carols.job_id].delegation.to).toBe('rep');
    }
    // Carol: bob's job is not in her listing, and asking for it is a 404 that names nothing of it.
    const hers = (await call(bearer(CAROL), { method: 'GET', url: '/system/logs/pub-dlg' })).json().jobs;
    expect(Object.keys(hers)).toEqual([carols.job_id]);
    const peek = await call(bearer(CAROL), { method: 'GET', url: `/system/logs/pub-dlg/${bobs.job_id}` });
    expect(peek.statusCode).toBe(404);
    expect(peek.body).not.toMatch(/delegat|rep|ref/i);
    // Neither listing carries a replica's address, port or password.
    for (const body of [listed.body, JSON.stringify(hers)]) {
      for (const secret of [
        refuser.url,
        replica.url,
        new URL(replica.url).port,
        new URL(refuser.url).port,
        'ref-secret-pw',
        'rep-secret-pw',
        'http',
      ])
        expect(body).not.toContain(secret);
    }
  });
});

// ------------------------------------------------------------------ 10

describe('service tokens: only the owner and the admin see one; narrowing rotates it (#11.10)', () => {
  const base = { name: 'tok-svc', image: 'alpine', script: 'echo tok', cpu: '0.1', memory: '64Mi' };
  const put = async (body: Record<string, unknown>) => {
    const res = await call(bearer(ALICE), { method: 'PUT', url: '/system/services', payload: body });
    expect(res.statusCode, res.body).toBe(204);
  };
  const invokeWith = (token: string) =>
    call(
      { authorization: `Bearer ${token}` },
      {
        method: 'POST',
        url: '/job/tok-svc',
        payload: 'x',
        headers: { 'content-type': 'application/octet-stream' },
      },
    );

  it('another user of a public service never sees its token, in a read or a listing', async () => {
    await create(bearer(ALICE), { ...base, visibility: 'public' });
    const token = await tokenOf('tok-svc');
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    expect((await getService(bearer(ALICE), 'tok-svc')).json().token).toBe(token);
    const bobRead = await getService(bearer(BOB), 'tok-svc');
    expect(bobRead.statusCode, bobRead.body).toBe(200);
    expect(bobRead.json().token).toBeUndefined();
    expect(bobRead.body).not.toContain(token);
    const bobList = await call(bearer(BOB), { method: 'GET', url: '/system/services' });
    expect(bobList.json().map((s: { name: string }) => s.name)).toContain('tok-svc');
    expect(bobList.body).not.toContain(token);
  });

  it('rotates when visibility narrows (public→restricted, a user removed, restricted→private), not when it widens', async () => {
    const t1 = await tokenOf('tok-svc');
    await put({ ...base, visibility: 'restricted', allowed_users: [BOB, CAROL] });
    const t2 = await tokenOf('tok-svc');
    expect(t2).not.toBe(t1);
    expect((await invokeWith(t1)).statusCode).toBe(401);
    expect((await invokeWith(t2)).statusCode).toBe(201);
    const bobRead = await getService(bearer(BOB), 'tok-svc');
    expect(bobRead.statusCode).toBe(200);
    expect(bobRead.body).not.toContain(t2);

    await put({ ...base, visibility: 'restricted', allowed_users: [BOB, CAROL] });
    expect(await tokenOf('tok-svc'), 'the same users: no rotation').toBe(t2);
    await put({ ...base, visibility: 'restricted', allowed_users: [BOB] });
    const t3 = await tokenOf('tok-svc');
    expect(t3).not.toBe(t2);
    await put({ ...base, visibility: 'private' });
    const t4 = await tokenOf('tok-svc');
    expect(t4).not.toBe(t3);
    expect((await invokeWith(t3)).statusCode).toBe(401);
    await put({ ...base, visibility: 'public' });
    expect(await tokenOf('tok-svc'), 'widening keeps the token').toBe(t4);
  });
});

// ------------------------------------------------------------------ 14

describe('failed logins are throttled per source address (#11.14)', () => {
  const wrongBasic = { authorization: basic('not-the-password') };

  it('after 20 failures in a minute an address gets 429 with Retry-After, even with the right password; others are not affected', async () => {
    const from = '203.0.113.7';
    for (let i = 0; i < 20; i++) {
      const res = await call(wrongBasic, { method: 'GET', url: '/system/info', remoteAddress: from });
      expect(res.statusCode, `attempt ${i + 1}`).toBe(401);
    }
    const blocked = await call(wrongBasic, { method: 'GET', url: '/system/info', remoteAddress: from });
    expect(blocked.statusCode, blocked.body).toBe(429);
    expect(blocked.json().code).toBe('RATE_LIMITED');
    const retry = Number(blocked.headers['retry-after']);
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(retry).toBeLessThanOrEqual(60);
    const right = await call(ADMIN, { method: 'GET', url: '/system/info', remoteAddress: from });
    expect(right.statusCode).toBe(429);
    const elsewhere = await call(ADMIN, {
      method: 'GET',
      url: '/system/info',
      remoteAddress: '203.0.113.8',
    });
    expect(elsewhere.statusCode).toBe(200);
  });

  it('bad bearer tokens count too', async () => {
    const from = '198.51.100.9';
    const statuses: number[] = [];
    for (let i = 0; i < 25; i++) {
      const res = await call(
        { authorization: 'Bearer not-a-token' },
        { method: 'GET', url: '/system/services', remoteAddress: from },
      );
      statuses.push(res.statusCode);
    }
    expect(statuses.slice(0, 20).every((s) => s === 401)).toBe(true);
    expect(statuses.slice(20)).toEqual([429, 429, 429, 429, 429]);
  });
});

// ------------------------------------------------------------------ 15

describe('a password inside an endpoint URL is refused and never echoed (#11.15)', () => {
  const PW = 'pw-in-the-url-4711';
  const leaky = `http://oscar:${PW}@127.0.0.1:9/`;

  it('in a service’s clusters map: 400 naming the field and auth_user/auth_password', async () => {
    const bodies = [
      { name: 'leaky-plain', image: 'alpine', script: 'echo', clusters: { far: { endpoint: leaky } } },
      {
        name: 'leaky-fed',
        image: 'alpine',
        script: 'echo',
        clusters: { far: { endpoint: leaky } },
        federation: { members: [{ type: 'oscar', cluster_id: 'far', service_name: 'leaky-far' }] },
      },
    ];
    for (const body of bodies) {
      const res = await call(bearer(ALICE), { method: 'POST', url: '/system/services', payload: body });
      expect(res.statusCode, res.body).toBe(400);
      expect(res.json().message).toMatch(/clusters\.far\.endpoint/);
      expect(res.json().message).toMatch(/auth_user/);
      expect(res.body).not.toContain(PW);
      expect((await getService(ADMIN, body.name)).statusCode).toBe(404);
    }
  });

  it('in a /system/federation request and an endpoint member: 400, no password', async () => {
    await create(bearer(ALICE), { name: 'leaky-base', image: 'alpine', script: 'echo' });
    const viaClusters = await call(bearer(ALICE), {
      method: 'POST',
      url: '/system/federation/leaky-base',
      payload: {
        members: [{ type: 'oscar', cluster_id: 'far', service_name: 'leaky-far' }],
        clusters: { far: { endpoint: leaky } },
      },
    });
    expect(viaClusters.statusCode, viaClusters.body).toBe(400);
    expect(viaClusters.body).not.toContain(PW);
    const viaEndpoint = await call(bearer(ALICE), {
      method: 'POST',
      url: '/system/services',
      payload: {
        name: 'leaky-endpoint',
        image: 'alpine',
        script: 'echo',
        federation: { members: [{ type: 'endpoint', url: `http://u:${PW}@127.0.0.1:9/hook` }] },
      },
    });
    expect(viaEndpoint.statusCode, viaEndpoint.body).toBe(400);
    expect(viaEndpoint.body).not.toContain(PW);
  });

  it('appears in no listing and no log line', async () => {
    const list = await call(ADMIN, { method: 'GET', url: '/system/services' });
    expect(list.body).not.toContain(PW);
    expect(m.logs.join('')).not.toContain(PW);
  });
});

// ------------------------------------------------------------------ 16

describe('the federation member routes validate their input like services (#11.16)', () => {
  beforeAll(async () => {
    await create(ADMIN, { name: 'fed-input', image: 'alpine', script: 'echo' });
  });

  /** A member list `depth` levels deep, as JSON text (built flat: no recursion here either). */
  const nestedJson = (list: string, depth: number): string => {
    const open: string[] = [];
    for (let i = 0; i < depth; i++)
      open.push(`{"type":"oscar","cluster_id":"home","service_name":"n${i}","members":[`);
    const leaf = '{"type":"oscar","cluster_id":"home","service_name":"leaf"}';
    return `{"${list}":[${open.join('')}${leaf}${']}'.repeat(depth)}]}`;
  };

  for (const route of ['federation', 'replicas']) {
    const list = route === 'replicas' ? 'replicas' : 'members';
    it(`/system/${route}: NUL characters and deep nesting are 400s naming the problem, not 500s`, async () => {
      const cases: Array<[string, unknown]> = [
        ['5,000-deep members', nestedJson(list, 5000)],
        [
          'NUL in a member field',
          { [list]: [{ type: 'oscar', cluster_id: 'home', service_name: 'x', note: 'a\u0000b' }] },
        ],
        [
          'NUL in a clusters key',
          {
            [list]: [{ cluster_id: 'far', service_name: 'x' }],
            clusters: { 'far\u0000': { endpoint: 'http://127.0.0.1:9' } },
          },
        ],
        [
          'a priority of the wrong type',
          { [list]: [{ cluster_id: 'home', service_name: 'x', priority: 'high' }] },
        ],
      ];
      for (const [what, payload] of cases) {
        for (const method of ['POST', 'PUT', 'DELETE'] as const) {
          const res = await call(ADMIN, {
            method,
            url: `/system/${route}/fed-input`,
            headers: { 'content-type': 'application/json' },
            payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
          });
          expect(res.statusCode, `${method} ${what}: ${res.body.slice(0, 300)}`).toBe(400);
          expect(res.json().message, what).toEqual(expect.any(String));
        }
      }
      const res = await call(ADMIN, { method: 'GET', url: `/system/${route}/fed%00input` });
      expect(res.statusCode, res.body).toBe(400);
    });
  }
});

// ------------------------------------------------------------------ 7 (--peer-allow)

describe('--peer-allow limits the addresses the manager calls (#11.7)', () => {
  let locked: Running;
  let peer: FakePeer;

  beforeAll(async () => {
    peer = await startFakePeer((req, res) => {
      if (req.url === '/system/status') return sendJson(res, 200, statusBody(4000));
      sendJson(res, 404, { code: 'NOT_FOUND', message: 'nothing' });
    });
    locked = await startManager({
      peerAllow: '10.0.0.0/8,peers.example.org',
      cpus: '0.5',
      clusterId: 'locked',
    });
  });
  afterAll(async () => {
    await locked?.close();
    await peer?.close();
  });

  const lockedCall = (opts: InjectOptions) =>
    locked.manager.http.inject({ ...opts, headers: { ...ADMIN, ...opts.headers } });

  it('a member on loopback is not called: the create fails naming --peer-allow', async () => {
    const res = await lockedCall({
      method: 'POST',
      url: '/system/services',
      payload: {
        name: 'allow-fed',
        image: 'alpine',
        script: 'echo',
        clusters: { far: { endpoint: peer.url, auth_user: 'oscar', auth_password: 'far-pw' } },
        federation: { members: [{ type: 'oscar', cluster_id: 'far', service_name: 'allow-far' }] },
      },
    });
    expect(res.statusCode, res.body).toBe(502);
    expect(res.body).toMatch(/--peer-allow/);
    expect(peer.seen).toEqual([]);
  });

  it('nor polled for status, nor sent jobs or events', async () => {
    const made = await lockedCall({
      method: 'POST',
      url: '/system/services',
      payload: {
        name: 'allow-dlg',
        image: 'alpine',
        script: 'echo',
        cpu: '1',
        memory: '64Mi',
        replicas: [
          { type: 'oscar', cluster_id: 'far', service_name: 'x' },
          { type: 'endpoint', url: `${peer.url}/hook` },
        ],
        clusters: { far: { endpoint: peer.url, auth_user: 'oscar', auth_password: 'far-pw' } },
      },
    });
    expect(made.statusCode, made.body).toBe(201);
    await locked.manager.statusCache.refresh();
    const job = await lockedCall({
      method: 'POST',
      url: '/job/allow-dlg',
      payload: 'x',
      headers: { 'content-type': 'application/octet-stream' },
    });
    expect(job.statusCode, job.body).toBe(201);
    expect(job.json().delegated_to).toBeNull();
    expect(peer.seen).toEqual([]);
  });
});
