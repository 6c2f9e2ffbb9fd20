// A service's jobs and logs go with it: a later service of the same name does not list them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basic, startInProcess, type TestManager } from '../support/in-process.ts';

describe('deleting a service deletes its jobs', () => {
  let tm: TestManager;
  beforeAll(async () => {
    tm = await startInProcess();
  }, 60_000);
  afterAll(async () => {
    await tm?.close();
  });

  it('a new service of the same name starts with no jobs', async () => {
    const h = tm.manager.http;
    const admin = { authorization: basic() };
    const create = () =>
      h.inject({
        method: 'POST',
        url: '/system/services',
        headers: admin,
        payload: { name: 'reused', image: 'alpine', script: 'echo hi' },
      });
    expect((await create()).statusCode).toBe(201);
    const job = (await h.inject({ method: 'POST', url: '/job/reused', headers: admin, payload: '' })).json();
    for (let i = 0; i < 100 && (await tm.store.getJob(job.job_id))?.status !== 'Succeeded'; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect((await tm.store.getJob(job.job_id))?.status).toBe('Succeeded');

    expect(
      (await h.inject({ method: 'DELETE', url: '/system/services/reused', headers: admin })).statusCode,
    ).toBe(204);
    expect(await tm.store.getJob(job.job_id)).toBeUndefined();
    expect((await create()).statusCode).toBe(201);
    const listing = (await h.inject({ method: 'GET', url: '/system/logs/reused', headers: admin })).json();
    expect(listing.jobs).toEqual({});
  }, 30_000);
});
