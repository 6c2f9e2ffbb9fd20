// Traces over the peer channel (mTLS, /federation/v1): a federated create whose member is a
// peer record. a's outbox sends the worker to b's peer channel with its span as
// `traceparent`; b's peer server makes its remote-apply span a child of it. Real mTLS, two
// managers in one process, each with an in-memory exporter.
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlotillaClient } from '../../client/api-client.ts';
import { ADMIN_PASSWORD, basic, startInProcess, type TestManager } from '../support/in-process.ts';
import { waitFor } from '../support/wait.ts';

const TRACE = '0af7651916cd43dd8448eb211c80319c';
const CLIENT_SPAN = 'b7ad6b7169203331';

describe('traces over the peer channel', () => {
  let a: TestManager;
  let b: TestManager;
  const spansA = new InMemorySpanExporter();
  const spansB = new InMemorySpanExporter();
  const finished = async (t: TestManager, e: InMemorySpanExporter): Promise<ReadableSpan[]> => {
    await t.manager.tracing.forceFlush();
    return e.getFinishedSpans();
  };

  beforeAll(async () => {
    b = await startInProcess(
      { clusterId: 'b', peerListen: '127.0.0.1:0', cpus: '2' },
      { manager: { traceExporter: spansB, runJobs: false } },
    );
    a = await startInProcess(
      { clusterId: 'a', peerListen: '127.0.0.1:0' },
      { manager: { traceExporter: spansA, runJobs: false } },
    );
    const bUrl = await b.manager.listen();
    await a.manager.listen();
    const ca = new FlotillaClient({ endpoint: a.manager.publicUrl(), password: ADMIN_PASSWORD });
    const cb = new FlotillaClient({ endpoint: bUrl, password: ADMIN_PASSWORD });
    const g = await cb.request<{ id: string }>('POST', '/system/grants', {
      body: {
        peer: 'a',
        subject: 'alice',
        scope: {
          resources: ['services', 'jobs', 'status'],
          verbs: ['get', 'replicate', 'delegate'],
          max_cpu: '1',
        },
      },
    });
    const { token } = await cb.request<{ token: string }>('POST', `/system/grants/${g.id}/token`, {
      body: { ttl: 600 },
    });
    const peer = await ca.request<{ state: string }>('POST', '/system/peers', { body: { url: bUrl, token } });
    expect(peer.state).toBe('active');
  }, 90_000);

  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  it("b's remote apply on the peer channel is the child of a's outbox send, in the caller's trace", async () => {
    const created = await a.manager.http.inject({
      method: 'POST',
      url: '/system/services',
      headers: { authorization: basic(), traceparent: `00-${TRACE}-${CLIENT_SPAN}-01` },
      payload: {
        name: 'pc-traced',
        image: 'alpine',
        script: 'echo',
        cpu: '0.5',
        federation: {
          topology: 'star',
          members: [{ type: 'oscar', cluster_id: 'b', service_name: 'pc-traced-b' }],
        },
      },
    });
    expect(created.statusCode, created.body).toBe(201);
    const send = await waitFor(
      async () =>
        (await finished(a, spansA)).find(
          (s) =>
            s.name === 'outbox.send' &&
            s.spanContext().traceId === TRACE &&
            s.attributes['flotilla.peer'] === 'b',
        ),
      30_000,
      "a's outbox send to b",
    );
    expect(send.attributes).toMatchObject({ 'flotilla.outbox.op': 'create', 'flotilla.outcome': 'ok' });
    const applied = await waitFor(
      async () =>
        (await finished(b, spansB)).find((s) => s.parentSpanContext?.spanId === send.spanContext().spanId),
      30_000,
      "b's span under a's send",
    );
    expect(applied.name).toBe('remote.apply');
    expect(applied.spanContext().traceId).toBe(TRACE);
    expect(applied.attributes).toMatchObject({
      'flotilla.server': 'peer-channel',
      'http.request.method': 'POST',
      'http.response.status_code': 201,
    });
    expect(String(applied.attributes['http.route'])).toMatch(/^\/federation\/v1\//);
    expect(applied.resource.attributes['flotilla.cluster_id']).toBe('b');
    // Nothing of the certificate, the worker proof or the definition in b's spans.
    const text = JSON.stringify((await finished(b, spansB)).map((s) => [s.name, s.attributes, s.events]));
    for (const secret of ['BEGIN', 'x-flotilla-worker-token', 'echo', ADMIN_PASSWORD])
      expect(text).not.toContain(secret);
  }, 60_000);
});
