// Federated queries between real managers over the real mTLS peer channel (DESIGN §6): three
// users on A, each enrolled with B under a grant for their own subject (team-style filters),
// asking A for `local`, `b` or `all`. Each sees on B exactly what their subject may see there,
// narrowed by their grant; cursors are signed; a peer down lands in `_partial` within 2 s and
// its circuit opens once; peer answers are cached and the cache goes on revocation.
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { Command } from 'commander';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlotillaClient } from '../../client/api-client.ts';
import { createSecretBox, loadSecretKey } from '../../src/adapters/secret-box/aes-gcm-box.ts';
import { registerFederation } from '../../src/cli/commands/federation.ts';
import { registerPeers } from '../../src/cli/commands/peering.ts';
import { registerQuery } from '../../src/cli/commands/query.ts';
import type { Service } from '../../src/core/fdl/service.ts';
import { ADMIN_PASSWORD, startInProcess, type TestManager } from '../support/in-process.ts';
import { type OidcProviderFixture, startOidcProvider } from '../support/oidc-provider.ts';
import { mtlsPost } from '../support/peering.ts';
import { ALICE, BOB, CAROL } from '../support/tenants.ts';
import { waitFor } from '../support/wait.ts';

let idp: OidcProviderFixture;
let a: TestManager;
let b: TestManager;
let c: TestManager;
let adminA: FlotillaClient;
let adminB: FlotillaClient;
let adminC: FlotillaClient;
const tokens = new Map<string, string>();
/** Peer record names on A, per user and peer cluster. */
const records = new Map<string, string>();
const jobIds: Record<string, string> = {};

const SECRET = 'never-leaves-b';
const svc = (name: string, owner: string, extra: Partial<Service> = {}): Service => ({
  name,
  image: `ghcr.io/acme/${name}`,
  script: 'echo hi',
  cpu: '0.1',
  memory: '64Mi',
  log_level: 'INFO',
  visibility: 'private',
  token: 'e'.repeat(64),
  owner,
  environment: { variables: {}, secrets: { api_key: SECRET } },
  ...extra,
});

const scopes: Record<string, Record<string, unknown>> = {
  // Alice: everything, two rows a page.
  [ALICE]: {
    resources: ['services', 'jobs', 'logs', 'status', 'buckets'],
    verbs: ['list', 'get', 'search'],
    max_rows_per_query: 2,
  },
  // Bob: the blue team's services and jobs only.
  [BOB]: {
    resources: ['services', 'jobs', 'logs', 'status'],
    verbs: ['list', 'get', 'search'],
    filters: { services: { include_groups: ['blue'] }, jobs: { include_groups: ['blue'] } },
  },
  // Carol: her own services; logs excluded.
  [CAROL]: {
    resources: ['services', 'jobs', 'logs', 'buckets'],
    verbs: ['list', 'get', 'search'],
    excluded_resources: ['logs'],
    filters: { services: { include_personal: true } },
  },
};

const enroll = async (on: FlotillaClient, onUrl: string, user: string, cluster: string) => {
  const g = await on.request<{ id: string }>('POST', '/system/grants', {
    body: { peer: 'a', subject: user, scope: scopes[user] },
  });
  const { token } = await on.request<{ token: string }>('POST', `/system/grants/${g.id}/token`, { body: {} });
  const name = `${cluster}-${user.slice(0, 4)}`;
  await adminA.request('POST', '/system/peers', { body: { url: onUrl, token, name } });
  records.set(`${user}@${cluster}`, name);
  return g.id;
};

const basicA = `Basic ${Buffer.from(`oscar:${ADMIN_PASSWORD}`).toString('base64')}`;
const ask = async (who: string, body: unknown) => {
  const res = await a.manager.http.inject({
    method: 'POST',
    url: '/system/federation/query',
    headers: { authorization: who === 'admin' ? basicA : `Bearer ${tokens.get(who)}` },
    payload: body as Record<string, unknown>,
  });
  return { status: res.statusCode, body: res.json(), text: res.body };
};

/** The mTLS identity of a user's peer record on A (to call B's channel straight). */
const tlsOf = async (user: string, cluster: string) => {
  const p = (await a.store.trust.getPeer(records.get(`${user}@${cluster}`)!))!;
  const box = createSecretBox(await loadSecretKey(undefined, a.dataDir));
  return { ca: p.caPem, cert: p.certPem, key: box.open(p.keySealed), url: p.peerChannelUrl };
};

const names = (rows: Array<Record<string, unknown>>, source?: string) =>
  rows
    .filter((r) => source === undefined || r._source === source)
    .map((r) => String(r.name ?? r.id ?? r.bucket_name))
    .sort();

const grants: Record<string, string> = {};

/** The real commands, in process, against A: `who` is a user (bearer) or the admin. */
const cli = async (who: string, args: string[]) => {
  const program = new Command('flotilla').exitOverride();
  registerFederation(program);
  registerPeers(program);
  registerQuery(program);
  let stdout = '';
  let stderr = '';
  const out = process.stdout.write;
  const err = process.stderr.write;
  process.stdout.write = ((x: string) => {
    stdout += x;
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((x: string) => {
    stderr += x;
    return true;
  }) as typeof process.stderr.write;
  process.exitCode = undefined;
  let code = 0;
  const auth = who === 'admin' ? ['--password', ADMIN_PASSWORD] : ['--token', tokens.get(who)!];
  try {
    await program.parseAsync([...args, '--endpoint', a.manager.publicUrl(), ...auth], { from: 'user' });
    code = Number(process.exitCode ?? 0);
  } catch (e) {
    code = (e as { exitCode?: number }).exitCode ?? 1;
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
    process.exitCode = undefined;
  }
  return { code, stdout, stderr };
};

beforeAll(async () => {
  idp = await startOidcProvider({ accessTokenTtl: 3600 });
  b = await startInProcess({ clusterId: 'b', peerListen: '127.0.0.1:0' });
  c = await startInProcess({ clusterId: 'c', peerListen: '127.0.0.1:0' });
  a = await startInProcess({ clusterId: 'a', peerListen: '127.0.0.1:0', oidcIssuers: idp.issuer });
  // A's own services (before its service cache first loads): Alice's and a public one.
  await a.store.createService(svc('a-alice', ALICE));
  await a.store.createService(svc('a-public', CAROL, { visibility: 'public' }));
  const bUrl = await b.manager.listen();
  const cUrl = await c.manager.listen();
  await a.manager.listen();
  adminA = new FlotillaClient({ endpoint: a.manager.publicUrl(), password: ADMIN_PASSWORD });
  adminB = new FlotillaClient({ endpoint: bUrl, password: ADMIN_PASSWORD });
  adminC = new FlotillaClient({ endpoint: cUrl, password: ADMIN_PASSWORD });
  for (const u of [ALICE, BOB, CAROL])
    tokens.set(u, (await idp.mintTokens(u, { expiresIn: 3600 })).accessToken);

  // B: each user's private service, two team services of Carol's (public), one private of hers.
  await b.store.createService(svc('alice-own', ALICE, { federation: { group_id: 'red' } as never }));
  await b.store.createService(svc('bob-own', BOB, { federation: { group_id: 'blue' } as never }));
  await b.store.createService(
    svc('team-red', CAROL, { visibility: 'public', federation: { group_id: 'red' } as never }),
  );
  await b.store.createService(
    svc('team-blue', CAROL, { visibility: 'public', federation: { group_id: 'blue' } as never }),
  );
  await b.store.createService(svc('carol-own', CAROL, { script: 'resize the thumbnails' }));
  const ev = new TextEncoder().encode('{}');
  const job = (id: string, service: string, owner: string) => ({
    id,
    service,
    owner,
    event: ev,
    cpuMillis: 100,
    memoryBytes: 64 * 1024 * 1024,
  });
  const ids = await b.store.insertJobs([
    job('alice-own-j1', 'alice-own', ALICE),
    job('team-blue-jalice', 'team-blue', ALICE),
    job('team-blue-jbob', 'team-blue', BOB),
    job('team-blue-jcarol', 'team-blue', CAROL),
    job('carol-own-j1', 'carol-own', CAROL),
  ]);
  for (const [i, id] of ids.entries()) {
    jobIds[id] = id;
    await b.store.finishJob(id, {
      status: 'Succeeded',
      at: new Date(),
      exitCode: 0,
      reason: null,
      log: `thumbnail resize finished by job ${i}`,
    });
  }
  // Buckets on B (the admin's): one public, one restricted to Alice, one private.
  for (const [bucket, visibility, allowed] of [
    ['pub-data', 'public', []],
    ['alice-share', 'restricted', [ALICE]],
    ['admin-only', 'private', []],
  ] as const)
    await adminB.request('POST', '/system/buckets', {
      body: { bucket_name: bucket, visibility, allowed_users: allowed },
    });

  for (const u of [ALICE, BOB, CAROL]) grants[u] = await enroll(adminB, bUrl, u, 'b');
  grants[`${ALICE}@c`] = await enroll(adminC, cUrl, ALICE, 'c');
  await c.store.createService(svc('c-public', CAROL, { visibility: 'public' }));
  // Services written straight to the stores: wait out each manager's short service cache.
  for (const [m, n] of [
    [adminA, 2],
    [adminB, 5],
    [adminC, 1],
  ] as const)
    await waitFor(
      async () => (await m.request<unknown[]>('GET', '/system/services')).length >= n,
      15_000,
      'the service cache to show the stored services',
    );
}, 120_000);

afterAll(async () => {
  await a?.close();
  await b?.close();
  await c?.close();
  await idp?.stop();
});

describe('each remote user sees only what their subject may see on B, narrowed by the grant', () => {
  it('lists services: own + public for Alice, the blue team for Bob, only her own for Carol', async () => {
    const all = async (who: string) => {
      const out: Array<Record<string, unknown>> = [];
      let cursor: string | undefined;
      do {
        const r = await ask(who, {
          verb: 'list',
          resource: 'services',
          source: 'b',
          ...(cursor ? { cursor } : {}),
        });
        expect(r.status, r.text).toBe(200);
        out.push(...r.body.rows);
        cursor = r.body.next_cursor ?? undefined;
      } while (cursor);
      return out;
    };
    const alice = await all(ALICE);
    expect(names(alice)).toEqual(['alice-own', 'team-blue', 'team-red']);
    for (const r of alice) expect(r._source).toBe('b');
    expect(names(await all(BOB))).toEqual(['bob-own', 'team-blue']);
    expect(names(await all(CAROL))).toEqual(['carol-own', 'team-blue', 'team-red']);
    // Carol's filter is include_personal: the public team services are hers, so they pass;
    // Bob's own red... he has none; his private service is blue. No one sees another's private one.
    expect(names(alice)).not.toContain('bob-own');
    expect(names(await all(BOB))).not.toContain('alice-own');
  });

  it('pages at max_rows_per_query (Alice: 2) with a cursor, even when asked for more', async () => {
    const first = await ask(ALICE, { verb: 'list', resource: 'services', source: 'b', limit: 1000 });
    expect(first.body.rows).toHaveLength(2);
    expect(first.body._truncated).toBe(true);
    const second = await ask(ALICE, {
      verb: 'list',
      resource: 'services',
      source: 'b',
      limit: 1000,
      cursor: first.body.next_cursor,
    });
    expect(second.body.rows).toHaveLength(1);
    expect(second.body.next_cursor).toBeNull();
    expect(second.body._truncated).toBeUndefined();
  });

  it('jobs: Alice sees her own jobs, not the ones Bob or Carol ran; Bob only blue jobs', async () => {
    const aliceJobs = await ask(ALICE, { verb: 'list', resource: 'jobs', source: 'b', limit: 2 });
    const rows = [...aliceJobs.body.rows];
    let cursor = aliceJobs.body.next_cursor;
    while (cursor) {
      const r = await ask(ALICE, { verb: 'list', resource: 'jobs', source: 'b', limit: 2, cursor });
      rows.push(...r.body.rows);
      cursor = r.body.next_cursor;
    }
    expect(names(rows)).toEqual(['alice-own-j1', 'team-blue-jalice']);
    const bob = await ask(BOB, { verb: 'list', resource: 'jobs', source: 'b' });
    expect(names(bob.body.rows)).toEqual(['team-blue-jbob']);
    // Carol owns team-blue: every job of it, and her own service's.
    const carol = await ask(CAROL, { verb: 'list', resource: 'jobs', source: 'b' });
    expect(names(carol.body.rows)).toEqual(
      ['carol-own-j1', 'team-blue-jalice', 'team-blue-jbob', 'team-blue-jcarol'].sort(),
    );
  });

  it('get: a row the subject may see, nothing for one it may not; never a secret or token', async () => {
    const mine = await ask(ALICE, { verb: 'get', resource: 'services', id: 'alice-own', source: 'b' });
    expect(mine.status).toBe(200);
    expect(mine.body.rows).toHaveLength(1);
    expect(mine.body.rows[0]).toMatchObject({ name: 'alice-own', owner: ALICE, _source: 'b' });
    expect(mine.text).not.toContain(SECRET);
    expect(mine.body.rows[0].environment.secrets.api_key).toBe('***');
    expect(mine.body.rows[0].token).toBeUndefined();
    expect(mine.body.rows[0].federation).toEqual({ group_id: 'red', topology: null });
    expect(mine.text).not.toContain('e'.repeat(64));
    const theirs = await ask(ALICE, { verb: 'get', resource: 'services', id: 'bob-own', source: 'b' });
    expect(theirs.body.rows).toEqual([]);
    const bobRed = await ask(BOB, { verb: 'get', resource: 'services', id: 'team-red', source: 'b' });
    expect(bobRed.body.rows).toEqual([]); // public, but his grant is for the blue team
    const log = await ask(ALICE, { verb: 'get', resource: 'logs', id: 'alice-own-j1', source: 'b' });
    expect(log.body.rows[0]).toMatchObject({ id: 'alice-own-j1', status: 'Succeeded' });
    expect(log.body.rows[0].log).toContain('thumbnail resize');
    const notHers = await ask(ALICE, { verb: 'get', resource: 'logs', id: 'team-blue-jbob', source: 'b' });
    expect(notHers.body.rows).toEqual([]);
    const status = await ask(ALICE, { verb: 'get', resource: 'status', id: 'b', source: 'b' });
    expect(status.body.rows[0]).toMatchObject({ cluster_id: 'b', _source: 'b' });
  });

  it('buckets: the restricted one for Alice only; no storage credentials in a row', async () => {
    const alice = await ask(ALICE, { verb: 'list', resource: 'buckets', source: 'b', limit: 10 });
    const rows = [...alice.body.rows];
    if (alice.body.next_cursor)
      rows.push(
        ...(
          await ask(ALICE, {
            verb: 'list',
            resource: 'buckets',
            source: 'b',
            cursor: alice.body.next_cursor,
            limit: 10,
          })
        ).body.rows,
      );
    expect(names(rows)).toEqual(['alice-share', 'pub-data']);
    const carol = await ask(CAROL, { verb: 'list', resource: 'buckets', source: 'b' });
    expect(names(carol.body.rows)).toEqual(['pub-data']);
    expect(JSON.stringify(carol.body)).not.toMatch(/secret_key|access_key/);
  });

  it('a resource the grant does not give is a peer in _partial, not rows (Bob: buckets)', async () => {
    const r = await ask(BOB, { verb: 'list', resource: 'buckets', source: 'all' });
    expect(r.status).toBe(200);
    expect(r.body._partial).toEqual(['b']);
    expect(r.body.rows.every((x: Record<string, unknown>) => x._source === 'local')).toBe(true);
  });
});

describe('source: all merges with _source; search is ranked and honours exclusions', () => {
  it('merges local rows (as the caller) and each peer’s (as the subject)', async () => {
    const r = await ask(ALICE, { verb: 'list', resource: 'services', source: 'all', limit: 50 });
    expect(r.status, r.text).toBe(200);
    expect(names(r.body.rows, 'local')).toEqual(['a-alice', 'a-public']);
    expect(names(r.body.rows, 'b')).toHaveLength(2); // Alice's cap at B
    expect(names(r.body.rows, 'c')).toEqual(['c-public']);
    expect(r.body._partial).toBeUndefined();
    // Bob has no peer record for C: only local and B.
    const bob = await ask(BOB, { verb: 'list', resource: 'services', source: 'all' });
    expect([...new Set(bob.body.rows.map((x: Record<string, unknown>) => x._source))].sort()).toEqual([
      'b',
      'local',
    ]);
    expect((await ask(BOB, { verb: 'list', resource: 'services', source: 'c' })).status).toBe(404);
  });

  it('status from every source; search pages with its own signed cursor', async () => {
    const st = await ask(ALICE, { verb: 'list', resource: 'status', source: 'all' });
    expect(st.status, st.text).toBe(200);
    expect(st.body.rows.map((r: Record<string, unknown>) => `${r._source}:${r.cluster_id}`).sort()).toEqual([
      'b:b',
      'c:c',
      'local:a',
    ]);
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const r = await ask(ALICE, {
        verb: 'search',
        q: 'thumbnail',
        resource: 'logs',
        source: 'b',
        limit: 1,
        cursor,
      });
      expect(r.status, r.text).toBe(200);
      seen.push(...r.body.rows.map((x: Record<string, unknown>) => String(x.id)));
      cursor = r.body.next_cursor ?? undefined;
      pages++;
    } while (cursor && pages < 10);
    expect(seen.sort()).toEqual(['alice-own-j1', 'team-blue-jalice']);
  });

  it('the OpenAPI document lists the query route', async () => {
    const doc = await a.manager.http.inject({ method: 'GET', url: '/docs/json' });
    expect(doc.statusCode).toBe(200);
    expect(Object.keys(doc.json().paths)).toContain('/system/federation/query');
  });

  it('search ranks with full text; Carol (logs excluded) never gets a log row', async () => {
    const alice = await ask(ALICE, { verb: 'search', q: 'thumbnail resize', source: 'b' });
    expect(alice.status, alice.text).toBe(200);
    const aliceLogs = alice.body.rows.filter((x: Record<string, unknown>) => x._resource === 'logs');
    expect(aliceLogs.length).toBeGreaterThan(0);
    for (const x of aliceLogs) expect(['alice-own-j1', 'team-blue-jalice']).toContain(x.id);
    const carol = await ask(CAROL, { verb: 'search', q: 'resize', source: 'b' });
    expect(carol.status).toBe(200);
    expect(carol.body.rows.some((x: Record<string, unknown>) => x._resource === 'logs')).toBe(false);
    expect(names(carol.body.rows)).toEqual(['carol-own']); // the word is in its script
    const logsOnly = await ask(CAROL, { verb: 'search', q: 'resize', resource: 'logs', source: 'b' });
    expect(logsOnly.body._partial).toEqual(['b']);
    expect(logsOnly.body.rows).toEqual([]);
    const ranked = alice.body.rows.map((x: Record<string, unknown>) => Number(x._rank));
    expect([...ranked].sort((x, y) => y - x)).toEqual(ranked);
  });
});

describe('cursors and hostile input', () => {
  it('refuses an edited or forged cursor, and another user’s cursor (400)', async () => {
    const first = await ask(ALICE, { verb: 'list', resource: 'services', source: 'b' });
    const cursor: string = first.body.next_cursor;
    const [payload, mac] = cursor.split('.');
    const edited = `${Buffer.from(JSON.stringify({ b: 'AAAA' })).toString('base64url')}.${mac}`;
    for (const bad of [edited, `${payload}.${'A'.repeat(43)}`, 'garbage', `${payload}.${mac}.x`]) {
      const r = await ask(ALICE, { verb: 'list', resource: 'services', source: 'b', cursor: bad });
      expect(r.status, bad).toBe(400);
      expect(r.body.message).toContain('cursor');
    }
    const stolen = await ask(BOB, { verb: 'list', resource: 'services', source: 'b', cursor });
    expect(stolen.status).toBe(400);
    // B's own cursor, replayed by another grant's certificate straight at B: refused there too.
    const alice = await tlsOf(ALICE, 'b');
    const bob = await tlsOf(BOB, 'b');
    const page = await mtlsPost(`${alice.url}/federation/v1/list/services`, alice, {});
    expect(page.status).toBe(200);
    expect(typeof page.body.next_cursor).toBe('string');
    const replay = await mtlsPost(`${bob.url}/federation/v1/list/services`, bob, {
      cursor: page.body.next_cursor,
    });
    expect(replay.status).toBe(400);
    const own = await mtlsPost(`${alice.url}/federation/v1/list/services`, alice, {
      cursor: page.body.next_cursor,
    });
    expect(own.status).toBe(200);
    // A narrower filter cannot continue a wider page.
    const narrowed = await mtlsPost(`${alice.url}/federation/v1/list/services`, alice, {
      cursor: page.body.next_cursor,
      filter: { include_personal: true },
    });
    expect(narrowed.status).toBe(400);
    // Path tricks in a get id at B: 4xx.
    for (const id of ['..%2F..%2Fsecret', '%00', 'a%2Fb', 'x'.repeat(300)]) {
      const r = await mtlsPost(`${alice.url}/federation/v1/get/services/${id}`, alice, {});
      expect(r.status, id).toBeGreaterThanOrEqual(400);
      expect(r.status, id).toBeLessThan(500);
    }
  });

  it('fuzz at B: any search or list body over the channel is 200 or a 4xx', async () => {
    const alice = await tlsOf(ALICE, 'b');
    const value = fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.integer(),
      fc.constant(null),
      fc.boolean(),
      fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }),
      fc.record(
        { include_groups: fc.array(fc.string({ maxLength: 5 })), widen: fc.boolean() },
        { requiredKeys: [] },
      ),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('search', 'list/services', 'list/jobs', 'get/logs/x'),
        fc.record(
          { q: value, resources: value, cursor: value, limit: value, filter: value },
          { requiredKeys: [] },
        ),
        async (path, body) => {
          const r = await mtlsPost(`${alice.url}/federation/v1/${path}`, alice, body);
          expect(
            r.status,
            `${path} ${JSON.stringify(body)} ${JSON.stringify(r.body)}`,
          ).toBeGreaterThanOrEqual(200);
          expect(
            r.status! < 300 || (r.status! >= 400 && r.status! < 500),
            `${path} ${JSON.stringify(body)}`,
          ).toBe(true);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('answers bad bodies 4xx naming the field, never 500', async () => {
    const cases: Array<[unknown, string]> = [
      [{ verb: 'list', resource: 'secrets' }, 'resource'],
      [{ verb: 'list', resource: 'services', limit: 1e9 }, 'limit'],
      [{ verb: 'list', resource: 'services', limit: -1 }, 'limit'],
      [{ verb: 'get', resource: 'services', id: '../../etc/passwd' }, 'id'],
      [{ verb: 'get', resource: 'services', id: 'a/b' }, 'id'],
      [{ verb: 'get', resource: 'services' }, 'id'],
      [{ verb: 'search', q: 'x\u0000y' }, 'q'],
      [{ verb: 'search', q: 'x'.repeat(600) }, 'q'],
      [{ verb: 'drop', resource: 'services' }, 'verb'],
      [{ verb: 'list', resource: 'services', admin: true }, 'admin'],
      [{ verb: 'list', resource: 'services', source: '../b' }, 'source'],
    ];
    for (const [body, field] of cases) {
      const r = await ask(ALICE, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.message, JSON.stringify(body)).toContain(field);
    }
    // tsquery and SQL syntax in q is just text.
    for (const q of ["' OR 1=1 --", '!resize & (a | b)', 'a:* <-> b', '"unclosed'])
      expect((await ask(ALICE, { verb: 'search', q, source: 'all' })).status, q).toBe(200);
    const unauth = await a.manager.http.inject({
      method: 'POST',
      url: '/system/federation/query',
      payload: {},
    });
    expect(unauth.statusCode).toBe(401);
  });

  it('fuzz: any JSON body is 200 or a 4xx, never a 5xx', async () => {
    const field = fc.oneof(
      fc.constantFrom(
        'list',
        'get',
        'search',
        'services',
        'jobs',
        'logs',
        'status',
        'buckets',
        'local',
        'all',
        'b',
      ),
      fc.string({ maxLength: 40 }),
      fc.integer(),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
      fc.array(fc.string(), { maxLength: 3 }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.record(
          { verb: field, resource: field, id: field, q: field, source: field, cursor: field, limit: field },
          { requiredKeys: [] },
        ),
        async (body) => {
          const r = await ask(ALICE, body);
          expect(
            r.status === 200 || (r.status >= 400 && r.status < 500),
            `${r.status} ${JSON.stringify(body)}`,
          ).toBe(true);
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('cache, circuit breaker and revocation', () => {
  it('caches a peer’s list/get answer (_cached: true), never search', async () => {
    const body = { verb: 'list', resource: 'services', source: 'b' };
    await ask(CAROL, body);
    const again = await ask(CAROL, body);
    expect(again.body.rows.length).toBeGreaterThan(0);
    for (const r of again.body.rows) expect(r._cached).toBe(true);
    const s1 = await ask(CAROL, { verb: 'search', q: 'resize', source: 'b' });
    const s2 = await ask(CAROL, { verb: 'search', q: 'resize', source: 'b' });
    for (const r of [...s1.body.rows, ...s2.body.rows]) expect(r._cached).toBeUndefined();
  });

  it('a renewed certificate flushes the cache', async () => {
    const body = { verb: 'list', resource: 'services', source: 'b' };
    await ask(BOB, body);
    expect((await ask(BOB, body)).body.rows[0]._cached).toBe(true);
    await adminA.request('POST', `/system/peers/${records.get(`${BOB}@b`)}/renew`);
    const fresh = await ask(BOB, body);
    expect(fresh.body.rows.length).toBeGreaterThan(0);
    expect(fresh.body.rows[0]._cached).toBeUndefined();
  });

  it('revocation on B: A finds it on the next failed call, and no cached row of that grant is served', async () => {
    const body = { verb: 'list', resource: 'services', source: 'all' };
    await ask(CAROL, body);
    expect(
      (await ask(CAROL, body)).body.rows.filter((r: Record<string, unknown>) => r._source === 'b')[0]._cached,
    ).toBe(true);
    await adminB.request('POST', `/system/grants/${grants[CAROL]}/revoke`, { body: { reason: 'left' } });
    // Carol's next call that reaches B fails at TLS: A checks B's CRL on its own and marks the
    // record revoked (no admin probe), which flushes the cache.
    const miss = await ask(CAROL, { ...body, limit: 99 });
    expect(miss.body._partial).toEqual(['b']);
    await waitFor(
      async () => (await a.store.trust.getPeer(records.get(`${CAROL}@b`)!))?.state === 'revoked',
      15_000,
      'A to find its record revoked on B’s CRL',
    );
    const after = await ask(CAROL, body);
    expect(after.body.rows.filter((r: Record<string, unknown>) => r._source === 'b')).toEqual([]);
    expect(after.body.rows.some((r: Record<string, unknown>) => r._cached)).toBe(false);
  });

  it('a peer down: _partial within 2 s, its circuit opens once (metric, status), local rows still come', async () => {
    await c.close();
    const body = { verb: 'list', resource: 'services', source: 'all' };
    for (let i = 0; i < 4; i++) {
      const t0 = Date.now();
      const r = await ask(ALICE, { ...body, limit: 60 + i }); // a limit not asked before: not cached
      expect(Date.now() - t0).toBeLessThan(2000);
      expect(r.status).toBe(200);
      expect(r.body._partial).toEqual(['c']);
      expect(names(r.body.rows, 'local')).toEqual(['a-alice', 'a-public']);
    }
    const peers = await adminA.request<Array<Record<string, unknown>>>('GET', '/system/peers');
    const cPeer = peers.find((p) => p.cluster_id === 'c')!;
    expect(cPeer).toMatchObject({ circuit: 'open' });
    expect(cPeer.offline_since).not.toBeNull();
    expect(cPeer.last_failure_at).not.toBeNull();
    const metrics = await (await adminA.send('GET', '/metrics')).text();
    expect(metrics).toMatch(/flotilla_peer_offline_total\{[^}]*peer="c"[^}]*\} 1\n/);
    expect(metrics).toMatch(/flotilla_peer_offline\{[^}]*peer="c"[^}]*\} 1\n/);
  });
});

describe('a peer that accepts and never answers', () => {
  it('is cut off by the short timeout: the answer still comes within 2 s, the peer in _partial', async () => {
    // A TCP listener that takes the connection and says nothing (no TLS handshake).
    const held: Socket[] = [];
    const hole = createServer((s) => void held.push(s));
    await new Promise<void>((r) => hole.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (hole.address() as AddressInfo).port;
      const model = (await a.store.trust.getPeer(records.get(`${ALICE}@c`)!))!;
      await a.store.trust.putPeer({
        ...model,
        name: 'h-alice',
        clusterId: 'h',
        peerChannelUrl: `https://127.0.0.1:${port}`,
      });
      // A's records are re-read every 5 s: wait until the new one is asked.
      const r = await waitFor(
        async () => {
          const t0 = Date.now();
          const x: Awaited<ReturnType<typeof ask>> = await ask(ALICE, {
            verb: 'list',
            resource: 'services',
            source: 'all',
            limit: 80 + held.length,
          });
          const ms = Date.now() - t0;
          return x.body._partial?.includes('h') ? { x, ms } : undefined;
        },
        20_000,
        'the black-holed peer to be asked',
      );
      expect(r.ms).toBeLessThan(2000);
      expect(r.x.status).toBe(200);
      expect(names(r.x.body.rows, 'local')).toEqual(['a-alice', 'a-public']);
    } finally {
      for (const s of held) s.destroy();
      await new Promise<void>((r) => hole.close(() => r()));
      await a.store.trust.deletePeer('h-alice');
    }
  });
});

describe('CLI: flotilla query and flotilla federation status', () => {
  it('documents each query command with --help', async () => {
    for (const cmd of [
      ['query', 'list'],
      ['query', 'get'],
      ['query', 'search'],
      ['federation', 'status'],
    ]) {
      const program = new Command('flotilla').exitOverride();
      registerFederation(program);
      registerPeers(program);
      registerQuery(program);
      let out = '';
      const write = process.stdout.write;
      process.stdout.write = ((x: string) => {
        out += x;
        return true;
      }) as typeof process.stdout.write;
      try {
        await program.parseAsync([...cmd, '--help'], { from: 'user' });
      } catch {
        // commander's exitOverride throws after printing the help
      } finally {
        process.stdout.write = write;
      }
      expect(out, cmd.join(' ')).toContain('--json');
      if (cmd[0] === 'query') expect(out).toContain('--source');
    }
  });

  it('queries as the user, follows cursors with --all, and shows the circuit per peer', async () => {
    const list = await cli(ALICE, ['query', 'list', 'services', '--source', 'b', '--all', '--json']);
    expect(list.code, list.stderr).toBe(0);
    expect(names(JSON.parse(list.stdout).rows)).toEqual(['alice-own', 'team-blue', 'team-red']);
    const human = await cli(ALICE, ['query', 'search', 'thumbnail', 'resize', '--source', 'b']);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/^SOURCE\s+RESOURCE\s+KEY\s+RANK/);
    expect(human.stdout).toContain('alice-own-j1');
    const get = await cli(ALICE, ['query', 'get', 'services', 'alice-own', '--source', 'b']);
    expect(get.code, get.stderr).toBe(0);
    expect(get.stdout).toContain('"_source": "b"');
    expect(get.stdout).not.toContain(SECRET);
    const bad = await cli(ALICE, ['query', 'list', 'secrets', '--json']);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain('resource');
    const down = await cli(ALICE, ['query', 'list', 'services', '--source', 'all', '--limit', '70']);
    expect(down.code).toBe(0);
    expect(down.stderr).toContain('partial: no answer from c');
    const status = await cli('admin', ['federation', 'status', '--json']);
    expect(status.code, status.stderr).toBe(0);
    const peers = JSON.parse(status.stdout).peers as Array<Record<string, unknown>>;
    expect(peers.find((p) => p.cluster_id === 'c')).toMatchObject({ circuit: 'open' });
    expect(peers.find((p) => p.name === records.get(`${ALICE}@b`))).toMatchObject({ circuit: 'closed' });
    const table = await cli('admin', ['federation', 'status']);
    expect(table.stdout).toMatch(/CIRCUIT/);
  });
});
