// Exposed services (FDL `expose`) on a whole manager with the Kubernetes executor, against the
// fake API server (which validates every Deployment, Service, Ingress, HPA and Secret it gets):
// create makes the workload, update replaces it (Ingress → NodePort), delete removes it;
// /system/services/{name}/deployment, …/deployment/logs and …/start|stop|restart answer as
// OSCAR's handlers do. Hostile users: another user sees nothing of a private service's
// deployment and may not start/stop/restart even a public one; a bad expose block is a 400
// with nothing sent to the cluster; no secret lands outside a Secret.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeKubeApi, startFakeKubeApi } from '../support/fake-kube-api.ts';
import { basic, startInProcess, type TestManager } from '../support/in-process.ts';
import { type OidcProviderFixture, startOidcProvider } from '../support/oidc-provider.ts';
import { loadOscarContract } from '../support/oscar-contract.ts';
import { ALICE, BOB } from '../support/tenants.ts';

const NS = 'svc-ns';
let fake: FakeKubeApi;
let tm: TestManager;
let idp: OidcProviderFixture;
const tokens = new Map<string, string>();
const dir = mkdtempSync(join(tmpdir(), 'flotilla-kube-expose-'));
const as = (who: string) =>
  who === 'admin' ? { authorization: basic() } : { authorization: `Bearer ${tokens.get(who)}` };
const call = (who: string, opts: InjectOptions) =>
  tm.manager.http.inject({ ...opts, headers: { ...as(who), ...opts.headers } });

const SECRET = 'exposed-db-s3cr3t';
const web = (over: Record<string, unknown> = {}) => ({
  name: 'web',
  image: 'ghcr.io/example/web:1',
  script: 'exec python3 -m http.server 8080\n',
  cpu: '0.25',
  memory: '128Mi',
  visibility: 'public',
  environment: { variables: { MODE: 'prod' }, secrets: { DB_PASSWORD: SECRET } },
  expose: { api_port: 8080, min_scale: 2, max_scale: 4, set_auth: true },
  ...over,
});
const objects = (kind: Parameters<FakeKubeApi['list']>[0]) =>
  fake
    .list(kind, NS)
    .filter(
      (o) => o.metadata.labels?.oscar_service === 'web' || o.metadata.labels?.app === 'oscar-svc-exp-web',
    );
const names = (kind: Parameters<FakeKubeApi['list']>[0]) =>
  objects(kind)
    .map((o) => o.metadata.name)
    .sort();

beforeAll(async () => {
  fake = await startFakeKubeApi({ kubelet: 'manual' });
  idp = await startOidcProvider({ accessTokenTtl: 3600 });
  for (const u of [ALICE, BOB]) tokens.set(u, (await idp.mintTokens(u, { expiresIn: 3600 })).accessToken);
  const kubeconfig = join(dir, 'kubeconfig');
  fake.writeKubeconfig(kubeconfig);
  tm = await startInProcess({ executor: 'kubernetes', kubeconfig, namespace: NS, oidcIssuers: idp.issuer });
});

afterAll(async () => {
  await tm?.close();
  await idp?.stop();
  await fake?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('exposed services on the Kubernetes executor', () => {
  it('a bad expose block is a 400 naming the field, and nothing reaches the cluster', async () => {
    const before = fake.received.length;
    for (const expose of [
      { api_port: 99999 },
      { api_port: 8080, nodePort: 22 },
      { api_port: 8080, max_scale: 0 },
    ]) {
      const res = await call(ALICE, { method: 'POST', url: '/system/services', payload: web({ expose }) });
      expect(res.statusCode, res.body).toBe(400);
      expect(res.body).toMatch(/expose\./);
    }
    expect(fake.received.length).toBe(before);
    const gone = await call(ALICE, { method: 'GET', url: '/system/services/web' });
    expect(gone.statusCode).toBe(404);
  });

  it('create makes the ConfigMap, Secret, Deployment, HPA, Service, Ingress and auth Secret, all schema-valid', async () => {
    const res = await call(ALICE, { method: 'POST', url: '/system/services', payload: web() });
    expect(res.statusCode, res.body).toBe(201);
    expect(names('deployments')).toEqual(['web-dpl']);
    expect(names('horizontalpodautoscalers')).toEqual(['web-hpa']);
    expect(names('services')).toEqual(['web-svc']);
    expect(names('ingresses')).toEqual(['web-ing']);
    expect(names('secrets')).toEqual(['web-auth-expose', 'web-expose-env']);
    expect(names('configmaps')).toEqual(['web']);
    expect(fake.received.filter((r) => r.status === 422)).toEqual([]);
    // two replicas (min_scale), pods labelled as OSCAR labels them
    expect(objects('pods').length).toBe(2);
    // the secret value only in the environment Secret
    for (const kind of [
      'configmaps',
      'deployments',
      'services',
      'ingresses',
      'horizontalpodautoscalers',
    ] as const) {
      expect(JSON.stringify(objects(kind))).not.toContain(SECRET);
    }
    const env = fake.get('secrets', NS, 'web-expose-env');
    expect(Buffer.from(env.data.DB_PASSWORD, 'base64').toString()).toBe(SECRET);
  });

  it('GET …/deployment: ready with the instances, as OSCAR answers', async () => {
    const res = await call(ALICE, { method: 'GET', url: '/system/services/web/deployment' });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({
      service_name: 'web',
      namespace: NS,
      state: 'ready',
      reason: 'Deployment has minimum availability.',
      active_instances: 2,
      affected_instances: 0,
      resource_kind: 'exposed_service',
    });
    expect(res.json().last_transition_time).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it('GET …/deployment/logs: the pods’ lines, with timestamps when asked, tailLines honoured', async () => {
    const plain = (await call(ALICE, { method: 'GET', url: '/system/services/web/deployment/logs' })).json();
    expect(plain.available).toBe(true);
    expect(plain.entries).toHaveLength(2);
    expect(plain.entries[0]).toEqual({ message: 'serving ghcr.io/example/web:1 on :8080' });
    const stamped = (
      await call(ALICE, {
        method: 'GET',
        url: '/system/services/web/deployment/logs?timestamps=true&tailLines=1',
      })
    ).json();
    expect(stamped.entries).toHaveLength(1);
    expect(stamped.entries[0].timestamp).toMatch(/^\d{4}-\d\d-\d\dT/);
    const bad = await call(ALICE, {
      method: 'GET',
      url: '/system/services/web/deployment/logs?tailLines=-3',
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toMatch(/tailLines/);
  });

  it('bob may read the status of a public service but not stop, start or restart it (403); nothing changes', async () => {
    const status = await call(BOB, { method: 'GET', url: '/system/services/web/deployment' });
    expect(status.statusCode).toBe(200);
    const puts = fake.received.filter((r) => r.method === 'PUT').length;
    for (const action of ['stop', 'start', 'restart']) {
      const res = await call(BOB, { method: 'POST', url: `/system/services/web/${action}` });
      expect(res.statusCode, `${action}: ${res.body}`).toBe(403);
    }
    // nor with the service's own token (it invokes; it does not manage)
    const token = (await call(ALICE, { method: 'GET', url: '/system/services/web' })).json().token;
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    const withToken = await tm.manager.http.inject({
      method: 'POST',
      url: '/system/services/web/stop',
      headers: { authorization: `Bearer ${token}` },
    });
    expect([401, 403], withToken.body).toContain(withToken.statusCode);
    expect(fake.received.filter((r) => r.method === 'PUT').length).toBe(puts);
    expect(fake.get('deployments', NS, 'web-dpl').spec.replicas).toBe(2);
  });

  it('stop: replicas 0, previous replicas kept in an annotation, HPA removed; state stopped', async () => {
    const res = await call(ALICE, { method: 'POST', url: '/system/services/web/stop' });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({
      state: 'stopped',
      reason: 'Deployment is stopped.',
      active_instances: 0,
    });
    const d = fake.get('deployments', NS, 'web-dpl');
    expect(d.spec.replicas).toBe(0);
    expect(d.metadata.annotations).toMatchObject({
      'oscar.grycap.io/previous-replicas': '2',
      'oscar.grycap.io/stopped': 'true',
    });
    expect(names('horizontalpodautoscalers')).toEqual([]);
    expect(objects('pods')).toEqual([]);
  });

  it('an update of a stopped service keeps it stopped', async () => {
    const res = await call(ALICE, {
      method: 'PUT',
      url: '/system/services',
      payload: web({ image: 'ghcr.io/example/web:2' }),
    });
    expect(res.statusCode, res.body).toBe(204);
    const d = fake.get('deployments', NS, 'web-dpl');
    expect(d.spec.replicas).toBe(0);
    expect(d.spec.template.spec.containers[0].image).toBe('ghcr.io/example/web:2');
    expect(names('horizontalpodautoscalers')).toEqual([]);
  });

  it('start: the previous replicas back, HPA back; restart: a new rollout', async () => {
    const started = await call(ALICE, { method: 'POST', url: '/system/services/web/start' });
    expect(started.statusCode, started.body).toBe(200);
    expect(started.json()).toMatchObject({ state: 'ready', active_instances: 2 });
    expect(fake.get('deployments', NS, 'web-dpl').metadata.annotations['oscar.grycap.io/stopped']).toBe(
      'false',
    );
    expect(names('horizontalpodautoscalers')).toEqual(['web-hpa']);
    const podsBefore = objects('pods').map((p) => p.metadata.name);
    const restarted = await call('admin', { method: 'POST', url: '/system/services/web/restart' });
    expect(restarted.statusCode, restarted.body).toBe(200);
    const d = fake.get('deployments', NS, 'web-dpl');
    expect(d.spec.template.metadata.annotations['oscar.grycap.io/restarted-at']).toMatch(/^\d{4}-/);
    const podsAfter = objects('pods').map((p) => p.metadata.name);
    expect(podsAfter).toHaveLength(2);
    expect(podsAfter.some((p) => podsBefore.includes(p))).toBe(false);
  });

  it('update to a NodePort: Service NodePort with the same clusterIP, Ingress and auth Secret removed', async () => {
    const ip = fake.get('services', NS, 'web-svc').spec.clusterIP;
    const res = await call(ALICE, {
      method: 'PUT',
      url: '/system/services',
      payload: web({ expose: { api_port: 8080, nodePort: 30080, min_scale: 1 } }),
    });
    expect(res.statusCode, res.body).toBe(204);
    const svc = fake.get('services', NS, 'web-svc');
    expect(svc.spec).toMatchObject({ type: 'NodePort', clusterIP: ip });
    expect(svc.spec.ports[0]).toMatchObject({ port: 80, targetPort: 8080, nodePort: 30080 });
    expect(names('ingresses')).toEqual([]);
    expect(names('secrets')).toEqual(['web-expose-env']);
    // the restart annotation survives an update (no surprise rollout back)
    expect(fake.get('deployments', NS, 'web-dpl').spec.template.metadata.annotations).toBeDefined();
  });

  it('a private service: bob gets 403 on its deployment, logs and lifecycle routes', async () => {
    const res = await call(ALICE, {
      method: 'POST',
      url: '/system/services',
      payload: { ...web({ name: 'priv', visibility: 'private' }) },
    });
    expect(res.statusCode, res.body).toBe(201);
    for (const [method, path] of [
      ['GET', 'deployment'],
      ['GET', 'deployment/logs'],
      ['POST', 'stop'],
      ['POST', 'start'],
      ['POST', 'restart'],
    ] as const) {
      const r = await call(BOB, { method, url: `/system/services/priv/${path}` });
      expect([403, 404], `${method} ${path}: ${r.statusCode} ${r.body}`).toContain(r.statusCode);
      expect(r.body).not.toContain(NS);
    }
    expect(fake.get('deployments', NS, 'priv-dpl').spec.replicas).toBe(2);
    expect((await call(ALICE, { method: 'DELETE', url: '/system/services/priv' })).statusCode).toBe(204);
  });

  it('a service that is not exposed: status unavailable, lifecycle 400', async () => {
    const res = await call(ALICE, {
      method: 'POST',
      url: '/system/services',
      payload: { name: 'plain', image: 'alpine', script: 'echo hi' },
    });
    expect(res.statusCode, res.body).toBe(201);
    const status = (await call(ALICE, { method: 'GET', url: '/system/services/plain/deployment' })).json();
    expect(status).toMatchObject({ state: 'unavailable', resource_kind: 'unavailable' });
    const stop = await call(ALICE, { method: 'POST', url: '/system/services/plain/stop' });
    expect(stop.statusCode).toBe(400);
    expect(stop.body).toMatch(/not exposed/);
  });

  it('the deployment gone behind our back: status unavailable, stop 404', async () => {
    await fetch(`${fake.url}/apis/apps/v1/namespaces/${NS}/deployments/web-dpl`, { method: 'DELETE' });
    const status = (await call(ALICE, { method: 'GET', url: '/system/services/web/deployment' })).json();
    expect(status).toMatchObject({
      state: 'unavailable',
      reason: 'Current deployment resources are unavailable.',
    });
    const stop = await call(ALICE, { method: 'POST', url: '/system/services/web/stop' });
    expect(stop.statusCode).toBe(404);
    // an update puts it back
    const res = await call(ALICE, { method: 'PUT', url: '/system/services', payload: web() });
    expect(res.statusCode, res.body).toBe(204);
    expect(names('deployments')).toEqual(['web-dpl']);
  });

  it('delete removes every object of the workload, and the pods', async () => {
    const res = await call(ALICE, { method: 'DELETE', url: '/system/services/web' });
    expect(res.statusCode, res.body).toBe(204);
    for (const kind of [
      'deployments',
      'horizontalpodautoscalers',
      'services',
      'ingresses',
      'secrets',
      'configmaps',
      'pods',
    ] as const) {
      expect(objects(kind), kind).toEqual([]);
    }
  });
});

describe('a delete while the API server cannot be reached', () => {
  const KINDS = [
    'deployments',
    'horizontalpodautoscalers',
    'services',
    'ingresses',
    'secrets',
    'configmaps',
  ] as const;
  const left = () =>
    KINDS.flatMap((kind) =>
      fake
        .list(kind, NS)
        .filter((o) => o.metadata.labels?.oscar_service === 'gone' || o.metadata.name.startsWith('gone-'))
        .map((o) => `${kind}/${o.metadata.name}`),
    ).sort();
  const stored = async () => (await call(ALICE, { method: 'GET', url: '/system/services/gone' })).statusCode;

  it('is refused with 503 naming the cause; the service and every object stay, so a retry works', async () => {
    const res = await call(ALICE, {
      method: 'POST',
      url: '/system/services',
      payload: web({ name: 'gone' }),
    });
    expect(res.statusCode, res.body).toBe(201);
    const before = left();
    expect(before).toEqual(expect.arrayContaining(['deployments/gone-dpl', 'ingresses/gone-ing']));
    fake.fail();
    try {
      const del = await call(ALICE, { method: 'DELETE', url: '/system/services/gone' });
      expect(del.statusCode, del.body).toBe(503);
      expect(del.json().message).toMatch(
        /^cannot remove the workload of exposed service "gone": the Kubernetes API cannot be reached \(/,
      );
    } finally {
      fake.fail(null);
    }
    expect(await stored()).toBe(200);
    expect(left()).toEqual(before);
  });

  it('a cluster failing part way: 503, the service stays; the retry removes the rest, nothing orphaned', async () => {
    fake.fail((r) => r.method === 'DELETE' && r.path.includes('/ingresses/'));
    try {
      const del = await call(ALICE, { method: 'DELETE', url: '/system/services/gone' });
      expect(del.statusCode, del.body).toBe(503);
    } finally {
      fake.fail(null);
    }
    expect(await stored()).toBe(200);
    expect(left()).toContain('ingresses/gone-ing');
    const retry = await call(ALICE, { method: 'DELETE', url: '/system/services/gone' });
    expect(retry.statusCode, retry.body).toBe(204);
    expect(await stored()).toBe(404);
    expect(left()).toEqual([]);
  });

  it("bob deleting alice's exposed service is a 403 before any cluster call: nothing removed", async () => {
    const res = await call(ALICE, {
      method: 'POST',
      url: '/system/services',
      payload: web({ name: 'gone' }),
    });
    expect(res.statusCode, res.body).toBe(201);
    const before = left();
    const deletes = () => fake.received.length;
    const n = deletes();
    const del = await call(BOB, { method: 'DELETE', url: '/system/services/gone' });
    expect(del.statusCode, del.body).toBe(403);
    expect(left()).toEqual(before);
    expect(deletes()).toBe(n);
    expect(await stored()).toBe(200);
    expect((await call(ALICE, { method: 'DELETE', url: '/system/services/gone' })).statusCode).toBe(204);
    expect(left()).toEqual([]);
  });
});

describe('what the cluster refuses', () => {
  it("bob's service on alice's node port: 400 with the API server's reason, none of bob's objects left", async () => {
    const a = await call(ALICE, {
      method: 'POST',
      url: '/system/services',
      payload: web({ name: 'np-a', expose: { api_port: 8080, nodePort: 31111 } }),
    });
    expect(a.statusCode, a.body).toBe(201);
    const b = await call(BOB, {
      method: 'POST',
      url: '/system/services',
      payload: web({ name: 'np-b', expose: { api_port: 8080, nodePort: 31111 } }),
    });
    expect(b.statusCode, b.body).toBe(400);
    expect(b.body).toMatch(/already allocated/);
    expect(b.body).not.toContain(SECRET);
    expect(fake.list('deployments', NS).map((d) => d.metadata.name)).not.toContain('np-b-dpl');
    expect(fake.list('secrets', NS).map((d) => d.metadata.name)).not.toContain('np-b-expose-env');
    expect((await call(BOB, { method: 'GET', url: '/system/services/np-b' })).statusCode).toBe(404);
    expect(fake.get('services', NS, 'np-a-svc').spec.ports[0].nodePort).toBe(31111);
  });

  it("an object of the same name someone else made is a 409, left alone, and this create's own objects are undone", async () => {
    const foreign = await fetch(`${fake.url}/api/v1/namespaces/${NS}/configmaps`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'squat' },
        data: { keep: 'me' },
      }),
    });
    expect(foreign.status).toBe(201);
    const res = await call(BOB, { method: 'POST', url: '/system/services', payload: web({ name: 'squat' }) });
    expect(res.statusCode, res.body).toBe(409);
    expect(res.json().message).toMatch(/ConfigMap named "squat" that this service did not make/);
    expect(fake.get('configmaps', NS, 'squat').data).toEqual({ keep: 'me' });
    expect(fake.list('secrets', NS).map((o) => o.metadata.name)).not.toContain('squat-expose-env');
    expect((await call(BOB, { method: 'GET', url: '/system/services/squat' })).statusCode).toBe(404);
  });

  it('the fake refuses an object that fails the official schema (422)', async () => {
    const res = await fetch(`${fake.url}/apis/apps/v1/namespaces/${NS}/deployments`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'bad' },
        spec: { replicas: 'two', selector: {}, template: {} },
      }),
    });
    expect(res.status).toBe(422);
    expect(fake.get('deployments', NS, 'bad')).toBeUndefined();
  });
});

describe('names no other service can take', () => {
  it("bob's service named alice-svc-auth-expose cannot overwrite alice's basic-auth Secret with its own", async () => {
    const a = await call(ALICE, { method: 'POST', url: '/system/services', payload: web({ name: 'alc' }) });
    expect(a.statusCode, a.body).toBe(201);
    const before = fake.get('secrets', NS, 'alc-auth-expose');
    expect(before.data.auth).toBeDefined();
    const forged = Buffer.from('alc:{PLAIN}bob-knows-this').toString();
    const b = await call(BOB, {
      method: 'POST',
      url: '/system/services',
      payload: web({ name: 'alc-auth-expose', environment: { secrets: { auth: forged } } }),
    });
    expect(b.statusCode, b.body).toBe(201);
    const again = await call(BOB, {
      method: 'PUT',
      url: '/system/services',
      payload: web({ name: 'alc-auth-expose', environment: { secrets: { auth: forged } } }),
    });
    expect(again.statusCode, again.body).toBe(204);
    const after = fake.get('secrets', NS, 'alc-auth-expose');
    expect(after.data).toEqual(before.data);
    expect(after.metadata.labels.oscar_service).toBe('alc');
    for (const who of [ALICE, BOB]) {
      const name = who === ALICE ? 'alc' : 'alc-auth-expose';
      expect((await call(who, { method: 'DELETE', url: `/system/services/${name}` })).statusCode).toBe(204);
    }
  });
});

describe('a workload that does not come up', () => {
  it('pods in CrashLoopBackOff: state failed with the container reason; logs still readable', async () => {
    const res = await call(ALICE, {
      method: 'POST',
      url: '/system/services',
      payload: web({ name: 'crashy', image: 'ghcr.io/example/crash:1' }),
    });
    expect(res.statusCode, res.body).toBe(201);
    const status = (await call(ALICE, { method: 'GET', url: '/system/services/crashy/deployment' })).json();
    expect(status).toMatchObject({
      state: 'failed',
      reason: 'back-off restarting failed container oscar-container',
      active_instances: 2,
      affected_instances: 2,
    });
    const logs = (
      await call(ALICE, { method: 'GET', url: '/system/services/crashy/deployment/logs' })
    ).json();
    expect(logs.entries.map((e: { message: string }) => e.message)).toContain('fatal: cannot start');
    expect((await call(ALICE, { method: 'DELETE', url: '/system/services/crashy' })).statusCode).toBe(204);
  });
});

describe("OSCAR's contract", () => {
  it('status, logs, stop, start and restart answers validate against oscar-swagger-v4.1.2', async () => {
    const loaded = loadOscarContract();
    expect(loaded.reason).toBeUndefined();
    const contract = loaded.contract!;
    const created = await call(ALICE, {
      method: 'POST',
      url: '/system/services',
      payload: web({ name: 'ct' }),
    });
    expect(created.statusCode, created.body).toBe(201);
    const checks: Array<[string, string, string]> = [
      ['GET', '/system/services/ct/deployment', '/system/services/{serviceName}/deployment'],
      [
        'GET',
        '/system/services/ct/deployment/logs?timestamps=true',
        '/system/services/{serviceName}/deployment/logs',
      ],
      ['POST', '/system/services/ct/stop', '/system/services/{serviceName}/stop'],
      ['POST', '/system/services/ct/start', '/system/services/{serviceName}/start'],
      ['POST', '/system/services/ct/restart', '/system/services/{serviceName}/restart'],
    ];
    for (const [method, url, template] of checks) {
      const res = await call(ALICE, { method: method as 'GET' | 'POST', url });
      expect(res.statusCode, `${method} ${url}: ${res.body}`).toBe(200);
      const result = contract.validateOscarResponse(method, template, 200, res.json());
      expect(result.errors, `${method} ${url}`).toEqual([]);
    }
    expect((await call(ALICE, { method: 'DELETE', url: '/system/services/ct' })).statusCode).toBe(204);
  });
});

describe('?include=deployment on GET /system/services[/{name}] (OSCAR’s deployment summary)', () => {
  const SUMMARY_KEYS = ['active_instances', 'affected_instances', 'reason', 'resource_kind', 'state'];

  it('read and list: the summary of an exposed service, none without include; validates against the swagger', async () => {
    const loaded = loadOscarContract();
    expect(loaded.reason).toBeUndefined();
    const contract = loaded.contract!;
    const created = await call(ALICE, {
      method: 'POST',
      url: '/system/services',
      payload: web({ name: 'sum', visibility: 'private' }),
    });
    expect(created.statusCode, created.body).toBe(201);
    const plain = await call(ALICE, { method: 'GET', url: '/system/services/sum' });
    expect(plain.json().deployment).toBeUndefined();
    const res = await call(ALICE, { method: 'GET', url: '/system/services/sum?include=Deployment' });
    expect(res.statusCode, res.body).toBe(200);
    const summary = res.json().deployment;
    expect(summary).toMatchObject({ state: 'ready', resource_kind: 'exposed_service', active_instances: 2 });
    expect(
      Object.keys(summary)
        .filter((k) => k !== 'last_transition_time')
        .sort(),
    ).toEqual(SUMMARY_KEYS);
    expect(
      contract.validateOscarResponse('GET', '/system/services/{serviceName}', 200, res.json()).errors,
    ).toEqual([]);
    const list = await call(ALICE, { method: 'GET', url: '/system/services?include=volumes,%20deployment' });
    expect(list.statusCode, list.body).toBe(200);
    expect(list.json().find((s: { name: string }) => s.name === 'sum').deployment).toEqual(summary);
    expect(contract.validateOscarResponse('GET', '/system/services', 200, list.json()).errors).toEqual([]);
    // A service that is not exposed reads unavailable, as OSCAR's pod-backed runtime.
    const plainSvc = { name: 'sum-plain', image: 'ghcr.io/example/x:1', script: 'echo\n' };
    const made = await call(ALICE, { method: 'POST', url: '/system/services', payload: plainSvc });
    expect(made.statusCode, made.body).toBe(201);
    const again = await call(ALICE, { method: 'GET', url: '/system/services?include=deployment' });
    expect(again.json().find((s: { name: string }) => s.name === 'sum-plain').deployment).toMatchObject({
      state: 'unavailable',
      resource_kind: 'unavailable',
      active_instances: 0,
    });
  });

  it('hostile bob: nothing of alice’s private service (403, not in his list); a forged deployment field is not shown; a huge include is a 400', async () => {
    const read = await call(BOB, { method: 'GET', url: '/system/services/sum?include=deployment' });
    expect(read.statusCode).toBe(403);
    expect(read.body).not.toContain('exposed_service');
    const list = await call(BOB, { method: 'GET', url: '/system/services?include=deployment' });
    expect(list.statusCode).toBe(200);
    expect(list.json().map((s: { name: string }) => s.name)).not.toContain('sum');
    const forged = await call(BOB, {
      method: 'POST',
      url: '/system/services',
      payload: {
        name: 'forged',
        image: 'ghcr.io/example/x:1',
        script: 'echo\n',
        deployment: { state: 'ready', active_instances: 99, resource_kind: 'exposed_service' },
      },
    });
    expect(forged.statusCode, forged.body).toBe(201);
    const shown = await call(BOB, { method: 'GET', url: '/system/services/forged' });
    expect(shown.json().deployment).toBeUndefined();
    const asked = await call(BOB, { method: 'GET', url: '/system/services/forged?include=deployment' });
    expect(asked.json().deployment).toMatchObject({ state: 'unavailable', active_instances: 0 });
    const huge = await call(BOB, { method: 'GET', url: `/system/services?include=${'d'.repeat(5000)}` });
    expect(huge.statusCode).toBe(400);
  });

  it('the cluster unreachable: 503 naming the cause with include, the plain read still answers', async () => {
    fake.fail();
    try {
      const res = await call(ALICE, { method: 'GET', url: '/system/services/sum?include=deployment' });
      expect(res.statusCode, res.body).toBe(503);
      expect(res.json().message).toContain('cannot read the deployment of "sum"');
      expect((await call(ALICE, { method: 'GET', url: '/system/services/sum' })).statusCode).toBe(200);
    } finally {
      fake.fail(null);
    }
  });
});
