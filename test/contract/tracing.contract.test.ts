// Tracing contract: one suite, run against every adapter (the no-op of tracing off, and the
// OpenTelemetry one with an in-memory exporter). What callers rely on whichever is wired:
// a span never changes what the wrapped call returns or throws, a hand-over always has a
// W3C traceparent, and an incoming span runs the rest of the request.
import { SpanStatusCode } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { createOtelTracing } from '../../src/adapters/tracing-otel/otel-tracing.ts';
import { FlotillaError } from '../../src/core/errors.ts';
import { NO_TRACING, type Tracing, tracingWanted } from '../../src/core/tracing.ts';

const TRACEPARENT_RE = /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/;

interface Adapter {
  name: string;
  open(): Promise<{ tracing: Tracing; spans?: InMemorySpanExporter }>;
}

const adapters: Adapter[] = [
  { name: 'no-op (tracing off)', open: async () => ({ tracing: NO_TRACING }) },
  {
    name: 'OpenTelemetry, in-memory exporter',
    async open() {
      const spans = new InMemorySpanExporter();
      return { tracing: await createOtelTracing({ clusterId: 'x', exporter: spans }), spans };
    },
  },
];

describe.each(adapters)('Tracing contract: $name', (adapter) => {
  it('returns what the wrapped call returns, and rethrows what it throws', async () => {
    const { tracing } = await adapter.open();
    expect(await tracing.inSpan('t.ok', 'internal', { n: 1 }, async () => 42)).toBe(42);
    const refused = new FlotillaError('PEER_UNREACHABLE', 'cluster z is unreachable');
    await expect(tracing.inSpan('t.fail', 'client', {}, async () => Promise.reject(refused))).rejects.toBe(
      refused,
    );
  });

  it('a span a caller marks failed returns what the call returned and stays failed', async () => {
    const { tracing, spans } = await adapter.open();
    const refused = new FlotillaError('FORBIDDEN', 'cluster z refused the credentials');
    const got = await tracing.inSpan('t.reported', 'client', {}, async (span) => {
      span.fail(refused);
      return { kind: 'failed' };
    });
    expect(got).toEqual({ kind: 'failed' });
    if (spans) {
      await tracing.forceFlush();
      const s = spans.getFinishedSpans().find((x) => x.name === 't.reported')!;
      expect([s.attributes['flotilla.outcome'], s.status.code]).toEqual(['FORBIDDEN', SpanStatusCode.ERROR]);
      expect(JSON.stringify([s.attributes, s.status, s.events])).not.toContain('credentials');
    }
  });

  it('always gives a hand-over a W3C traceparent, inside a span or not', async () => {
    const { tracing } = await adapter.open();
    expect(tracing.traceparent()).toMatch(TRACEPARENT_RE);
    const inside = await tracing.inSpan('t.send', 'client', {}, async () => tracing.traceparent());
    expect(inside).toMatch(TRACEPARENT_RE);
  });

  it('runs the rest of a request inside its incoming span, and ends it once', async () => {
    const { tracing } = await adapter.open();
    const span = tracing.incoming('GET /x', { traceparent: 'not one' }, { 'http.route': '/x' });
    let ran = false;
    span.enter(() => {
      ran = true;
    });
    expect(ran).toBe(true);
    span.end(200);
    span.end(500);
    await tracing.forceFlush();
    await tracing.shutdown();
  });

  if (adapter.name.startsWith('OpenTelemetry')) {
    it('links: the active span goes out in the headers; outcomes are codes, never messages', async () => {
      const { tracing, spans } = await adapter.open();
      const parent = `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`;
      const inbound = tracing.incoming('remote.apply', { traceparent: parent }, {});
      expect(tracing.traceId()).toBeUndefined();
      let headers: Record<string, string> = {};
      let traceId: string | undefined;
      await new Promise<void>((done) =>
        inbound.enter(() => {
          tracing
            .inSpan('outbox.send', 'client', { 'flotilla.peer': 'b' }, async () => {
              headers = tracing.outgoingHeaders();
              traceId = tracing.traceId();
              throw new FlotillaError('PEER_UNREACHABLE', 'cluster b (10.0.0.1:443) is unreachable');
            })
            .catch(() => done());
        }),
      );
      inbound.end(200);
      await tracing.forceFlush();
      const done = spans!.getFinishedSpans();
      const send = done.find((s) => s.name === 'outbox.send')!;
      const server = done.find((s) => s.name === 'remote.apply')!;
      expect(traceId).toBe('a'.repeat(32));
      expect(headers.traceparent).toBe(`00-${'a'.repeat(32)}-${send.spanContext().spanId}-01`);
      expect(send.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
      expect(server.parentSpanContext?.spanId).toBe('b'.repeat(16));
      expect(send.attributes['flotilla.outcome']).toBe('PEER_UNREACHABLE');

      // Work done later (the outbox drain) in a context captured now is in the same trace.
      const captured = await tracing.inSpan('request', 'internal', {}, async () => tracing.captureContext());
      await tracing.withContext(captured, () => tracing.inSpan('later', 'client', {}, async () => {}));
      await tracing.withContext(undefined, () => tracing.inSpan('unrelated', 'client', {}, async () => {}));
      await tracing.forceFlush();
      const named = (n: string) => spans!.getFinishedSpans().find((s) => s.name === n)!;
      expect(named('later').parentSpanContext?.spanId).toBe(named('request').spanContext().spanId);
      expect(named('unrelated').parentSpanContext).toBeUndefined();

      // A request's context kept by key (a delegated job's onward hop); at most 2000 are kept.
      for (let i = 0; i < 2001; i++) tracing.incoming('POST /job/:serviceName', {}, {}).keep(`k${i}`);
      expect(tracing.keptContext('k0')).toBeUndefined();
      expect(tracing.keptContext('k2000')).toBeDefined();
      expect(tracing.keptContext('nothing')).toBeUndefined();
      expect(JSON.stringify(done.map((s) => [s.attributes, s.status, s.events]))).not.toContain('10.0.0.1');
      await tracing.shutdown();
    });
  } else {
    it('sends no trace headers and a fresh traceparent per hand-over', async () => {
      const { tracing } = await adapter.open();
      expect(tracing.enabled).toBe(false);
      expect(tracing.outgoingHeaders()).toEqual({});
      expect(tracing.traceparent()).not.toBe(tracing.traceparent());
      expect(tracing.withContext(tracing.captureContext(), () => 7)).toBe(7);
      tracing.incoming('x', {}, {}).keep('k');
      expect(tracing.keptContext('k')).toBeUndefined();
      expect(await tracing.inSpan('t', 'internal', {}, async () => tracing.traceId())).toBeUndefined();
    });
  }
});

describe('when tracing is on (the standard OTel variables)', () => {
  it('turns on with an OTLP endpoint, off when disabled or with no exporter', () => {
    expect(tracingWanted({})).toBe(false);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe(true);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' })).toBe(
      true,
    );
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: '  ' })).toBe(false);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'TRUE' })).toBe(
      false,
    );
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'false' })).toBe(
      true,
    );
    expect(
      tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' }),
    ).toBe(false);
  });
});
