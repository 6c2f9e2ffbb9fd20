// Two real managers over HTTP: a coordinator's own write and the change plan it makes are
// stored together or not at all. A database that refuses the plan leaves the coordinator as it
// was (a kill between the two writes left it at a revision no member would ever reach), and a
// service write that fails (a hook refusing a delete, the database down) queues no change for
// the members (its workers were deleted while the coordinator stayed).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgliteStore } from '../../src/adapters/store-pglite/pglite-store.ts';
import type { Store } from '../../src/core/ports.ts';
import { adminCall } from '../support/admin-http.ts';
import { ADMIN_PASSWORD, startInProcess, type TestManager } from '../support/in-process.ts';
import { waitFor } from '../support/wait.ts';

let a: TestManager;
let b: TestManager;
let aUrl: string;
let bUrl: string;
let base: PgliteStore;

/** What the proxy around a's store breaks while set. */
const breaks = { plan: false, serviceWrite: false };

const SERVICE_WRITES = new Set(['createService', 'updateService', 'deleteService']);

/** A list of outbox rows, as the store's methods take them. */
const isPlan = (v: unknown): v is Array<Record<string, unknown>> =>
  Array.isArray(v) && v.length > 0 && v.every((r) => r && typeof r === 'object' && 'peer' in r && 'op' in r);

/** A NUL in a jsonb value: PostgreSQL refuses the statement that stores it. */
const poison = (rows: Array<Record<string, unknown>>) =>
  rows.map((r) => ({ ...r, target: { ...(r.target as object), note: 'a\u0000b' } }));

const breakable = (store: PgliteStore): Store =>
  new Proxy(store, {
    get(target, key) {
      const value = Reflect.get(target, key, target);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (breaks.serviceWrite && SERVICE_WRITES.has(String(key))) {
          return Promise.reject(new Error('the service write failed'));
        }
        const passed = breaks.plan ? args.map((x) => (isPlan(x) ? poison(x) : x)) : args;
        return value.apply(target, passed);
      };
    },
  }) as unknown as Store;

const call = adminCall;

const federated = (name: string, deployment: 'atomic' | 'best-effort') => ({
  name,
  image: 'alpine',
  script: 'echo v1',
  cpu: '0.1',
  memory: '64Mi',
  clusters: {
    a: { endpoint: aUrl, auth_user: 'oscar', auth_password: ADMIN_PASSWORD },
    b: { endpoint: bUrl, auth_user: 'oscar', auth_password: ADMIN_PASSWORD },
  },
  federation: {
    topology: 'star',
    deployment,
    members: [{ type: 'oscar', cluster_id: 'b', service_name: `${name}-b` }],
  },
});

/** The call made while `what` is broken: it fails as a server error, and nothing is kept. */
const refusedWhile = async (what: keyof typeof breaks, method: string, path: string, body?: unknown) => {
  breaks[what] = true;
  try {
    const res = await call(aUrl, method, path, body);
    expect(res.status).toBeGreaterThanOrEqual(500);
  } finally {
    breaks[what] = false;
  }
};

const revisionOn = async (url: string, name: string) =>
  (await call(url, 'GET', `/system/services/${name}`)).body?.federation?.revision;

beforeAll(async () => {
  base = await PgliteStore.open(undefined);
  [a, b] = await Promise.all([
    startInProcess({ clusterId: 'a', port: '0' }, { store: breakable(base) }),
    startInProcess({ clusterId: 'b', port: '0' }),
  ]);
  [aUrl, bUrl] = await Promise.all([a.manager.listen(), b.manager.listen()]);
});
afterAll(async () => {
  await Promise.all([a?.close(), b?.close()]);
  await base?.close();
});

describe("a coordinator's write and its change plan are stored together or not at all", () => {
  it('an atomic create whose plan the database refuses keeps no coordinator', async () => {
    await refusedWhile('plan', 'POST', '/system/services', federated('plan-create', 'atomic'));
    expect((await call(aUrl, 'GET', '/system/services/plan-create')).status).toBe(404);
    expect(await base.outboxOfGroup('plan-create')).toEqual([]);
    // Nothing is left behind that would stop the same create from succeeding now.
    const again = await call(aUrl, 'POST', '/system/services', federated('plan-create', 'atomic'));
    expect(again.status, JSON.stringify(again.body)).toBe(201);
    expect(await revisionOn(bUrl, 'plan-create-b')).toBe(1);
  }, 60_000);

  it('an update whose plan the database refuses leaves the coordinator at its revision', async () => {
    const made = await call(aUrl, 'POST', '/system/services', federated('plan-update', 'best-effort'));
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    const current = (await call(aUrl, 'GET', '/system/services/plan-update')).body;
    expect(current.federation.revision).toBe(1);

    await refusedWhile('plan', 'PUT', '/system/services', { ...current, script: 'echo v2' });
    const kept = (await call(aUrl, 'GET', '/system/services/plan-update')).body;
    expect(kept.federation.revision).toBe(1);
    expect(kept.script).toBe('echo v1');
    expect((await base.outboxOfGroup('plan-update')).map((r) => r.revision)).toEqual([1]);

    // The next change is revision 2, and it reaches the member.
    const res = await call(aUrl, 'PUT', '/system/services', { ...current, script: 'echo v2' });
    expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
    await waitFor(async () => (await revisionOn(bUrl, 'plan-update-b')) === 2, 20_000, 'revision 2 on b');
  }, 60_000);

  it('a member change whose plan the database refuses changes no member list', async () => {
    const made = await call(aUrl, 'POST', '/system/services', federated('plan-members', 'best-effort'));
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    await refusedWhile('plan', 'DELETE', '/system/federation/plan-members', {
      members: [{ cluster_id: 'b', service_name: 'plan-members-b' }],
    });
    const kept = (await call(aUrl, 'GET', '/system/services/plan-members')).body;
    expect(kept.federation.revision).toBe(1);
    expect(kept.federation.members.map((m: { cluster_id: string }) => m.cluster_id)).toEqual(['b']);
  }, 60_000);

  it('a delete whose service write fails queues no delete of its workers', async () => {
    const made = await call(aUrl, 'POST', '/system/services', federated('write-delete', 'best-effort'));
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    const before = (await base.outboxOfGroup('write-delete')).length;

    await refusedWhile('serviceWrite', 'DELETE', '/system/services/write-delete');
    expect((await call(aUrl, 'GET', '/system/services/write-delete')).status).toBe(200);
    const rows = await base.outboxOfGroup('write-delete');
    expect(rows).toHaveLength(before);
    expect(rows.filter((r) => r.op === 'delete')).toEqual([]);
    expect((await call(bUrl, 'GET', '/system/services/write-delete-b')).status).toBe(200);
  }, 60_000);

  it('a delete whose plan the database refuses keeps the coordinator and its workers', async () => {
    const made = await call(aUrl, 'POST', '/system/services', federated('plan-delete', 'best-effort'));
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    await refusedWhile('plan', 'DELETE', '/system/services/plan-delete');
    // Deleted without its plan, the coordinator would leave its worker on b for good.
    expect((await call(aUrl, 'GET', '/system/services/plan-delete')).status).toBe(200);
    const res = await call(aUrl, 'DELETE', '/system/services/plan-delete');
    expect(res.status).toBeLessThan(300);
    await waitFor(
      async () => (await call(bUrl, 'GET', '/system/services/plan-delete-b')).status === 404,
      20_000,
      'the worker on b deleted',
    );
  }, 60_000);
});
