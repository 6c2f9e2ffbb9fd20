// Member changes on a service that had no federation block, and members written without
// the fields that have defaults: adding makes a star (the default with members), and a
// member written as `{cluster_id}` names the same member as the full form when removed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, basic, startInProcess, type TestManager } from '../support/in-process.ts';

describe('federation member changes with defaults', () => {
  let coord: TestManager;
  let member: TestManager;
  let memberUrl: string;

  beforeAll(async () => {
    coord = await startInProcess({ clusterId: 'a' });
    member = await startInProcess({ clusterId: 'b' });
    memberUrl = await member.manager.listen();
  }, 60_000);

  afterAll(async () => {
    await coord?.close();
    await member?.close();
  });

  it('adds to a plain service as a star, and removes a member written without its defaults', async () => {
    const h = coord.manager.http;
    const admin = { authorization: basic() };
    const created = await h.inject({
      method: 'POST',
      url: '/system/services',
      headers: admin,
      payload: { name: 'plain', image: 'alpine', script: 'echo' },
    });
    expect(created.statusCode).toBe(201);

    const added = await h.inject({
      method: 'POST',
      url: '/system/federation/plain',
      headers: admin,
      payload: {
        members: [{ cluster_id: 'b', service_name: 'plain' }],
        clusters: { b: { endpoint: memberUrl, auth_user: 'oscar', auth_password: ADMIN_PASSWORD } },
      },
    });
    expect(added.statusCode, added.body).toBe(200);
    expect(added.json()).toMatchObject({
      topology: 'star',
      members: [{ type: 'oscar', cluster_id: 'b', service_name: 'plain', priority: 0 }],
    });
    expect(await member.store.getService('plain')).toBeDefined();
    expect(JSON.stringify(added.json())).not.toContain(ADMIN_PASSWORD);

    // Written without service_name: it defaults to the coordinator's name on another cluster.
    const removed = await h.inject({
      method: 'DELETE',
      url: '/system/federation/plain',
      headers: admin,
      payload: { members: [{ cluster_id: 'b' }], delete: true },
    });
    expect(removed.statusCode, removed.body).toBe(200);
    expect(removed.json().members).toEqual([]);
    expect(await member.store.getService('plain')).toBeUndefined();
  }, 30_000);
});
