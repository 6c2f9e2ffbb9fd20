// Prometheus metrics for one manager. Each manager has its own registry (several managers
// may share a process), counters fed by the use cases and the HTTP layer, and gauges read
// from the stores when scraped (so every manager instance of a cluster reports the shared state).
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { ClusterSnapshot } from '../../core/delegation/policy.ts';
import type { JobStatus, MetricsSink } from '../../core/ports.ts';

export interface MetricsSources {
  clusterId: string;
  jobs: () => Promise<Record<JobStatus, number>>;
  pendingOutbox: () => Promise<number>;
  services: () => Promise<number>;
  /** The status cache's view of the replica clusters. */
  clusters: () => Map<string, ClusterSnapshot>;
}

/**
 * The process's own figures (cpu, memory, event loop, GC), collected once per process: each
 * collection installs observers that live as long as the process, so one per manager would
 * keep every closed manager alive when several share a process.
 */
let processRegistry: Registry | undefined;
const processMetrics = (): Registry => {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry, prefix: 'flotilla_' });
  }
  return processRegistry;
};

/** Label values that come from users (cluster ids in `clusters` maps) are capped. */
const MAX_LABEL_VALUES = 200;
const OTHER = 'other';

/** At most MAX_LABEL_VALUES clusters, the first by id; the rest are left out of the gauges. */
const capped = <T>(m: Map<string, T>): Array<[string, T]> =>
  [...m].sort(([a], [b]) => a.localeCompare(b)).slice(0, MAX_LABEL_VALUES);

export class PrometheusMetrics implements MetricsSink {
  readonly registry = new Registry();
  private readonly http: Histogram<'method' | 'route' | 'status'>;
  private readonly finished: Histogram<'status'>;
  private readonly delegated: Counter<'to'>;
  private readonly delegationFailures: Counter<'to'>;
  private readonly audit: Counter<'outcome'>;
  private readonly peerOfflines: Counter<'peer'>;
  private readonly peerDown: Gauge<'peer'>;
  private readonly targets = new Set<string>();

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ cluster_id: sources.clusterId });
    this.http = new Histogram({
      name: 'flotilla_http_request_duration_seconds',
      help: 'HTTP requests by method, route template and status code',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers,
    });
    this.finished = new Histogram({
      name: 'flotilla_job_duration_seconds',
      help: 'Jobs that ran here, from start to end, by final status',
      labelNames: ['status'],
      buckets: [0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600],
      registers,
    });
    this.delegated = new Counter({
      name: 'flotilla_jobs_delegated_total',
      help: 'Jobs sent to another cluster, by target cluster',
      labelNames: ['to'],
      registers,
    });
    this.delegationFailures = new Counter({
      name: 'flotilla_delegation_failures_total',
      help: 'Delegation attempts that failed (the next candidate was tried), by target cluster',
      labelNames: ['to'],
      registers,
    });
    this.audit = new Counter({
      name: 'flotilla_audit_rows_total',
      help: 'Audit rows by what became of them: written to the store, or dropped (queue full, store down)',
      labelNames: ['outcome'],
      registers,
    });
    // Both series exist from the start, so a drop shows as a rise from 0.
    this.audit.inc({ outcome: 'written' }, 0);
    this.audit.inc({ outcome: 'dropped' }, 0);
    this.peerOfflines = new Counter({
      name: 'flotilla_peer_offline_total',
      help: 'Times a peer went offline (its circuit opened): one per transition, not per request',
      labelNames: ['peer'],
      registers,
    });
    this.peerDown = new Gauge({
      name: 'flotilla_peer_offline',
      help: 'Peers whose circuit is open now (1 offline, 0 online)',
      labelNames: ['peer'],
      registers,
    });
    new Gauge({
      name: 'flotilla_jobs',
      help: 'Stored jobs by status',
      labelNames: ['status'],
      registers,
      async collect() {
        const counts = await sources.jobs();
        for (const [status, n] of Object.entries(counts)) this.set({ status }, n);
      },
    });
    new Gauge({
      name: 'flotilla_outbox_pending',
      help: 'Federation changes not yet applied at their member',
      registers,
      async collect() {
        this.set(await sources.pendingOutbox());
      },
    });
    new Gauge({
      name: 'flotilla_services',
      help: 'Services defined on this cluster',
      registers,
      async collect() {
        this.set(await sources.services());
      },
    });
    new Gauge({
      name: 'flotilla_replica_cluster_up',
      help: 'Replica clusters as the status cache sees them (1 online, 0 offline)',
      labelNames: ['cluster'],
      registers,
      collect() {
        this.reset();
        for (const [id, s] of capped(sources.clusters())) this.set({ cluster: id }, s.online ? 1 : 0);
      },
    });
    new Gauge({
      name: 'flotilla_replica_cluster_free_cpu_cores',
      help: 'Free cpu of each replica cluster in the status cache, reservations included',
      labelNames: ['cluster'],
      registers,
      collect() {
        this.reset();
        for (const [id, s] of capped(sources.clusters()))
          this.set({ cluster: id }, s.totalFreeCpuMillis / 1000);
      },
    });
  }

  observeHttp(method: string, route: string, status: number, seconds: number): void {
    this.http.observe({ method, route, status: String(status) }, seconds);
  }

  jobFinished(status: 'Succeeded' | 'Failed', seconds: number): void {
    this.finished.observe({ status }, Math.max(0, seconds));
  }

  jobDelegated(toCluster: string): void {
    this.delegated.inc({ to: this.target(toCluster) });
  }

  delegationFailed(toCluster: string): void {
    this.delegationFailures.inc({ to: this.target(toCluster) });
  }

  auditRows(outcome: 'written' | 'dropped', n: number): void {
    if (n > 0) this.audit.inc({ outcome }, n);
  }

  peerOffline(peer: string): void {
    this.peerOfflines.inc({ peer: this.target(peer) });
    this.peerDown.set({ peer: this.target(peer) }, 1);
  }

  peerOnline(peer: string): void {
    this.peerDown.set({ peer: this.target(peer) }, 0);
  }

  /** The label for a target cluster: its id, or "other" past the cap (ids come from users). */
  private target(id: string): string {
    if (this.targets.has(id)) return id;
    if (this.targets.size >= MAX_LABEL_VALUES) return OTHER;
    this.targets.add(id);
    return id;
  }

  async render(): Promise<{ contentType: string; body: string }> {
    const [own, proc] = await Promise.all([this.registry.metrics(), processMetrics().metrics()]);
    return { contentType: this.registry.contentType, body: `${own}\n${proc}` };
  }
}
