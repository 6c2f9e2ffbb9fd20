// OIDC bearer users against a real oidc-provider on loopback: identity is the token's
// `sub`, ownership and visibility (private | public | restricted) are enforced, and tokens
// that are expired, foreign, tampered with or a service's own token are refused.
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basic, startInProcess, type TestManager } from '../support/in-process.ts';
import { type OidcProviderFixture, startOidcProvider } from '../support/oidc-provider.ts';

const ALICE = 'alice@egi.example';
const BOB = 'bob@egi.example';
const CAROL = 'carol@egi.example';

let trusted: OidcProviderFixture;
let foreign: OidcProviderFixture;
let tm: TestManager;
const tokens: Record<string, string> = {};

const bearer = (who: string) => ({ authorization: `Bearer ${tokens[who]}` });
const ADMIN = { authorization: basic() };

const call = (headers: Record<string, string>, opts: InjectOptions): Promise<LightMyRequestResponse> =>
  tm.manager.http.inject({ ...opts, headers: { ...headers, ...opts.headers } });
const getSvc = (headers: Record<string, string>, name: string) =>
  call(headers, { method: 'GET', url: `/system/services/${name}` });
const list = async (headers: Record<string, string>): Promise<string[]> => {
  const res = await call(headers, { method: 'GET', url: '/system/services' });
  expect(res.statusCode, res.body).toBe(200);
  return (res.json() as Array<{ name: string }>).map((s) => s.name);
};
const put = (headers: Record<string, string>, body: Record<string, unknown>) =>
  call(headers, { method: 'PUT', url: '/system/services', payload: body });
const del = (headers: Record<string, string>, name: string) =>
  call(headers, { method: 'DELETE', url: `/system/services/${name}` });
const create = (headers: Record<string, string>, body: Record<string, unknown>) =>
  call(headers, { method: 'POST', url: '/system/services', payload: body });

const expectError = (res: LightMyRequestResponse, status: number, code: string) => {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.json()).toMatchObject({ code, statusCode: status });
  expect(res.json().message).toEqual(expect.any(String));
};

beforeAll(async () => {
  [trusted, foreign] = await Promise.all([startOidcProvider(), startOidcProvider()]);
  tm = await startInProcess({ oidcIssuers: trusted.issuer });
  for (const who of [ALICE, BOB, CAROL]) tokens[who] = (await trusted.mintTokens(who)).accessToken;
});

afterAll(async () => {
  await tm?.close();
  await Promise.all([trusted?.stop(), foreign?.stop()]);
});

describe('a private service', () => {
  const svc = { name: 'alice-private', image: 'alpine', script: 'echo alice' };

  beforeAll(async () => {
    const res = await create(bearer(ALICE), { ...svc, owner: BOB });
    expect(res.statusCode, res.body).toBe(201);
  });

  it("is owned by the creator's token sub, whatever the body says", async () => {
    const res = await getSvc(bearer(ALICE), svc.name);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ name: svc.name, owner: ALICE, visibility: 'private' });
    expect(res.json().token).toMatch(/^[0-9a-f]{64}$/);
    expect(await list(bearer(ALICE))).toContain(svc.name);
  });

  it('is hidden from bob: GET 403, absent from his list', async () => {
    expectError(await getSvc(bearer(BOB), svc.name), 403, 'FORBIDDEN');
    expect((await getSvc(bearer(BOB), svc.name)).body).not.toContain('echo alice');
    expect(await list(bearer(BOB))).not.toContain(svc.name);
  });

  it('cannot be changed or deleted by bob (403), and stays as it was', async () => {
    expectError(await put(bearer(BOB), { ...svc, script: 'echo bob was here' }), 403, 'FORBIDDEN');
    expectError(await del(bearer(BOB), svc.name), 403, 'FORBIDDEN');
    const still = await getSvc(bearer(ALICE), svc.name);
    expect(still.statusCode).toBe(200);
    expect(still.json()).toMatchObject({ script: 'echo alice', owner: ALICE });
  });

  it('cannot be taken over by a create under the same name (409)', async () => {
    expectError(await create(bearer(BOB), { ...svc, script: 'echo bob' }), 409, 'SERVICE_EXISTS');
    expect((await getSvc(bearer(ALICE), svc.name)).json().owner).toBe(ALICE);
  });

  it('is visible to and manageable by the admin, who does not become the owner', async () => {
    expect(await list(ADMIN)).toContain(svc.name);
    expect((await getSvc(ADMIN, svc.name)).statusCode).toBe(200);
    const res = await put(ADMIN, { ...svc, script: 'echo admin edit' });
    expect(res.statusCode, res.body).toBe(204);
    expect((await getSvc(bearer(ALICE), svc.name)).json()).toMatchObject({
      script: 'echo admin edit',
      owner: ALICE,
    });
  });

  it('can be updated and deleted by alice herself', async () => {
    expect(
      (await create(bearer(ALICE), { name: 'alice-temp', image: 'alpine', script: 's' })).statusCode,
    ).toBe(201);
    expect((await put(bearer(ALICE), { name: 'alice-temp', image: 'alpine', script: 's2' })).statusCode).toBe(
      204,
    );
    expect((await del(bearer(ALICE), 'alice-temp')).statusCode).toBe(204);
    expectError(await getSvc(bearer(ALICE), 'alice-temp'), 404, 'SERVICE_NOT_FOUND');
  });
});

describe('a public service', () => {
  const svc = { name: 'alice-public', image: 'alpine', script: 'echo public', visibility: 'public' };

  beforeAll(async () => {
    expect((await create(bearer(ALICE), svc)).statusCode).toBe(201);
  });

  it('can be read and listed by bob', async () => {
    const res = await getSvc(bearer(BOB), svc.name);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ owner: ALICE, visibility: 'public' });
    expect(await list(bearer(BOB))).toContain(svc.name);
  });

  it('cannot be changed or deleted by bob', async () => {
    expectError(await put(bearer(BOB), { ...svc, script: 'echo bob' }), 403, 'FORBIDDEN');
    expectError(await del(bearer(BOB), svc.name), 403, 'FORBIDDEN');
    expect((await getSvc(bearer(ALICE), svc.name)).json().script).toBe('echo public');
  });

  it('turns private again when alice says so', async () => {
    expect((await put(bearer(ALICE), { ...svc, visibility: 'private' })).statusCode).toBe(204);
    expectError(await getSvc(bearer(BOB), svc.name), 403, 'FORBIDDEN');
    expect(await list(bearer(BOB))).not.toContain(svc.name);
  });
});

describe('a restricted service', () => {
  const svc = {
    name: 'alice-restricted',
    image: 'alpine',
    script: 'echo r',
    visibility: 'restricted',
    allowed_users: [BOB],
  };

  beforeAll(async () => {
    expect((await create(bearer(ALICE), svc)).statusCode).toBe(201);
  });

  it('can be read and listed by an allowed user (bob)', async () => {
    const res = await getSvc(bearer(BOB), svc.name);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ visibility: 'restricted', allowed_users: [BOB] });
    expect(await list(bearer(BOB))).toContain(svc.name);
  });

  it('is hidden from a user not on the list (carol)', async () => {
    expectError(await getSvc(bearer(CAROL), svc.name), 403, 'FORBIDDEN');
    expect(await list(bearer(CAROL))).not.toContain(svc.name);
  });

  it('cannot be changed or deleted by an allowed user who is not the owner', async () => {
    expectError(await put(bearer(BOB), { ...svc, allowed_users: [BOB, CAROL] }), 403, 'FORBIDDEN');
    expectError(await del(bearer(BOB), svc.name), 403, 'FORBIDDEN');
    expectError(await getSvc(bearer(CAROL), svc.name), 403, 'FORBIDDEN');
  });
});

describe('tokens that are refused (401)', () => {
  it('an expired token', async () => {
    const { accessToken } = await trusted.mintTokens(ALICE, { expiresIn: -120 });
    const headers = { authorization: `Bearer ${accessToken}` };
    expectError(await call(headers, { method: 'GET', url: '/system/services' }), 401, 'UNAUTHORIZED');
    expectError(await getSvc(headers, 'alice-private'), 401, 'UNAUTHORIZED');
    expectError(
      await create(headers, { name: 'expired-create', image: 'alpine', script: 's' }),
      401,
      'UNAUTHORIZED',
    );
  });

  it('a token from a provider that is not configured', async () => {
    const { accessToken } = await foreign.mintTokens(ALICE);
    const headers = { authorization: `Bearer ${accessToken}` };
    const res = await call(headers, { method: 'GET', url: '/system/services' });
    expectError(res, 401, 'UNAUTHORIZED');
    expect(res.headers['www-authenticate']).toMatch(/Bearer/);
    expectError(await getSvc(headers, 'alice-private'), 401, 'UNAUTHORIZED');
    expectError(await del(headers, 'alice-private'), 401, 'UNAUTHORIZED');
  });

  it('a token whose payload was altered (sub swapped to alice)', async () => {
    const [h, payload, sig] = tokens[BOB].split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: ALICE })).toString('base64url')}.${sig}`;
    expectError(await getSvc({ authorization: `Bearer ${forged}` }, 'alice-private'), 401, 'UNAUTHORIZED');
  });

  it('an unsigned (alg none) token', async () => {
    const claims = JSON.parse(Buffer.from(tokens[ALICE].split('.')[1], 'base64url').toString());
    const none = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`;
    expectError(await getSvc({ authorization: `Bearer ${none}` }, 'alice-private'), 401, 'UNAUTHORIZED');
  });

  it("a service's own token (64 hex) on /system/services", async () => {
    const svcToken = (await getSvc(ADMIN, 'alice-private')).json().token as string;
    expect(svcToken).toMatch(/^[0-9a-f]{64}$/);
    const headers = { authorization: `Bearer ${svcToken}` };
    const attempts = [
      await call(headers, { method: 'GET', url: '/system/services' }),
      await getSvc(headers, 'alice-private'),
      await put(headers, { name: 'alice-private', image: 'alpine', script: 'echo hijack' }),
      await del(headers, 'alice-private'),
      await create(headers, { name: 'via-service-token', image: 'alpine', script: 's' }),
    ];
    for (const res of attempts) {
      expect([401, 403], res.body).toContain(res.statusCode);
      expect(res.json().code).toMatch(/^(UNAUTHORIZED|FORBIDDEN)$/);
    }
    expect((await getSvc(ADMIN, 'alice-private')).json().script).not.toBe('echo hijack');
    expect(await list(ADMIN)).not.toContain('via-service-token');
  });
});

describe('identity', () => {
  it('accepts the scheme in any case and resolves the same sub', async () => {
    const res = await getSvc({ authorization: `bearer ${tokens[ALICE]}` }, 'alice-private');
    expect(res.statusCode, res.body).toBe(200);
  });

  it('each user lists exactly what they may see; the admin sees all', async () => {
    const all = await list(ADMIN);
    expect(all).toEqual(expect.arrayContaining(['alice-private', 'alice-public', 'alice-restricted']));
    expect(await list(bearer(ALICE))).toEqual(
      expect.arrayContaining(['alice-private', 'alice-public', 'alice-restricted']),
    );
    const bobs = await list(bearer(BOB));
    expect(bobs).toContain('alice-restricted');
    expect(bobs).not.toContain('alice-private');
    expect(await list(bearer(CAROL))).toEqual([]);
  });

  it("a bearer user's create is owned by them and private by default", async () => {
    expect(
      (await create(bearer(CAROL), { name: 'carol-svc', image: 'alpine', script: 's' })).statusCode,
    ).toBe(201);
    expect((await getSvc(bearer(CAROL), 'carol-svc')).json()).toMatchObject({
      owner: CAROL,
      visibility: 'private',
    });
    expectError(await getSvc(bearer(ALICE), 'carol-svc'), 403, 'FORBIDDEN');
    expect(await list(bearer(CAROL))).toEqual(['carol-svc']);
  });
});

describe("a coordinator's proven delete of a worker that is not there", () => {
  it("is told 404, which it reads as gone; a user's plain delete of a missing service keeps OSCAR's 403", async () => {
    const proof = { 'x-flotilla-origin': 'a/fed', 'x-flotilla-worker-token': 'd'.repeat(64) };
    expectError(await del(bearer(ALICE), 'never-made'), 403, 'FORBIDDEN');
    const proven = await call(
      { ...bearer(ALICE), ...proof },
      { method: 'DELETE', url: '/system/services/never-made?cascade=false' },
    );
    // A 403 here was retried by the coordinator's outbox for good (OIDC mode acts as the owner).
    expectError(proven, 404, 'SERVICE_NOT_FOUND');
  });

  it("a proof header gives no one another user's service: Bob's proven delete of Alice's is refused", async () => {
    const proof = { 'x-flotilla-origin': 'b/fed', 'x-flotilla-worker-token': 'e'.repeat(64) };
    const res = await call(
      { ...bearer(BOB), ...proof },
      { method: 'DELETE', url: '/system/services/alice-private?cascade=false' },
    );
    expectError(res, 403, 'FORBIDDEN');
    expect((await getSvc(bearer(ALICE), 'alice-private')).statusCode).toBe(200);
  });
});
