// Services CRUD over HTTP (in process): OSCAR's defaults, server-made token and owner,
// unknown fields kept, YAML bodies, trailing slashes, secret masking on read and "***" on PUT.
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basic, startInProcess, type TestManager } from '../support/in-process.ts';

let tm: TestManager;
const admin = { authorization: basic() };

const call = (opts: InjectOptions) =>
  tm.manager.http.inject({ ...opts, headers: { ...admin, ...opts.headers } });
const create = (body: unknown) => call({ method: 'POST', url: '/system/services', payload: body as object });
const update = (body: unknown) => call({ method: 'PUT', url: '/system/services', payload: body as object });
const getRes = (name: string) => call({ method: 'GET', url: `/system/services/${name}` });
const get = async (name: string) => {
  const res = await getRes(name);
  expect(res.statusCode, res.body).toBe(200);
  return res.json();
};
/** The stored service, secrets unmasked: what the manager really keeps. */
const stored = async (name: string) => (await tm.store.getService(name)) as Record<string, any>;

beforeAll(async () => {
  tm = await startInProcess({ clusterId: 'cluster-a' });
});
afterAll(async () => {
  await tm?.close();
});

describe('create', () => {
  it('answers 201 with an empty body and applies OSCAR defaults', async () => {
    const res = await create({ name: 'defaults', image: 'alpine', script: 'echo hi' });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.body).toBe('');
    const svc = await get('defaults');
    expect(svc).toMatchObject({
      name: 'defaults',
      image: 'alpine',
      script: 'echo hi',
      cpu: '0.2',
      memory: '256Mi',
      log_level: 'INFO',
      visibility: 'private',
      owner: 'cluster_admin',
      cluster_id: 'cluster-a',
      environment: { variables: {}, secrets: {} },
    });
  });

  it('normalises cpu "500m" to "0.5" and keeps decimal cores', async () => {
    expect((await create({ name: 'milli', image: 'alpine', script: 's', cpu: '500m' })).statusCode).toBe(201);
    expect((await get('milli')).cpu).toBe('0.5');
    expect(
      (await create({ name: 'cores', image: 'alpine', script: 's', cpu: '1.5', memory: '1Gi' })).statusCode,
    ).toBe(201);
    expect(await get('cores')).toMatchObject({ cpu: '1.5', memory: '1Gi' });
    // OSCAR's Go decoder refuses a JSON number where it has a string (YAML numbers are
    // strings: see the YAML body below).
    const numeric = await create({ name: 'numeric-cpu', image: 'alpine', script: 's', cpu: 2 });
    expect(numeric.statusCode).toBe(400);
    expect(numeric.json().message).toMatch(/cpu: must be a string, got a number/);
  });

  it('upper-cases log_level', async () => {
    expect(
      (await create({ name: 'loud', image: 'alpine', script: 's', log_level: 'debug' })).statusCode,
    ).toBe(201);
    expect((await get('loud')).log_level).toBe('DEBUG');
  });

  it('makes a 64-hex token that the client cannot choose', async () => {
    const chosen = 'a'.repeat(64);
    expect((await create({ name: 'tokened', image: 'alpine', script: 's', token: chosen })).statusCode).toBe(
      201,
    );
    const svc = await get('tokened');
    expect(svc.token).toMatch(/^[0-9a-f]{64}$/);
    expect(svc.token).not.toBe(chosen);
    const other = await get('defaults');
    expect(other.token).toMatch(/^[0-9a-f]{64}$/);
    expect(other.token).not.toBe(svc.token);
  });

  it('sets the owner itself (Basic → cluster_admin), ignoring a client-sent owner', async () => {
    expect((await create({ name: 'owned', image: 'alpine', script: 's', owner: 'mallory' })).statusCode).toBe(
      201,
    );
    expect((await get('owned')).owner).toBe('cluster_admin');
  });

  it('keeps unknown fields, top-level and nested, and returns them', async () => {
    const body = {
      name: 'unknowns',
      image: 'alpine',
      script: 's',
      alpine: true,
      expose: { min_scale: 1, api_port: 8080, nodePort: 31000 },
      synchronous: { min_scale: 0, max_scale: 3 },
      x_custom: { deep: [1, 'two', { three: null }] },
      input: [{ storage_provider: 'minio.default', path: 'in-bucket', options: '--fast', my_extra: 7 }],
      environment: { variables: { A: '1' }, extra_block: { k: 'v' } },
    };
    expect((await create(body)).statusCode).toBe(201);
    const svc = await get('unknowns');
    expect(svc).toMatchObject({
      alpine: true,
      // OSCAR v4.1 holds the ports as lists; one port sent as a number is that list.
      expose: { min_scale: 1, api_port: [8080], nodePort: [31000] },
      synchronous: body.synchronous,
      x_custom: body.x_custom,
      input: [{ storage_provider: 'minio.default', path: 'in-bucket', options: '--fast', my_extra: 7 }],
      environment: { variables: { A: '1' }, extra_block: { k: 'v' }, secrets: {} },
    });
  });

  it('defaults an input storage_provider to minio.default', async () => {
    expect(
      (await create({ name: 'io-default', image: 'alpine', script: 's', input: [{ path: 'io-bucket/in' }] }))
        .statusCode,
    ).toBe(201);
    expect((await get('io-default')).input).toEqual([
      { storage_provider: 'minio.default', path: 'io-bucket/in' },
    ]);
  });

  it('accepts a YAML body (application/yaml and text/yaml)', async () => {
    const yaml = [
      'name: from-yaml',
      'image: ghcr.io/grycap/cowsay',
      'cpu: 250m',
      'memory: 128Mi',
      'script: |',
      '  #!/bin/sh',
      '  cowsay "$(cat $INPUT_FILE_PATH)"',
      'environment:',
      '  variables:',
      '    RETRIES: 3',
      '    VERBOSE: true',
      'input:',
      '- storage_provider: minio.default',
      '  path: cowsay/in',
    ].join('\n');
    const res = await call({
      method: 'POST',
      url: '/system/services',
      headers: { 'content-type': 'application/yaml' },
      payload: yaml,
    });
    expect(res.statusCode, res.body).toBe(201);
    const svc = await get('from-yaml');
    expect(svc).toMatchObject({
      image: 'ghcr.io/grycap/cowsay',
      cpu: '0.25',
      memory: '128Mi',
      script: '#!/bin/sh\ncowsay "$(cat $INPUT_FILE_PATH)"\n',
      // YAML scalars become strings, as OSCAR (Go) would read them.
      environment: { variables: { RETRIES: '3', VERBOSE: 'true' } },
    });
    const text = await call({
      method: 'POST',
      url: '/system/services',
      headers: { 'content-type': 'text/yaml; charset=utf-8' },
      payload: 'name: from-text-yaml\nimage: alpine\nscript: echo\n',
    });
    expect(text.statusCode, text.body).toBe(201);
  });

  it('refuses a duplicate name with 409 and keeps the first definition', async () => {
    const before = await get('defaults');
    const res = await create({ name: 'defaults', image: 'other', script: 'other' });
    expect(res.statusCode).toBe(409);
    expect(res.json()).toMatchObject({ code: 'SERVICE_EXISTS', statusCode: 409 });
    expect(res.json().message).toContain('defaults');
    const after = await get('defaults');
    expect(after).toEqual(before);
  });
});

describe('read', () => {
  it('lists services as an array with masked secrets', async () => {
    expect(
      (
        await create({
          name: 'listed',
          image: 'alpine',
          script: 's',
          environment: { secrets: { PASSWORD: 'hunter2' } },
        })
      ).statusCode,
    ).toBe(201);
    const res = await call({ method: 'GET', url: '/system/services' });
    expect(res.statusCode).toBe(200);
    const list = res.json() as Array<Record<string, any>>;
    expect(Array.isArray(list)).toBe(true);
    const listed = list.find((s) => s.name === 'listed');
    expect(listed?.environment.secrets.PASSWORD).toBe('***');
    expect(res.body).not.toContain('hunter2');
    expect(list.map((s) => s.name)).toEqual(expect.arrayContaining(['defaults', 'milli', 'from-yaml']));
  });

  it('accepts a trailing slash, as OSCAR clients send', async () => {
    const list = await call({ method: 'GET', url: '/system/services/' });
    expect(list.statusCode).toBe(200);
    expect(Array.isArray(list.json())).toBe(true);
    const one = await call({ method: 'GET', url: '/system/services/defaults/' });
    expect(one.statusCode).toBe(200);
    expect(one.json().name).toBe('defaults');
    const created = await call({
      method: 'POST',
      url: '/system/services/',
      payload: { name: 'slashed', image: 'alpine', script: 's' },
    });
    expect(created.statusCode, created.body).toBe(201);
    const updated = await call({
      method: 'PUT',
      url: '/system/services/',
      payload: { name: 'slashed', image: 'alpine', script: 's2' },
    });
    expect(updated.statusCode, updated.body).toBe(204);
    expect((await get('slashed')).script).toBe('s2');
    const deleted = await call({ method: 'DELETE', url: '/system/services/slashed/' });
    expect(deleted.statusCode).toBe(204);
  });

  it('answers 404 with a JSON error naming the service', async () => {
    const res = await getRes('no-such-service');
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ code: 'SERVICE_NOT_FOUND', statusCode: 404 });
    expect(res.json().message).toContain('no-such-service');
  });
});

describe('update', () => {
  it('answers 204, replaces the definition and keeps token, owner and cluster_id', async () => {
    expect((await create({ name: 'upd', image: 'a', script: 'one', cpu: '1' })).statusCode).toBe(201);
    const before = await get('upd');
    const res = await update({
      name: 'upd',
      image: 'b',
      script: 'two',
      token: 'f'.repeat(64),
      owner: 'mallory',
      brand_new: 'kept',
    });
    expect(res.statusCode, res.body).toBe(204);
    expect(res.body).toBe('');
    const after = await get('upd');
    expect(after).toMatchObject({
      image: 'b',
      script: 'two',
      token: before.token,
      owner: 'cluster_admin',
      cluster_id: 'cluster-a',
      brand_new: 'kept',
    });
    // A full replacement: omitted cpu goes back to the default.
    expect(after.cpu).toBe('0.2');
  });

  it('answers 404 for an unknown service', async () => {
    const res = await update({ name: 'never-created', image: 'alpine', script: 's' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ code: 'SERVICE_NOT_FOUND' });
    expect(res.json().message).toContain('never-created');
  });

  it('validates the new definition like a create', async () => {
    const res = await update({ name: 'upd', image: 'alpine', script: 's', cpu: '-1' });
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toMatch(/cpu/);
    expect((await get('upd')).script).toBe('two');
  });
});

describe('secrets', () => {
  const secretService = {
    name: 'secretive',
    image: 'alpine',
    script: 'env',
    environment: { variables: { PLAIN: 'visible' }, secrets: { API_KEY: 'key-123', DB_PASSWORD: 'db-pw' } },
    clusters: {
      remote: {
        endpoint: 'https://oscar.example.org',
        auth_user: 'oscar',
        auth_password: 'cluster-pw',
        ssl_verify: true,
      },
    },
    storage_providers: {
      s3: { aws: { access_key: 'AKIAEXAMPLE', secret_key: 's3-secret', region: 'eu-west-1' } },
      minio: {
        mine: {
          endpoint: 'https://minio.example.org',
          verify: true,
          access_key: 'minio',
          secret_key: 'minio-secret',
        },
      },
      onedata: { od: { oneprovider_host: 'op.example.org', token: 'od-token', space: 'sp' } },
    },
  };
  const secretValues = ['key-123', 'db-pw', 'cluster-pw', 's3-secret', 'minio-secret', 'od-token'];

  beforeAll(async () => {
    const res = await create(secretService);
    expect(res.statusCode, res.body).toBe(201);
  });

  it('shows every secret value as "***" on GET, and nothing else masked', async () => {
    const res = await getRes('secretive');
    for (const value of secretValues) expect(res.body).not.toContain(value);
    const svc = res.json();
    expect(svc.environment).toEqual({
      variables: { PLAIN: 'visible' },
      secrets: { API_KEY: '***', DB_PASSWORD: '***' },
    });
    expect(svc.clusters.remote).toEqual({
      endpoint: 'https://oscar.example.org',
      auth_user: 'oscar',
      auth_password: '***',
      ssl_verify: true,
    });
    expect(svc.storage_providers.s3.aws).toEqual({
      access_key: 'AKIAEXAMPLE',
      secret_key: '***',
      region: 'eu-west-1',
    });
    expect(svc.storage_providers.minio.mine.secret_key).toBe('***');
    expect(svc.storage_providers.onedata.od.token).toBe('***');
    // The store still holds the real values.
    const kept = await stored('secretive');
    expect(kept.environment.secrets).toEqual({ API_KEY: 'key-123', DB_PASSWORD: 'db-pw' });
    expect(kept.clusters.remote.auth_password).toBe('cluster-pw');
  });

  it('keeps stored values when a GET-edit-PUT sends "***" back, and takes new values', async () => {
    const svc = await get('secretive');
    svc.environment.variables.PLAIN = 'changed';
    svc.environment.secrets.DB_PASSWORD = 'new-db-pw';
    const res = await update(svc);
    expect(res.statusCode, res.body).toBe(204);
    const kept = await stored('secretive');
    expect(kept.environment.variables.PLAIN).toBe('changed');
    expect(kept.environment.secrets).toEqual({ API_KEY: 'key-123', DB_PASSWORD: 'new-db-pw' });
    expect(kept.clusters.remote.auth_password).toBe('cluster-pw');
    expect(kept.storage_providers.s3.aws.secret_key).toBe('s3-secret');
    expect(kept.storage_providers.minio.mine.secret_key).toBe('minio-secret');
    expect(kept.storage_providers.onedata.od.token).toBe('od-token');
    // Still masked on read.
    expect((await get('secretive')).environment.secrets.DB_PASSWORD).toBe('***');
  });

  it('never stores a literal "***" where nothing was stored', async () => {
    const res = await create({
      name: 'mask-only',
      image: 'alpine',
      script: 's',
      environment: { secrets: { NEW: '***' } },
    });
    expect(res.statusCode, res.body).toBe(201);
    const kept = await stored('mask-only');
    expect(kept.environment.secrets.NEW).toBeUndefined();
  });
});

describe('delete', () => {
  it('answers 204, then the service is gone (GET, PUT and DELETE answer 404)', async () => {
    expect((await create({ name: 'doomed', image: 'alpine', script: 's' })).statusCode).toBe(201);
    const res = await call({ method: 'DELETE', url: '/system/services/doomed' });
    expect(res.statusCode).toBe(204);
    expect(res.body).toBe('');
    expect((await getRes('doomed')).statusCode).toBe(404);
    expect((await update({ name: 'doomed', image: 'alpine', script: 's' })).statusCode).toBe(404);
    const again = await call({ method: 'DELETE', url: '/system/services/doomed' });
    expect(again.statusCode).toBe(404);
    expect(again.json()).toMatchObject({ code: 'SERVICE_NOT_FOUND' });
    const list = (await call({ method: 'GET', url: '/system/services' })).json() as Array<{ name: string }>;
    expect(list.map((s) => s.name)).not.toContain('doomed');
  });

  it('lets the name be reused with a fresh token', async () => {
    expect((await create({ name: 'reborn', image: 'alpine', script: 's' })).statusCode).toBe(201);
    const first = (await get('reborn')).token;
    expect((await call({ method: 'DELETE', url: '/system/services/reborn' })).statusCode).toBe(204);
    expect((await create({ name: 'reborn', image: 'alpine', script: 's' })).statusCode).toBe(201);
    const second = (await get('reborn')).token;
    expect(second).toMatch(/^[0-9a-f]{64}$/);
    expect(second).not.toBe(first);
  });
});

describe('authentication', () => {
  it('needs credentials on every services route (401 with WWW-Authenticate)', async () => {
    const routes: InjectOptions[] = [
      { method: 'GET', url: '/system/services' },
      { method: 'POST', url: '/system/services', payload: { name: 'x', image: 'alpine', script: 's' } },
      { method: 'PUT', url: '/system/services', payload: { name: 'defaults', image: 'alpine', script: 's' } },
      { method: 'GET', url: '/system/services/defaults' },
      { method: 'DELETE', url: '/system/services/defaults' },
    ];
    for (const r of routes) {
      const res = await tm.manager.http.inject(r);
      expect(res.statusCode, `${r.method} ${r.url}`).toBe(401);
      expect(res.headers['www-authenticate']).toMatch(/Basic/);
      expect(res.json()).toMatchObject({ code: 'UNAUTHORIZED', statusCode: 401 });
    }
    expect((await getRes('defaults')).statusCode).toBe(200);
  });
});

describe('?include=deployment on the process executor', () => {
  it("each service's summary reads unavailable naming the executor; a forged deployment field is never shown", async () => {
    const res = await create({
      name: 'incl',
      image: 'alpine',
      script: 'echo hi',
      deployment: { state: 'ready', active_instances: 7, resource_kind: 'exposed_service' },
    });
    expect(res.statusCode, res.body).toBe(201);
    expect((await get('incl')).deployment).toBeUndefined();
    const read = await call({ method: 'GET', url: '/system/services/incl?include=deployment' });
    expect(read.statusCode, read.body).toBe(200);
    expect(read.json().deployment).toMatchObject({
      state: 'unavailable',
      resource_kind: 'unavailable',
      active_instances: 0,
      affected_instances: 0,
    });
    expect(read.json().deployment.reason).toContain('process executor');
    expect(read.json().deployment.service_name).toBeUndefined();
    const list = await call({ method: 'GET', url: '/system/services?include=deployment' });
    expect(list.statusCode).toBe(200);
    for (const s of list.json()) expect(s.deployment?.state, s.name).toBe('unavailable');
    const other = await call({ method: 'GET', url: '/system/services/incl?include=volumes' });
    expect(other.json().deployment).toBeUndefined();
  });
});
