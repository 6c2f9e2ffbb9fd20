// The Tracing port on the OpenTelemetry SDK: one tracer provider per manager (several live in
// one process in tests and benches), the W3C trace-context propagator used directly (never
// the global one), and spans exported over OTLP/HTTP, or to an exporter a test passes in.
// Loaded only when tracing is on (src/main/tracing-wiring.ts imports it dynamically).
import {
  type Context,
  context,
  defaultTextMapGetter,
  defaultTextMapSetter,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  SimpleSpanProcessor,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { isFlotillaError } from '../../core/errors.ts';
import {
  type ActiveSpan,
  type IncomingSpan,
  type RequestHeaders,
  randomTraceparent,
  type SpanAttributes,
  type Tracing,
} from '../../core/tracing.ts';

export interface OtelTracingOptions {
  clusterId: string;
  /** The manager's version (service.version). */
  version?: string;
  /**
   * Where spans go: a test's exporter (each span exported as it ends), or, by default, the
   * OTLP/HTTP exporter configured by the standard OTEL_EXPORTER_OTLP_* variables (batched).
   */
  exporter?: SpanExporter;
}

// The context manager is the OTel API's one global (an async-local store per process):
// installed once, shared by every manager in the process, never disabled by one of them.
let contextManagerInstalled = false;
const installContextManager = (): void => {
  if (contextManagerInstalled) return;
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  contextManagerInstalled = true;
};

const KINDS = { client: SpanKind.CLIENT, internal: SpanKind.INTERNAL } as const;

/** The attributes with a value (OTel drops undefined ones anyway; this keeps the type plain). */
const defined = (a: SpanAttributes): Record<string, string | number | boolean> =>
  Object.fromEntries(Object.entries(a).filter(([, v]) => v !== undefined)) as Record<
    string,
    string | number | boolean
  >;

/** An error as a span sees it: its registry code, never its message (it may name a host or a path). */
const outcomeOf = (e: unknown): string => (isFlotillaError(e) ? e.code : 'error');

/** The span as callers see it; `failed` once a caller marked it so (it stays failed). */
const activeSpan = (span: Span): ActiveSpan & { failed: boolean } => {
  const active = {
    failed: false,
    set: (a: SpanAttributes) => void span.setAttributes(defined(a)),
    fail(e: unknown) {
      active.failed = true;
      span.setAttribute('flotilla.outcome', outcomeOf(e));
      span.setStatus({ code: SpanStatusCode.ERROR });
    },
  };
  return active;
};

export const createOtelTracing = async (o: OtelTracingOptions): Promise<Tracing> => {
  installContextManager();
  const exporter =
    o.exporter ?? new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      'service.name': 'flotilla',
      ...(o.version ? { 'service.version': o.version } : {}),
      'flotilla.cluster_id': o.clusterId,
    }),
    spanProcessors: [o.exporter ? new SimpleSpanProcessor(exporter) : new BatchSpanProcessor(exporter)],
    // A hostile header or name cannot make a span large.
    generalLimits: { attributeValueLengthLimit: 256, attributeCountLimit: 32 },
  });
  const tracer = provider.getTracer('flotilla', o.version);
  // Contexts of requests that brought delegated jobs, newest last; the oldest go first.
  const kept = new Map<string, Context>();
  const KEPT_MAX = 2000;
  const propagator = new W3CTraceContextPropagator();

  const headersOf = (ctx: Context): Record<string, string> => {
    const carrier: Record<string, string> = {};
    propagator.inject(ctx, carrier, defaultTextMapSetter);
    return carrier;
  };

  return {
    enabled: true,
    inSpan(name, kind, attributes, fn) {
      return tracer.startActiveSpan(
        name,
        { kind: KINDS[kind], attributes: defined(attributes) },
        async (span) => {
          const active = activeSpan(span);
          try {
            const result = await fn(active);
            if (!active.failed) span.setAttribute('flotilla.outcome', 'ok');
            return result;
          } catch (e) {
            span.setAttribute('flotilla.outcome', outcomeOf(e));
            span.setStatus({ code: SpanStatusCode.ERROR });
            throw e;
          } finally {
            span.end();
          }
        },
      );
    },
    traceparent() {
      return headersOf(context.active()).traceparent ?? randomTraceparent();
    },
    outgoingHeaders() {
      return headersOf(context.active());
    },
    incoming(name: string, headers: RequestHeaders, attributes: SpanAttributes): IncomingSpan {
      // Only the sender's header is a parent, never whatever context the socket was opened in.
      const parent = propagator.extract(ROOT_CONTEXT, headers, defaultTextMapGetter);
      const span = tracer.startSpan(name, { kind: SpanKind.SERVER, attributes: defined(attributes) }, parent);
      const ctx = trace.setSpan(parent, span);
      let ended = false;
      return {
        enter: (next) => context.with(ctx, next),
        keep(key) {
          kept.delete(key);
          kept.set(key, ctx);
          if (kept.size > KEPT_MAX) kept.delete(kept.keys().next().value as string);
        },
        set: (a) => void span.setAttributes(defined(a)),
        end(statusCode) {
          if (ended) return;
          ended = true;
          span.setAttribute('http.response.status_code', statusCode);
          if (statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
          span.end();
        },
      };
    },
    traceId: () => trace.getSpan(context.active())?.spanContext().traceId,
    captureContext: () => context.active(),
    keptContext: (key) => kept.get(key),
    withContext: (captured, fn) => context.with((captured as Context | undefined) ?? ROOT_CONTEXT, fn),
    forceFlush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
};
