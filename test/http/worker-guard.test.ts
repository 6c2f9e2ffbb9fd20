// A federation's change never overwrites a service of the same name that is not its worker
// (best-effort creates report such a member as `exists` and leave it alone; later updates
// and the outbox's create-then-update fallback must leave it alone too).
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basic, startInProcess, type TestManager } from '../support/in-process.ts';

let tm: TestManager;
const call = (opts: InjectOptions) =>
  tm.manager.http.inject({ ...opts, headers: { authorization: basic(), ...opts.headers } });

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
  tm = await startInProcess({ clusterId: 'member-b' });
});
afterAll(async () => {
  await tm?.close();
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
    });
    expect(res.statusCode, res.body).toBe(409);
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
    });
    expect(created.statusCode, created.body).toBe(201);
    const foreign = await call({
      method: 'PUT',
      url: '/system/services',
      payload: workerOf('c', 'other', 'w1'),
    });
    expect(foreign.statusCode, foreign.body).toBe(409);
    const same = await call({
      method: 'PUT',
      url: '/system/services',
      payload: {
        ...workerOf('a', 'svc', 'w1'),
        script: 'echo updated',
        federation: { topology: 'mesh', members: [], revision: 3 },
      },
    });
    expect(same.statusCode, same.body).toBe(204);
    expect((await call({ method: 'GET', url: '/system/services/w1' })).json().script).toBe('echo updated');
  });
});
