// Tracing for the composition root: the no-op unless the standard OTel variables ask for
// traces (or a test passes an exporter); the OTel SDK is imported only then, so a manager
// without tracing loads no OpenTelemetry module at all.
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import { NO_TRACING, type Tracing, tracingWanted } from '../core/tracing.ts';

export interface TracingWiring {
  clusterId: string;
  version: string;
  env: Readonly<Record<string, string | undefined>>;
  /** A test's exporter (in-memory): tracing on whatever the environment says. */
  exporter?: SpanExporter;
}

export const createTracing = async (w: TracingWiring): Promise<Tracing> => {
  if (!w.exporter && !tracingWanted(w.env)) return NO_TRACING;
  const { createOtelTracing } = await import('../adapters/tracing-otel/otel-tracing.ts');
  return createOtelTracing({ clusterId: w.clusterId, version: w.version, exporter: w.exporter });
};
