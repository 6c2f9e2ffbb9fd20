// An `endpoint` member is a delegation target only (never deployed): when no local node has
// room, the event is re-sent to its URL by HTTP POST, and the origin records the hand-over.
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basic, startInProcess, type TestManager } from '../support/in-process.ts';

describe('delegation to an endpoint replica', () => {
  let tm: TestManager;
  let server: Server;
  let url: string;
  const received: Array<{ body: string; from: string | undefined; custom: string | undefined }> = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        received.push({
          body,
          from: req.headers['x-delegated-from'] as string,
          custom: req.headers['x-team'] as string,
        });
        res.writeHead(202).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`;
    tm = await startInProcess({ clusterId: 'origin', cpus: '1' });
  }, 60_000);

  afterAll(async () => {
    await tm?.close();
    await new Promise((r) => server.close(r));
  });

  it('re-sends the event to the endpoint when the cluster is full, and records where it went', async () => {
    const h = tm.manager.http;
    const created = await h.inject({
      method: 'POST',
      url: '/system/services',
      headers: { authorization: basic() },
      payload: {
        name: 'hooked',
        image: 'alpine',
        cpu: '1',
        script: 'sleep 3',
        federation: { topology: 'star', members: [{ type: 'endpoint', url, headers: { 'x-team': 'blue' } }] },
      },
    });
    expect(created.statusCode).toBe(201);
    const svc = (
      await h.inject({ method: 'GET', url: '/system/services/hooked', headers: { authorization: basic() } })
    ).json();
    expect(svc.replicas).toEqual([expect.objectContaining({ type: 'endpoint', url })]);

    const auth = { authorization: `Bearer ${svc.token}` };
    const first = (
      await h.inject({ method: 'POST', url: '/job/hooked', headers: auth, payload: 'first' })
    ).json();
    expect(first.delegated_to).toBeNull();
    // Wait until the first job holds the only cpu.
    for (let i = 0; i < 100 && (await tm.store.getJob(first.job_id))?.status !== 'Running'; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const second = (
      await h.inject({ method: 'POST', url: '/job/hooked', headers: auth, payload: '{"n": 2}' })
    ).json();
    expect(second.delegated_to).toMatch(/^endpoint:127\.0\.0\.1:\d+$/);
    expect(received).toEqual([{ body: '{"n": 2}', from: 'origin', custom: 'blue' }]);

    const listing = (
      await h.inject({ method: 'GET', url: '/system/logs/hooked', headers: { authorization: basic() } })
    ).json();
    expect(listing.jobs[second.job_id]).toMatchObject({
      status: 'Succeeded',
      delegated_to: second.delegated_to,
      // Why, as recorded: the endpoint by its place in the list, never its URL or headers.
      delegation: {
        trigger: 'intake',
        outcome: 'delegated',
        to: 'endpoint #1',
        candidates: [{ endpoint: 1, cache: 'endpoint', tried: 'accepted' }],
        summary:
          'Delegated to endpoint #1 at intake: no local node had 1 cpu and 256 MiB free. Policy static: endpoint #1.',
      },
    });
    expect(listing.jobs[first.job_id].delegation).toBeNull();
    const decision = JSON.stringify(listing.jobs[second.job_id].delegation);
    for (const leak of [url, new URL(url).host, 'blue', 'x-team']) expect(decision).not.toContain(leak);
    const log = await h.inject({
      method: 'GET',
      url: `/system/logs/hooked/${second.job_id}`,
      headers: { authorization: basic() },
    });
    expect(log.body).toContain('event sent to endpoint');
  }, 30_000);
});
