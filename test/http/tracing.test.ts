// OpenTelemetry traces across clusters (issue #14, DESIGN §6): three real managers in one
// process, each with its own in-memory exporter. A traced client creates a federated service
// on a (fanned out to b and c by a's outbox) and submits a job a delegates to b; every span
// of it, on all three clusters, is in the client's trace, and each receiver's server span is
// the child of the sender's client span (the `traceparent` a sent). A hostile traceparent is
// ignored, never an error. And with tracing off, no span, but the hand-over still carries a
// (random) traceparent as before.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, basic, startInProcess, type TestManager } from '../support/in-process.ts';
import { waitFor } from '../support/wait.ts';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';
const clientTraceparent = `00-${TRACE}-${CLIENT_SPAN}-01`;
const TRACEPARENT_RE = /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/;

/** The W3C Trace Context rule, written out: the parent a header names, or undefined. */
const w3cParent = (h: string) => {
  const m = /^\s?([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?\s?$/.exec(h);
  if (!m || m[1] === 'ff' || (m[1] === '00' && m[5]) || /^0+$/.test(m[2]) || /^0+$/.test(m[3]))
    return undefined;
  return { traceId: m[2], spanId: m[3], sampled: (Number.parseInt(m[4], 16) & 1) === 1 };
};

interface Traced {
  tm: TestManager;
  spans: InMemorySpanExporter;
  url: string;
}

const startTraced = async (
  clusterId: string,
  flags: Record<string, string> = {},
  runJobs = false,
): Promise<Traced> => {
  const spans = new InMemorySpanExporter();
  const tm = await startInProcess({ clusterId, ...flags }, { manager: { traceExporter: spans, runJobs } });
  return { tm, spans, url: await tm.manager.listen() };
};

const finished = async (t: Traced): Promise<ReadableSpan[]> => {
  await t.tm.manager.tracing.forceFlush();
  return t.spans.getFinishedSpans();
};

const admin = { authorization: basic() };

describe('traces across three clusters', () => {
  let a: Traced;
  let b: Traced;
  let c: Traced;

  beforeAll(async () => {
    // b runs its rescheduler: it sends on a job delegated to it that can never run there.
    b = await startTraced('b', {}, true);
    c = await startTraced('c', { cpus: '8' });
    // a has no room for the service's 1 cpu: its jobs are delegated at intake.
    a = await startTraced('a', { cpus: '0.5' });
  }, 120_000);

  afterAll(async () => {
    for (const t of [a, b, c]) await t?.tm.close();
  });

  it('a federated create and a delegated job are one trace, receivers children of senders', async () => {
    const h = a.tm.manager.http;
    const clusters = Object.fromEntries(
      [b, c].map((t) => [
        t.tm.config.clusterId,
        { endpoint: t.url, auth_user: 'oscar', auth_password: ADMIN_PASSWORD },
      ]),
    );
    const definition = {
      name: 'traced',
      image: 'alpine',
      script: 'echo',
      cpu: '1',
      clusters,
      federation: {
        topology: 'star',
        delegation: 'static',
        members: [
          { type: 'oscar', cluster_id: 'b', service_name: 'traced', priority: 0 },
          { type: 'oscar', cluster_id: 'c', service_name: 'traced', priority: 1 },
        ],
      },
    };
    const created = await h.inject({
      method: 'POST',
      url: '/system/services',
      headers: { ...admin, traceparent: clientTraceparent },
      payload: definition,
    });
    expect(created.statusCode, created.body).toBe(201);
    expect(await b.tm.store.getService('traced')).toBeDefined();
    expect(await c.tm.store.getService('traced')).toBeDefined();

    // Delegation decides from a's status cache: wait until it holds b online.
    await waitFor(
      async () => {
        const view = (
          await h.inject({ method: 'GET', url: '/system/federation/traced', headers: admin })
        ).json() as { members?: Array<{ cluster_id?: string; status?: { online?: boolean } }> };
        return view.members?.some((m) => m.cluster_id === 'b' && m.status?.online === true) || undefined;
      },
      60_000,
      "b online in a's status cache",
      { intervalMs: 200 },
    );
    const token = (await h.inject({ method: 'GET', url: '/system/services/traced', headers: admin })).json()
      .token as string;
    const job = await h.inject({
      method: 'POST',
      url: '/job/traced',
      headers: { authorization: `Bearer ${token}`, traceparent: clientTraceparent },
      payload: 'hello',
    });
    expect(job.statusCode, job.body).toBeLessThan(300);
    expect(job.json().delegated_to).toBe('b');

    const [sa, sb, sc] = await Promise.all([a, b, c].map(finished));
    const all = async () => (await Promise.all([a, b, c].map(finished))).flat();
    const inTrace = (spans: ReadableSpan[]) => spans.filter((s) => s.spanContext().traceId === TRACE);
    const byId = new Map([...sa, ...sb, ...sc].map((s) => [s.spanContext().spanId, s]));
    const parentOf = (s: ReadableSpan) => byId.get(s.parentSpanContext?.spanId ?? '');

    // a: the two requests are children of the client's span.
    const aServer = inTrace(sa).filter((s) => s.parentSpanContext?.spanId === CLIENT_SPAN);
    expect(aServer.map((s) => s.name).sort()).toEqual(['POST /job/:serviceName', 'POST /system/services']);
    for (const s of aServer)
      expect(s.resource.attributes).toMatchObject({ 'service.name': 'flotilla', 'flotilla.cluster_id': 'a' });

    // The create: one outbox send per member, each the parent of that member's remote apply.
    const sends = inTrace(sa).filter((s) => s.name === 'outbox.send');
    expect(sends.map((s) => s.attributes['flotilla.peer']).sort()).toEqual(['b', 'c']);
    for (const send of sends) {
      expect(parentOf(send)?.name).toBe('POST /system/services');
      expect(send.attributes).toMatchObject({
        'flotilla.outbox.op': 'create',
        'flotilla.outcome': 'ok',
        'flotilla.service': 'traced',
      });
      expect(typeof send.attributes['flotilla.revision']).toBe('number');
      const member = send.attributes['flotilla.peer'] === 'b' ? sb : sc;
      const applies = member.filter((s) => s.parentSpanContext?.spanId === send.spanContext().spanId);
      expect(applies.map((s) => [s.name, s.attributes['http.route']])).toEqual([
        ['remote.apply', '/system/services'],
      ]);
      expect(applies[0].spanContext().traceId).toBe(TRACE);
      expect(applies[0].resource.attributes['flotilla.cluster_id']).toBe(send.attributes['flotilla.peer']);
    }

    // The delegated job: a's hand-over span is the parent of b's intake span.
    const handOvers = inTrace(sa).filter((s) => s.name === 'delegation.hand-over');
    expect(handOvers).toHaveLength(1);
    const handOver = handOvers[0];
    expect(parentOf(handOver)?.name).toBe('POST /job/:serviceName');
    expect(handOver.attributes).toMatchObject({
      'flotilla.job.id': job.json().job_id,
      'flotilla.target_cluster': 'b',
      'flotilla.outcome': 'ok',
    });
    const received = sb.filter((s) => s.parentSpanContext?.spanId === handOver.spanContext().spanId);
    // The hand-over's two steps (ADR 13): the held job, then its confirm, both in the trace.
    expect(
      received
        .map((s) => [s.name, String(s.attributes['http.route']), s.spanContext().traceId])
        .sort((x, y) => x[1].length - y[1].length),
    ).toEqual([
      ['remote.apply', '/job/:serviceName', TRACE],
      [expect.any(String), expect.stringMatching(/^\/job\/:serviceName\/delegated\/:\w+\/confirm$/), TRACE],
    ]);

    // An update: queued, then applied by the background drain, still in the client's trace.
    const updated = await h.inject({
      method: 'PUT',
      url: '/system/services',
      headers: { ...admin, traceparent: clientTraceparent },
      payload: { ...definition, script: 'echo again' },
    });
    expect(updated.statusCode, updated.body).toBeLessThan(300);
    for (const member of [b, c]) {
      const id = member.tm.config.clusterId;
      const apply = await waitFor(
        async () => {
          const all = [...(await finished(a)), ...(await finished(member))];
          const ids = new Map(all.map((s) => [s.spanContext().spanId, s]));
          return all.find((s) => {
            const parent = ids.get(s.parentSpanContext?.spanId ?? '');
            return (
              s.name === 'remote.apply' &&
              s.attributes['http.request.method'] === 'PUT' &&
              s.resource.attributes['flotilla.cluster_id'] === id &&
              parent?.name === 'outbox.send' &&
              parent.attributes['flotilla.outbox.op'] === 'update' &&
              parent.attributes['flotilla.peer'] === id
            );
          });
        },
        60_000,
        `the update's remote apply on ${id}`,
        { intervalMs: 200 },
      );
      expect(apply.spanContext().traceId).toBe(TRACE);
    }

    // All three clusters hold spans of the one trace; nothing secret in any attribute.
    for (const spans of [sa, sb, sc]) expect(inTrace(spans).length).toBeGreaterThan(0);
    const everything = JSON.stringify((await all()).map((s) => [s.name, s.attributes, s.events]));
    for (const secret of [ADMIN_PASSWORD, token, 'hello', 'Basic ', 'Bearer ', 'http://'])
      expect(everything).not.toContain(secret);
  }, 120_000);

  it("a job delegated a → b, and by b's rescheduler onward to c, is one trace over the three", async () => {
    const creds = (t: Traced) => ({ endpoint: t.url, auth_user: 'oscar', auth_password: ADMIN_PASSWORD });
    const chain = (cpu: string, next?: Traced) => ({
      name: 'chain',
      image: 'alpine',
      script: 'echo',
      cpu,
      ...(next
        ? {
            replicas: [{ type: 'oscar', cluster_id: next.tm.config.clusterId, service_name: 'chain' }],
            clusters: { [next.tm.config.clusterId]: creds(next) },
          }
        : {}),
    });
    // Each cluster's own definition sizes the job there: 1 cpu on a (0.5 cpus: sent to b,
    // which has room for 1), 5 on b (4 cpus: never fits, its rescheduler sends it on) and c (8).
    for (const [t, cpu, next] of [
      [c, '5'],
      [b, '5', c],
      [a, '1', b],
    ] as Array<[Traced, string, Traced?]>) {
      const r = await t.tm.manager.http.inject({
        method: 'POST',
        url: '/system/services',
        headers: admin,
        payload: chain(cpu, next),
      });
      expect(r.statusCode, r.body).toBe(201);
      await t.tm.manager.statusCache.refresh();
    }
    for (const t of [a, b, c]) t.spans.reset();
    const chainTrace = 'c0ffee0000000000c0ffee0000000001';
    const token = (
      await a.tm.manager.http.inject({ method: 'GET', url: '/system/services/chain', headers: admin })
    ).json().token as string;
    const job = await a.tm.manager.http.inject({
      method: 'POST',
      url: '/job/chain',
      headers: { authorization: `Bearer ${token}`, traceparent: `00-${chainTrace}-${CLIENT_SPAN}-01` },
      payload: 'x',
    });
    expect(job.json().delegated_to, job.body).toBe('b');

    const hop = async (from: Traced, to: Traced, traceId?: string) => {
      const send = await waitFor(
        async () =>
          (await finished(from)).find(
            (s) =>
              s.name === 'delegation.hand-over' &&
              (!traceId || s.spanContext().traceId === traceId) &&
              s.attributes['flotilla.target_cluster'] === to.tm.config.clusterId,
          ),
        30_000,
        `the hand-over ${from.tm.config.clusterId} → ${to.tm.config.clusterId}`,
        { intervalMs: 200 },
      );
      expect(send.attributes['flotilla.outcome']).toBe('ok');
      const received = await waitFor(
        async () =>
          (await finished(to)).find((s) => s.parentSpanContext?.spanId === send.spanContext().spanId),
        30_000,
        `${to.tm.config.clusterId}'s span under the hand-over`,
        { intervalMs: 200 },
      );
      expect([received.name, received.attributes['http.route'], received.spanContext().traceId]).toEqual([
        'remote.apply',
        '/job/:serviceName',
        send.spanContext().traceId,
      ]);
      return { send, received };
    };
    const ab = await hop(a, b, chainTrace);
    expect(ab.send.attributes['flotilla.job.id']).toBe(job.json().job_id);
    // b's rescheduler sends it on later, outside any request, yet in the same trace: b kept
    // the context of the request that brought the job, and its hand-over is that span's child.
    const bc = await hop(b, c, chainTrace);
    expect(bc.send.parentSpanContext?.spanId).toBe(ab.received.spanContext().spanId);
    expect(bc.received.resource.attributes['flotilla.cluster_id']).toBe('c');
  }, 120_000);

  it('ignores a hostile traceparent: a new trace, never an error', async () => {
    const hostile = [
      'garbage',
      '',
      `00-${'0'.repeat(32)}-${CLIENT_SPAN}-01`, // all-zero trace id: invalid
      `00-${TRACE}-${'0'.repeat(16)}-01`,
      `ff-${TRACE}-${CLIENT_SPAN}-01`, // version ff is forbidden
      `00-${TRACE.toUpperCase()}-${CLIENT_SPAN}-01`,
      `00-${TRACE}-${CLIENT_SPAN}-01-${'x'.repeat(12_000)}`, // huge, below Node's header limit
      `00-${TRACE}-${CLIENT_SPAN}-01\u0000`,
    ];
    const h = b.tm.manager.http;
    for (const tp of hostile) {
      b.spans.reset();
      const r = await h.inject({
        method: 'GET',
        url: '/system/info',
        headers: { ...admin, traceparent: tp, tracestate: 'a='.repeat(5000) },
      });
      expect(r.statusCode, tp.slice(0, 80)).toBe(200);
      const [span] = (await finished(b)).filter((s) => s.attributes['http.route'] === '/system/info');
      expect(span, tp.slice(0, 80)).toBeDefined();
      expect(span.parentSpanContext, tp.slice(0, 80)).toBeUndefined();
      expect(JSON.stringify(span.attributes)).not.toContain('xxxxxxxx');
    }
  }, 60_000);

  it('fuzz: any traceparent answers as without one; only an exact W3C value becomes the parent', async () => {
    const h = b.tm.manager.http;
    const hexString = (n: number) =>
      fc.array(fc.constantFrom(...'0123456789abcdef'), { minLength: n, maxLength: n }).map((a) => a.join(''));
    const nearlyValid = fc
      .tuple(
        fc.constantFrom('00', '01', 'cc', 'ff', '0', 'zz'),
        hexString(32),
        hexString(16),
        fc.constantFrom('00', '01', '1', 'xx'),
        fc.string({ maxLength: 20 }),
      )
      .map(([v, t, s, f, tail]) => `${v}-${t}-${s}-${f}${tail}`);
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string({ maxLength: 300 }), nearlyValid), async (tp) => {
        const header = tp.replace(/[^\t\x20-\x7e]/g, '');
        b.spans.reset();
        const r = await h.inject({
          method: 'GET',
          url: '/system/info',
          headers: { ...admin, traceparent: header },
        });
        expect(r.statusCode).toBe(200);
        const [span] = (await finished(b)).filter((s) => s.attributes['http.route'] === '/system/info');
        const want = w3cParent(header);
        if (want && !want.sampled) {
          // The sender's valid header says "not sampled": nothing is recorded (W3C flags).
          expect(span).toBeUndefined();
          return;
        }
        expect(span).toBeDefined();
        const parent = span.parentSpanContext;
        if (!want) expect(parent).toBeUndefined();
        else {
          expect({ traceId: parent?.traceId, spanId: parent?.spanId }).toEqual({
            traceId: want.traceId,
            spanId: want.spanId,
          });
          expect(span.spanContext().traceId).toBe(want.traceId);
        }
      }),
      { numRuns: 150 },
    );
  }, 120_000);
});

describe('tracing off', () => {
  let tm: TestManager;
  let server: Server;
  let url: string;
  const received: IncomingHttpHeaders[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      received.push(req.headers);
      req.resume();
      req.on('end', () => res.writeHead(202).end());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`;
    tm = await startInProcess({ clusterId: 'quiet', cpus: '0.5' }, { manager: { runJobs: false } });
  }, 60_000);

  afterAll(async () => {
    await tm?.close();
    await new Promise((r) => server.close(r));
  });

  it('has no spans, and a hand-over still carries a W3C traceparent', async () => {
    expect(tm.manager.tracing.enabled).toBe(false);
    const h = tm.manager.http;
    const created = await h.inject({
      method: 'POST',
      url: '/system/services',
      headers: admin,
      payload: {
        name: 'hooked',
        image: 'alpine',
        cpu: '1',
        script: 'echo',
        federation: { topology: 'star', members: [{ type: 'endpoint', url }] },
      },
    });
    expect(created.statusCode, created.body).toBe(201);
    const token = (await h.inject({ method: 'GET', url: '/system/services/hooked', headers: admin })).json()
      .token as string;
    for (const n of [1, 2]) {
      const job = await h.inject({
        method: 'POST',
        url: '/job/hooked',
        headers: { authorization: `Bearer ${token}`, traceparent: clientTraceparent },
        payload: `n${n}`,
      });
      expect(job.json().delegated_to, job.body).toMatch(/^endpoint:/);
    }
    expect(received).toHaveLength(2);
    const sent = received.map((r) => r.traceparent as string);
    for (const tp of sent) expect(tp).toMatch(TRACEPARENT_RE);
    // Random per hand-over, never the caller's trace (nothing is traced).
    expect(new Set(sent).size).toBe(2);
    expect(sent.join()).not.toContain(TRACE);
  }, 60_000);
});
