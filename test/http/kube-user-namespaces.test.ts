// Per-user namespaces (isolation_level USER) on a manager with the Kubernetes executor, against
// a fake API server that only accepts objects in namespaces that exist: the owner's namespace
// is made on first use and the service's jobs (one more pod watch, for that namespace) and
// exposed workload go there; another user's go to theirs; a service without it stays in the
// services namespace. Hostile: an FDL `namespace` field naming someone else's namespace (or
// kube-system) changes nothing; a user cannot read another's deployment there.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { userNamespace } from '../../src/adapters/executor-kubernetes/namespaces.ts';
import { type FakeKubeApi, startFakeKubeApi } from '../support/fake-kube-api.ts';
import { startInProcess, type TestManager } from '../support/in-process.ts';
import { type OidcProviderFixture, startOidcProvider } from '../support/oidc-provider.ts';
import { ALICE, BOB } from '../support/tenants.ts';
import { waitFor } from '../support/wait.ts';

const NS = 'svc-ns';
const ALICE_NS = userNamespace(NS, ALICE);
const BOB_NS = userNamespace(NS, BOB);
let fake: FakeKubeApi;
let tm: TestManager;
let idp: OidcProviderFixture;
const tokens = new Map<string, string>();
const dir = mkdtempSync(join(tmpdir(), 'flotilla-kube-userns-'));
const call = (who: string, opts: InjectOptions) =>
  tm.manager.http.inject({
    ...opts,
    headers: { authorization: `Bearer ${tokens.get(who)}`, ...opts.headers },
  });

const service = (name: string, over: Record<string, unknown> = {}) => ({
  name,
  image: 'ghcr.io/example/app:1',
  script: 'echo "in $OSCAR_SERVICE_NAME"\n',
  isolation_level: 'USER',
  expose: { api_port: 8080 },
  ...over,
});

const runJob = async (who: string, name: string) => {
  const { token } = (await call(who, { method: 'GET', url: `/system/services/${name}` })).json();
  const res = await tm.manager.http.inject({
    method: 'POST',
    url: `/job/${name}`,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    payload: '{}',
  });
  expect(res.statusCode, res.body).toBe(201);
  const { job_id: jobId } = res.json();
  const status = await waitFor(
    async () => {
      const s = (await call(who, { method: 'GET', url: `/system/logs/${name}` })).json().jobs?.[jobId]
        ?.status;
      return s === 'Succeeded' || s === 'Failed' ? s : undefined;
    },
    20_000,
    `job of ${name}`,
  );
  const log = (await call(who, { method: 'GET', url: `/system/logs/${name}/${jobId}` })).body;
  return { jobId, status, log };
};

beforeAll(async () => {
  fake = await startFakeKubeApi({ kubelet: 'shell', namespaces: [NS] });
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

describe('per-user namespaces', () => {
  it("alice's USER service: her namespace made on first use, the exposed workload in it", async () => {
    expect(ALICE_NS).not.toBe(BOB_NS);
    const res = await call(ALICE, { method: 'POST', url: '/system/services', payload: service('iso-a') });
    expect(res.statusCode, res.body).toBe(201);
    const made = fake.namespaces().find((n) => n.metadata.name === ALICE_NS);
    expect(made?.metadata.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'flotilla' });
    expect(JSON.stringify(made)).not.toContain(ALICE);
    expect(fake.get('deployments', ALICE_NS, 'iso-a-dpl')).toBeDefined();
    expect(fake.list('deployments', NS)).toEqual([]);
    const status = (await call(ALICE, { method: 'GET', url: '/system/services/iso-a/deployment' })).json();
    expect(status).toMatchObject({ namespace: ALICE_NS, state: 'ready' });
  });

  it("its jobs run in her namespace, followed by that namespace's own pod watch", async () => {
    const { jobId, status, log } = await runJob(ALICE, 'iso-a');
    expect(status, log).toBe('Succeeded');
    expect(log).toContain('in iso-a');
    const job = fake.received.find((r) => r.kind === 'jobs' && r.object.metadata.labels?.oscar_job === jobId);
    expect(job?.object.metadata.namespace).toBe(ALICE_NS);
    const watched = new Set(fake.watchRequests.filter((w) => w.kind === 'pods').map((w) => w.namespace));
    expect(watched).toEqual(new Set([ALICE_NS]));
  });

  it("an FDL namespace naming bob's namespace or kube-system changes nothing: bob's service goes to his", async () => {
    for (const namespace of [ALICE_NS, 'kube-system']) {
      const res = await call(BOB, {
        method: 'POST',
        url: '/system/services',
        payload: service(`iso-b-${namespace === 'kube-system' ? 'k' : 'a'}`, { namespace }),
      });
      expect(res.statusCode, res.body).toBe(201);
    }
    expect(
      fake
        .list('deployments', BOB_NS)
        .map((d) => d.metadata.name)
        .sort(),
    ).toEqual(['iso-b-a-dpl', 'iso-b-k-dpl']);
    expect(fake.list('deployments', ALICE_NS).map((d) => d.metadata.name)).toEqual(['iso-a-dpl']);
    expect(fake.list('deployments', 'kube-system')).toEqual([]);
    const { status } = await runJob(BOB, 'iso-b-a');
    expect(status).toBe('Succeeded');
    expect(
      fake.received.filter(
        (r) =>
          r.object.metadata?.namespace === ALICE_NS &&
          r.object.metadata.labels?.oscar_service?.startsWith('iso-b'),
      ),
    ).toEqual([]);
  });

  it("bob cannot read alice's private deployment in her namespace", async () => {
    const res = await call(BOB, { method: 'GET', url: '/system/services/iso-a/deployment' });
    expect([403, 404]).toContain(res.statusCode);
    expect(res.body).not.toContain(ALICE_NS);
  });

  it('a service without isolation_level USER stays in the services namespace', async () => {
    const res = await call(ALICE, {
      method: 'POST',
      url: '/system/services',
      payload: service('shared', { isolation_level: 'SERVICE' }),
    });
    expect(res.statusCode, res.body).toBe(201);
    expect(fake.get('deployments', NS, 'shared-dpl')).toBeDefined();
    const { status } = await runJob(ALICE, 'shared');
    expect(status).toBe('Succeeded');
  });

  it('isolation_level USER → SERVICE moves the workload out of her namespace; delete removes it', async () => {
    const res = await call(ALICE, {
      method: 'PUT',
      url: '/system/services',
      payload: service('iso-a', { isolation_level: 'SERVICE' }),
    });
    expect(res.statusCode, res.body).toBe(204);
    expect(fake.get('deployments', ALICE_NS, 'iso-a-dpl')).toBeUndefined();
    expect(
      fake.list('configmaps', ALICE_NS).filter((c) => c.metadata.labels?.oscar_service === 'iso-a'),
    ).toEqual([]);
    expect(fake.get('deployments', NS, 'iso-a-dpl')).toBeDefined();
    expect((await call(ALICE, { method: 'DELETE', url: '/system/services/iso-a' })).statusCode).toBe(204);
    expect(fake.get('deployments', NS, 'iso-a-dpl')).toBeUndefined();
  });
});
