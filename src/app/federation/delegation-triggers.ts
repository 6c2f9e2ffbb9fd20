// When jobs are delegated: (1) at intake, when no local node has room for the job; (2) by
// the rescheduler, when a job has waited longer than its service's rescheduler_threshold
// (at once for a job no local node could ever hold). A job is claimed before it is sent, so
// the local runner and the delegation never both take it. A job no local node can hold and
// no replica has room for *now* waits, as a pending job waits in OSCAR: the status cache may
// not know a new replica yet, or every replica may be full for a while. It fails only when
// its service names no replica a job could be sent to at all.
import { everFits, findFit, type NodeState } from '../../core/capacity.ts';
import {
  type DelegationTrace,
  type DelegationTrigger,
  delegationDecision,
} from '../../core/delegation/decision.ts';
import { DROPPED_EXPIRED } from '../../core/delegation/hand-over.ts';
import type { Service } from '../../core/fdl/service.ts';
import type { Replica } from '../../core/federation/model.ts';
import type { Clock, JobStore, JobSummary } from '../../core/ports.ts';
import type { ServiceCache } from '../service-cache.ts';
import { type Delegator, replicasOf } from './delegator.ts';

export interface TriggerDeps {
  store: JobStore;
  services: ServiceCache;
  delegator: Delegator;
  nodes: () => readonly NodeState[];
  /** Asks the local runner to look for work (a claim was given back). */
  wakeRunner: () => void;
  clock: Clock;
  logger: { warn(obj: Record<string, unknown>, msg: string): void };
  /** This manager instance's id, stamped on claims (a dead instance's claims are swept by id). */
  runnerId?: string;
}

const DEFAULT_THRESHOLD_S = 10;

/** A replica a job can be sent to: a Flotilla/OSCAR service by name, or an endpoint URL. */
const isSendable = (r: Replica): boolean =>
  (r.type === 'oscar' && !!r.cluster_id && !!r.service_name) || (r.type === 'endpoint' && !!r.url);

export class DelegationTriggers {
  constructor(private readonly d: TriggerDeps) {}

  /** At intake: delegate now when no local node has room. Resolves to where it went. */
  async atIntake(jobId: string, service: Service): Promise<string | undefined> {
    if (replicasOf(service).length === 0) return undefined;
    const job = await this.d.store.getJob(jobId);
    if (job?.status !== 'Pending') return undefined;
    if (findFit(this.d.nodes(), job.cpuMillis, job.memoryBytes)) return undefined;
    return this.claimAndDelegate(job, service, { trigger: 'intake' });
  }

  /** One rescheduler pass over the pending jobs. */
  async reschedule(): Promise<void> {
    // Holds of other clusters' hand-overs that were never confirmed end here (ADR 13).
    const dropped = await this.d.store.dropExpiredHolds(DROPPED_EXPIRED, this.d.clock.now());
    if (dropped.length) this.d.logger.warn({ jobs: dropped.length }, 'dropped hand-overs never confirmed');
    const now = this.d.clock.now().getTime();
    for (const job of await this.d.store.pendingJobs(500)) {
      const service = await this.d.services.get(job.service);
      if (!service || replicasOf(service).length === 0) continue;
      const thresholdMs = (service.federation?.rescheduler_threshold ?? DEFAULT_THRESHOLD_S) * 1000;
      const neverFits = !everFits(this.d.nodes(), job.cpuMillis, job.memoryBytes);
      const waited = now - job.createdAt.getTime();
      if (!neverFits && waited < thresholdMs) continue;
      if (!neverFits && findFit(this.d.nodes(), job.cpuMillis, job.memoryBytes)) continue; // room now: runs here
      const trigger: DelegationTrigger = neverFits
        ? { trigger: 'never-fits' }
        : { trigger: 'rescheduler', waited_s: Math.floor(waited / 1000), threshold_s: thresholdMs / 1000 };
      const to = await this.claimAndDelegate(job, service, trigger);
      if (!to && neverFits && !replicasOf(service).some(isSendable)) await this.failStranded(job);
    }
  }

  private async claimAndDelegate(
    job: JobSummary,
    service: Service,
    trigger: DelegationTrigger,
  ): Promise<string | undefined> {
    // No replica could take it now (cache read, no I/O): leave the job as it is rather than
    // claiming and releasing it on every pass (two writes a second per waiting job, and a
    // job that shows Running with a start time while it waits).
    const demand = { cpuMillis: job.cpuMillis, memoryBytes: job.memoryBytes };
    if (!this.d.delegator.plan(service, demand).some(isSendable)) return undefined;
    if (!(await this.d.store.claimJob(job.id, this.d.clock.now(), this.d.runnerId))) return undefined;
    const trace: DelegationTrace = { attempts: [] };
    try {
      // The event bytes are read only for the job that goes.
      const full = await this.d.store.getJob(job.id);
      const out = full ? await this.d.delegator.delegate(full, service, trace) : undefined;
      if (out) {
        await this.recordDecision(job, trigger, trace);
        return out.clusterId;
      }
    } catch (e) {
      this.d.logger.warn({ job: job.id, err: (e as Error).message }, 'delegation failed');
    }
    // Every replica tried failed: the job stays here, and says so.
    await this.recordDecision(job, trigger, trace);
    await this.d.store.releaseJob(job.id);
    this.d.wakeRunner();
    return undefined;
  }

  /** Stores the decision on the job; a failure to store it changes nothing about the job. */
  private async recordDecision(job: JobSummary, trigger: DelegationTrigger, trace: DelegationTrace) {
    if (!trace.considered) return; // the delegator never looked (the job vanished)
    try {
      const decision = delegationDecision({ trigger, trace, job, at: this.d.clock.now() });
      await this.d.store.recordDelegation(job.id, decision);
    } catch (e) {
      this.d.logger.warn({ job: job.id, err: (e as Error).message }, 'delegation decision not recorded');
    }
  }

  private async failStranded(job: JobSummary): Promise<void> {
    if (!(await this.d.store.claimJob(job.id, this.d.clock.now(), this.d.runnerId))) return;
    await this.d.store.finishJob(job.id, {
      status: 'Failed',
      at: this.d.clock.now(),
      exitCode: null,
      reason: 'no local node is large enough and the service names no replica a job can be sent to',
      log: '',
    });
  }
}
