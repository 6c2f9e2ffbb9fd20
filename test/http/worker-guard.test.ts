// A federation's change never overwrites a service of the same name that is not its worker
// (best-effort creates report such a member as `exists` and leave it alone; later updates
// and the outbox's create-then-update fallback must leave it alone too). A coordinator
// proves a worker is its own with X-Flotilla-Origin and the worker's token.
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgliteStore } from '../../src/adapters/store-pglite/pglite-store.ts';
import type { Store } from '../../src/core/ports.ts';
import { basic, startInProcess, type TestManager } from '../support/in-process.ts';

let tm: TestManager;
let base: PgliteStore;
/** Runs inside the store's createService of that name, before the insert (a race, staged). */
const beforeInsert = new Map<string, () => Promise<void>>();
const staged = (store: PgliteStore): Store =>
  new Proxy(store, {
    get(target, key) {
      const value = Reflect.get(target, key, target);
      if (typeof value !== 'function') return value;
      if (key !== 'createService') return value.bind(target);
      return async (service: { name: string }, ...rest: unknown[]) => {
        await beforeInsert.get(service.name)?.();
        return value.call(target, service, ...rest);
      };
    },
  }) as unknown as Store;
const call = (opts: InjectOptions) =>
  tm.manager.http.inject({ ...opts, headers: { authorization: basic(), ...opts.headers } });

const TOKEN_A = 'a'.repeat(64);
const TOKEN_C = 'c'.repeat(64);
/** The headers a coordinator sends with a change to its worker. */
const proof = (origin: string, token: string) => ({
  'x-flotilla-origin': origin,
  'x-flotilla-worker-token': token,
});

const workerOf = (origin: string, service: string, name: string) => ({
  name,
  image: 'alpine',
  script: 'echo worker',
  annotations: {
    'oscar.grycap/origin-cluster': origin,
    'oscar.grycap/origin-service': service,
    'oscar.grycap/federation-worker': 'true',
  },
  federation: { topology: 'mesh', members: [], revision: 2 },
});

beforeAll(async () => {
  base = await PgliteStore.open(undefined);
  tm = await startInProcess({ clusterId: 'member-b' }, { store: staged(base) });
});
afterAll(async () => {
  await tm?.close();
  await base?.close();
});

describe('updates that would turn a service into another federation’s worker', () => {
  it('a standalone service of the same name is refused with 409 and left as it was', async () => {
    const own = await call({
      method: 'POST',
      url: '/system/services',
      payload: { name: 'shared-name', image: 'alpine', script: 'echo mine', cpu: '0.2' },
    });
    expect(own.statusCode, own.body).toBe(201);
    const res = await call({
      method: 'PUT',
      url: '/system/services',
      payload: workerOf('a', 'svc', 'shared-name'),
      headers: proof('a/svc', TOKEN_A),
    });
    expect(res.statusCode, res.body).toBe(409);
    const unproven = await call({
      method: 'PUT',
      url: '/system/services',
      payload: workerOf('a', 'svc', 'shared-name'),
    });
    expect(unproven.statusCode, unproven.body).toBe(400);
    expect(res.json().message).toMatch(/"shared-name".*not a worker of a\/svc.*left as is/);
    const after = (await call({ method: 'GET', url: '/system/services/shared-name' })).json();
    expect(after.script).toBe('echo mine');
    expect(after.annotations?.['oscar.grycap/federation-worker']).toBeUndefined();
  });

  it("a worker of another federation is refused too; the same federation's worker updates", async () => {
    const created = await call({
      method: 'POST',
      url: '/system/services',
      payload: workerOf('a', 'svc', 'w1'),
      headers: proof('a/svc', TOKEN_A),
    });
    expect(created.statusCode, created.body).toBe(201);
    const foreign = await call({
      method: 'PUT',
      url: '/system/services',
      payload: workerOf('c', 'other', 'w1'),
      headers: proof('c/other', TOKEN_C),
    });
    expect(foreign.statusCode, foreign.body).toBe(409);
    // The right origin without the worker's token is not its coordinator either.
    const guessed = await call({
      method: 'PUT',
      url: '/system/services',
      payload: workerOf('a', 'svc', 'w1'),
      headers: proof('a/svc', TOKEN_C),
    });
    expect(guessed.statusCode, guessed.body).toBe(409);
    // Nor is anyone without a proof, the admin included: a worker changes on its coordinator.
    const direct = await call({
      method: 'PUT',
      url: '/system/services',
      payload: { ...workerOf('a', 'svc', 'w1'), script: 'echo direct' },
    });
    expect(direct.statusCode, direct.body).toBe(409);
    expect(direct.json().message).toMatch(/worker of a\/svc; change it on its coordinator/);
    const same = await call({
      method: 'PUT',
      url: '/system/services',
      headers: proof('a/svc', TOKEN_A),
      payload: {
        ...workerOf('a', 'svc', 'w1'),
        image: 'alpine',
        script: 'echo updated',
        federation: { topology: 'mesh', members: [], revision: 3 },
      },
    });
    expect(same.statusCode, same.body).toBe(204);
    expect((await call({ method: 'GET', url: '/system/services/w1' })).json().script).toBe('echo updated');
    // A coordinator's delete takes only its own worker.
    const strangerDelete = await call({
      method: 'DELETE',
      url: '/system/services/w1?cascade=false',
      headers: proof('c/other', TOKEN_C),
    });
    expect(strangerDelete.statusCode, strangerDelete.body).toBe(409);
    const ownDelete = await call({
      method: 'DELETE',
      url: '/system/services/w1?cascade=false',
      headers: proof('a/svc', TOKEN_A),
    });
    expect(ownDelete.statusCode, ownDelete.body).toBe(204);
  });
});

describe('a create that arrives after its worker was deleted by its coordinator', () => {
  const token = (c: string) => c.repeat(64);
  const create = (name: string, t: string) =>
    call({
      method: 'POST',
      url: '/system/services',
      payload: workerOf('a', 'late', name),
      headers: proof('a/late', t),
    });
  const remove = (name: string, t: string) =>
    call({ method: 'DELETE', url: `/system/services/${name}?cascade=false`, headers: proof('a/late', t) });
  const status = async (name: string) =>
    (await call({ method: 'GET', url: `/system/services/${name}` })).statusCode;

  it('is refused with 409 when the delete took the worker first', async () => {
    expect((await create('late-1', token('1'))).statusCode).toBe(201);
    expect((await remove('late-1', token('1'))).statusCode).toBe(204);
    // The create sent before the delete, landing after it (a retry, a slow member).
    const late = await create('late-1', token('1'));
    expect(late.statusCode, late.body).toBe(409);
    expect(late.json()).toMatchObject({ code: 'STALE_REVISION' });
    expect(late.json().message).toMatch(/coordinator deleted/);
    expect(await status('late-1')).toBe(404);
    // The federation made again proves with new tokens: its create is a new one.
    expect((await create('late-1', token('2'))).statusCode).toBe(201);
  });

  it('is refused when the delete found nothing yet (the create still on its way)', async () => {
    expect((await remove('late-2', token('3'))).statusCode).toBe(404);
    const late = await create('late-2', token('3'));
    expect(late.statusCode, late.body).toBe(409);
    expect(await status('late-2')).toBe(404);
  });

  it('is undone when the delete lands between its check and its insert', async () => {
    beforeInsert.set('late-3', async () => {
      beforeInsert.delete('late-3');
      expect((await remove('late-3', token('4'))).statusCode).toBe(404);
    });
    const late = await create('late-3', token('4'));
    expect(late.statusCode, late.body).toBe(409);
    expect(await status('late-3')).toBe(404);
  });

  it("a proof's tokens others hold are not refused: only the deleted worker's", async () => {
    expect((await remove('late-4', token('5'))).statusCode).toBe(404);
    expect((await create('late-4', token('6'))).statusCode).toBe(201);
    expect((await create('late-5', token('7'))).statusCode).toBe(201);
  });
});
