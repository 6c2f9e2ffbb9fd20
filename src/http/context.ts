// What the routes need from the application. Routes stay thin: parse, call, answer.
import type { FastifyRequest } from 'fastify';
import type { Authenticator } from '../app/authenticate.ts';
import type { BucketUseCases } from '../app/buckets.ts';
import type { FederationUseCases } from '../app/federation/federation-use-cases.ts';
import type { JobIntake } from '../app/jobs/job-intake.ts';
import type { JobLogs } from '../app/jobs/job-logs.ts';
import type { SyncRunDeps } from '../app/jobs/sync-run.ts';
import type { ManagerLog } from '../app/manager-log.ts';
import type { Quotas } from '../app/quotas.ts';
import type { ServiceDeployment } from '../app/service-deployment.ts';
import type { ServiceUseCases } from '../app/services.ts';
import type { SystemUseCases } from '../app/system.ts';
import type { UsageMetrics } from '../app/usage-metrics.ts';
import type { Volumes } from '../app/volumes.ts';
import type { Principal } from '../core/auth/principal.ts';
import type { Tracing } from '../core/tracing.ts';

export interface HttpContext {
  services: ServiceUseCases;
  system: SystemUseCases;
  auth: Authenticator;
  bodyLimitBytes: number;
  /** A server span per request when tracing is on (src/http/tracing-hook.ts). */
  tracing?: Tracing;
  intake: JobIntake;
  logs: JobLogs;
  sync: SyncRunDeps;
  buckets: BucketUseCases;
  federation: FederationUseCases;
  /** The manager's own recent log (GET /system/logs). */
  managerLog: ManagerLog;
  /** OSCAR's usage metrics from stored jobs (/system/metrics…). */
  usage: UsageMetrics;
  quotas: Quotas;
  volumes: Volumes;
  deployment: ServiceDeployment;
  /** Prometheus metrics: request timings go in, the exposition comes out at /metrics. */
  metrics?: {
    observeHttp(method: string, route: string, status: number, seconds: number): void;
    render(): Promise<{ contentType: string; body: string }>;
  };
  /** Failed authentications per source address (429 with Retry-After past the limit). */
  loginThrottle?: {
    retryAfter(source: string, now: number): number | undefined;
    fail(source: string, now: number): void;
  };
  /** Route groups added by later capabilities (jobs, storage, federation). */
  plugins?: Array<(app: import('fastify').FastifyInstance, ctx: HttpContext) => Promise<void>>;
}

/** The caller; `delegation: true` lets a delegation token in (only /system/config does). */
export const principalOf = (
  ctx: HttpContext,
  req: FastifyRequest,
  opts?: { delegation?: boolean },
): Promise<Principal> => ctx.auth.authenticate(req.headers.authorization, opts);
