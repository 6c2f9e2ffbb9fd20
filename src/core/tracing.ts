// The Tracing port (DESIGN §6: OpenTelemetry spans cross clusters through `traceparent`),
// the rule that turns it on (the standard OTel environment names), and the no-op it is by
// default. The OTel adapter (src/adapters/tracing-otel) is loaded only when tracing is on,
// so nothing here imports an OTel package.
import { ORIGIN_HEADER } from './federation/worker-guard.ts';
import { PEER_FEDERATION_PREFIX } from './trust/peer-federation.ts';

/** Attribute values a span may carry: ids, names, counts, outcomes; never a secret, a body or a URL. */
export type SpanAttributes = Record<string, string | number | boolean | undefined>;

export interface ActiveSpan {
  set(attributes: SpanAttributes): void;
  /**
   * Marks the span failed as a throw would (`flotilla.outcome` the error's code), for a call
   * that reports its failure in what it returns rather than by throwing.
   */
  fail(error: unknown): void;
}

/** A server span for one incoming request, started before routing decides anything. */
export interface IncomingSpan {
  /** Runs `next` (the rest of the request's handling) with this span as the active one. */
  enter(next: () => void): void;
  set(attributes: SpanAttributes): void;
  end(statusCode: number): void;
  /** Keeps this request's context under `key` for later work (bounded, in memory). */
  keep(key: string): void;
}

/** A trace context held for later, opaque outside its adapter. */
export type TraceContext = unknown;

export type RequestHeaders = Record<string, string | string[] | undefined>;

export interface Tracing {
  /** false: the no-op (no spans, no hooks; requests keep their headers as without tracing). */
  readonly enabled: boolean;
  /**
   * Runs `fn` in a span, child of the active one. The span ends when `fn` settles; a throw
   * marks it failed with `flotilla.outcome` set to the error's code (never its message).
   */
  inSpan<T>(
    name: string,
    kind: 'client' | 'internal',
    attributes: SpanAttributes,
    fn: (span: ActiveSpan) => Promise<T>,
  ): Promise<T>;
  /** The `traceparent` for an outgoing hand-over: the active span's, or a random one. */
  traceparent(): string;
  /** Headers carrying the active span to an outgoing request ({} when off or outside a span). */
  outgoingHeaders(): Record<string, string>;
  /**
   * A server span for an incoming request, child of the sender's span when its `traceparent`
   * is valid (anything else is ignored: the span starts a new trace).
   */
  incoming(name: string, headers: RequestHeaders, attributes: SpanAttributes): IncomingSpan;
  /** The active span's trace id (an audit row's `trace_id`), or undefined when off or outside a span. */
  traceId(): string | undefined;
  /** The active trace context, to run later work in (the outbox drain a request woke). */
  captureContext(): TraceContext;
  /** A context an incoming span kept under `key` (undefined when none, or forgotten). */
  keptContext(key: string): TraceContext;
  /** Runs `fn` in a captured context (undefined: in none, a new trace). */
  withContext<T>(captured: TraceContext, fn: () => T): T;
  /** Exports what is buffered (tests, before reading an in-memory exporter). */
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

const hex = (bytes: number): string => {
  const b = new Uint8Array(bytes);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
};

/** A fresh W3C traceparent (what the delegator has always sent without tracing). */
export const randomTraceparent = (): string => `00-${hex(16)}-${hex(8)}-01`;

const NO_SPAN: ActiveSpan = { set() {}, fail() {} };

/** Tracing off: spans cost a function call; hand-overs keep a random traceparent. */
export const NO_TRACING: Tracing = {
  enabled: false,
  inSpan: (_name, _kind, _attributes, fn) => fn(NO_SPAN),
  traceparent: randomTraceparent,
  outgoingHeaders: () => ({}),
  incoming: () => ({ enter: (next) => next(), set() {}, end() {}, keep() {} }),
  keptContext: () => undefined,
  traceId: () => undefined,
  captureContext: () => undefined,
  withContext: (_captured, fn) => fn(),
  forceFlush: async () => {},
  shutdown: async () => {},
};

/**
 * Whether traces are exported, from the standard OTel variables: an OTLP endpoint
 * (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) turns it on;
 * OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none keeps it off.
 */
export const tracingWanted = (env: Readonly<Record<string, string | undefined>>): boolean => {
  if ((env.OTEL_SDK_DISABLED ?? '').trim().toLowerCase() === 'true') return false;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '').split(',').map((s) => s.trim().toLowerCase());
  if (exporters.includes('none')) return false;
  return !!(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim());
};

/**
 * The server span's name for a request: a federation request (the user-facing federation
 * routes and the peer channel), a remote apply (a coordinator's change to its worker, a
 * delegated job), or the route. Built from the route template, never the URL (a query
 * string or path can carry what a span must not).
 */
/**
 * The key under which the request that brought a delegated job keeps its context, so the
 * rescheduler's later hand-over onward is in the same trace: the origin and its job id
 * (the intake's dedupe key), from the headers on the receiving side and the job after.
 */
export const delegatedJobKey = (origin: string, delegatedId: string): string => `${origin}\n${delegatedId}`;

export const requestSpanName = (
  method: string,
  route: string | undefined,
  headers: RequestHeaders,
): string => {
  const r = route ?? 'unmatched';
  if (headers['x-delegated-job-id'] !== undefined || headers[ORIGIN_HEADER] !== undefined)
    return 'remote.apply';
  if (r.startsWith('/system/federation') || r.startsWith(PEER_FEDERATION_PREFIX)) return 'federation.request';
  return `${method} ${r}`;
};
