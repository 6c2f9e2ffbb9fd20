// Two real managers over HTTP: a member refusing one federation's change (its service of
// that name is not the federation's worker) keeps that change pending and visible as
// failed, and does not hold back another federation's changes to the same member.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminCall } from '../support/admin-http.ts';
import { ADMIN_PASSWORD, startInProcess, type TestManager } from '../support/in-process.ts';
import { waitFor } from '../support/wait.ts';

let a: TestManager;
let b: TestManager;
let aUrl: string;
let bUrl: string;

const call = adminCall;

const clusters = () => ({
  a: { endpoint: aUrl, auth_user: 'oscar', auth_password: ADMIN_PASSWORD },
  b: { endpoint: bUrl, auth_user: 'oscar', auth_password: ADMIN_PASSWORD },
});

const federated = (name: string, member: string, deployment: string) => ({
  name,
  image: 'alpine',
  script: 'echo v1',
  cpu: '0.1',
  memory: '64Mi',
  clusters: clusters(),
  federation: {
    topology: 'star',
    deployment,
    members: [{ type: 'oscar', cluster_id: 'b', service_name: member }],
  },
});

/** PUT the coordinator's definition back with a new script. */
const changeScript = async (name: string, script: string) => {
  const current = (await call(aUrl, 'GET', `/system/services/${name}`)).body;
  const res = await call(aUrl, 'PUT', '/system/services', { ...current, script });
  expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
};

beforeAll(async () => {
  [a, b] = await Promise.all([
    startInProcess({ clusterId: 'a', port: '0' }),
    startInProcess({ clusterId: 'b', port: '0' }),
  ]);
  [aUrl, bUrl] = await Promise.all([a.manager.listen(), b.manager.listen()]);
});
afterAll(async () => {
  await Promise.all([a?.close(), b?.close()]);
});

describe('outbox lanes per (member, service)', () => {
  it("one service's refused change does not hold back another's at the same member", async () => {
    const own = await call(bUrl, 'POST', '/system/services', {
      name: 'taken',
      image: 'alpine',
      script: 'echo mine',
    });
    expect(own.status).toBe(201);
    const fed1 = await call(aUrl, 'POST', '/system/services', federated('fed1', 'taken', 'best-effort'));
    expect(fed1.status, JSON.stringify(fed1.body)).toBe(201);
    expect(fed1.body.members).toMatchObject([{ cluster_id: 'b', status: 'exists' }]);
    const fed2 = await call(aUrl, 'POST', '/system/services', federated('fed2', 'fed2-w', 'atomic'));
    expect(fed2.status, JSON.stringify(fed2.body)).toBe(201);

    // First a change b refuses (its "taken" is not fed1's worker), then one it accepts.
    await changeScript('fed1', 'echo fed1-v2');
    await changeScript('fed2', 'echo fed2-v2');

    await waitFor(
      async () => (await call(bUrl, 'GET', '/system/services/fed2-w')).body?.script === 'echo fed2-v2',
      20_000,
      "fed2's change to reach b",
    );
    expect((await call(bUrl, 'GET', '/system/services/taken')).body.script).toBe('echo mine');
    const view = await waitFor(
      async () => {
        const v = (await call(aUrl, 'GET', '/system/federation/fed1')).body;
        return v.members?.[0]?.sync?.state === 'failed' && v;
      },
      20_000,
      "fed1's member to show failed",
    );
    // Told from the member's error code: a peer's own message is never shown.
    expect(view.members[0].sync.last_error).toMatch(/not this federation's worker/);
  }, 60_000);
});
