// Per-user namespaces go with their owner's last service in them, against a fake API server
// that only accepts objects in namespaces that exist: alice's namespace stays while one of her
// USER services is in it and is deleted (with everything in it) with the
// last; a later service makes it again. Hostile: a namespace of bob's name that Flotilla did not
// make (no labels, or Flotilla's label with another base) is used but never deleted, nor what
// is in it; bob cannot delete alice's last service (403, her namespace stays); a cluster that
// cannot be reached refuses the delete (503, the service stays) and a retry finishes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { userNamespace } from '../../src/adapters/executor-kubernetes/namespaces.ts';
import { type FakeKubeApi, startFakeKubeApi } from '../support/fake-kube-api.ts';
import { startInProcess, type TestManager } from '../support/in-process.ts';
import { type OidcProviderFixture, startOidcProvider } from '../support/oidc-provider.ts';
import { ALICE, BOB, CAROL } from '../support/tenants.ts';

const NS = 'svc-ns';
const ALICE_NS = userNamespace(NS, ALICE);
const BOB_NS = userNamespace(NS, BOB);
const CAROL_NS = userNamespace(NS, CAROL);
let fake: FakeKubeApi;
let tm: TestManager;
let idp: OidcProviderFixture;
const tokens = new Map<string, string>();
const dir = mkdtempSync(join(tmpdir(), 'flotilla-kube-userns-rel-'));
const call = (who: string, opts: InjectOptions) =>
  tm.manager.http.inject({
    ...opts,
    headers: { authorization: `Bearer ${tokens.get(who)}`, ...opts.headers },
  });
const service = (name: string, over: Record<string, unknown> = {}) => ({
  name,
  image: 'ghcr.io/example/app:1',
  script: 'echo hi\n',
  isolation_level: 'USER',
  expose: { api_port: 8080 },
  ...over,
});
const create = async (who: string, name: string, over: Record<string, unknown> = {}) => {
  const res = await call(who, { method: 'POST', url: '/system/services', payload: service(name, over) });
  expect(res.statusCode, res.body).toBe(201);
};
const del = (who: string, name: string) => call(who, { method: 'DELETE', url: `/system/services/${name}` });
const exists = (ns: string) => fake.namespaces().some((n) => n.metadata.name === ns);

beforeAll(async () => {
  fake = await startFakeKubeApi({ kubelet: 'manual', namespaces: [NS, BOB_NS] });
  idp = await startOidcProvider({ accessTokenTtl: 3600 });
  for (const u of [ALICE, BOB, CAROL])
    tokens.set(u, (await idp.mintTokens(u, { expiresIn: 3600 })).accessToken);
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

describe('a user namespace goes with its owner’s last service in it', () => {
  it('kept while one of her USER services is in it; deleted with the last, then made again', async () => {
    await create(ALICE, 'rel-a1');
    await create(ALICE, 'rel-a2');
    await create(ALICE, 'rel-shared', { isolation_level: 'SERVICE' });
    expect(exists(ALICE_NS)).toBe(true);
    expect((await del(ALICE, 'rel-a1')).statusCode).toBe(204);
    expect(exists(ALICE_NS)).toBe(true);
    expect(fake.get('deployments', ALICE_NS, 'rel-a2-dpl')).toBeDefined();
    // A service of hers in the shared namespace does not hold her own one.
    expect((await del(ALICE, 'rel-a2')).statusCode).toBe(204);
    expect(exists(ALICE_NS)).toBe(false);
    expect(exists(NS)).toBe(true);
    expect(fake.get('deployments', NS, 'rel-shared-dpl')).toBeDefined();
    await create(ALICE, 'rel-a3');
    expect(exists(ALICE_NS)).toBe(true);
    expect(fake.get('deployments', ALICE_NS, 'rel-a3-dpl')).toBeDefined();
  });

  it('an update moving her last service out of it (USER → SERVICE) releases it', async () => {
    const res = await call(ALICE, {
      method: 'PUT',
      url: '/system/services',
      payload: service('rel-a3', { isolation_level: 'SERVICE' }),
    });
    expect(res.statusCode, res.body).toBe(204);
    expect(exists(ALICE_NS)).toBe(false);
    expect(fake.get('deployments', NS, 'rel-a3-dpl')).toBeDefined();
  });

  it("bob cannot delete alice's last service in her namespace: 403, her namespace stays", async () => {
    await create(ALICE, 'rel-a4');
    expect(exists(ALICE_NS)).toBe(true);
    const res = await del(BOB, 'rel-a4');
    expect(res.statusCode, res.body).toBe(403);
    expect(exists(ALICE_NS)).toBe(true);
    expect(fake.get('deployments', ALICE_NS, 'rel-a4-dpl')).toBeDefined();
  });

  it('the API unreachable for the namespace delete: 503 naming it, the service stays; a retry finishes', async () => {
    fake.fail((r) => r.method === 'DELETE' && r.path === `/api/v1/namespaces/${ALICE_NS}`);
    try {
      const res = await del(ALICE, 'rel-a4');
      expect(res.statusCode, res.body).toBe(503);
      expect(res.json().message).toContain(`cannot delete the user namespace ${ALICE_NS}`);
    } finally {
      fake.fail(null);
    }
    expect((await call(ALICE, { method: 'GET', url: '/system/services/rel-a4' })).statusCode).toBe(200);
    expect(exists(ALICE_NS)).toBe(true);
    expect((await del(ALICE, 'rel-a4')).statusCode).toBe(204);
    expect(exists(ALICE_NS)).toBe(false);
  });
});

describe('a namespace of that name Flotilla did not make', () => {
  it("bob's: used for his service, left in place (with what else is in it) when his last goes", async () => {
    const foreign = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'theirs', namespace: BOB_NS },
      data: { a: 'b' },
    };
    const put = await fetch(`${fake.url}/api/v1/namespaces/${BOB_NS}/configmaps`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(foreign),
    });
    expect(put.status).toBe(201);
    await create(BOB, 'rel-b');
    expect(fake.get('deployments', BOB_NS, 'rel-b-dpl')).toBeDefined();
    expect((await del(BOB, 'rel-b')).statusCode).toBe(204);
    expect(exists(BOB_NS)).toBe(true);
    expect(fake.get('configmaps', BOB_NS, 'theirs')).toBeDefined();
    expect(fake.get('deployments', BOB_NS, 'rel-b-dpl')).toBeUndefined();
  });

  it("Flotilla's managed-by label but another base: not ours either, left in place", async () => {
    const made = await fetch(`${fake.url}/api/v1/namespaces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: {
          name: CAROL_NS,
          labels: { 'app.kubernetes.io/managed-by': 'flotilla', 'flotilla.grycap/base': 'other' },
        },
      }),
    });
    expect(made.status).toBe(201);
    await create(CAROL, 'rel-c');
    expect((await del(CAROL, 'rel-c')).statusCode).toBe(204);
    expect(exists(CAROL_NS)).toBe(true);
  });
});
