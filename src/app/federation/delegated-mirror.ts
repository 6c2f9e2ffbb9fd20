// The origin's view of its delegated jobs: their remote status and log, fetched from the
// cluster running each (only a job log of the expected shape, from the fixed logs path), so
// `jobs` and `logs` work for them here. A cluster that does not answer is asked again with
// backoff; a job whose cluster its service no longer names is ended, not polled for good.

import { delegatedIdFor } from '../../core/delegation/delegated-id.ts';
import { REPLICAS_FIELD, type Replica } from '../../core/federation/model.ts';
import type { Clock, JobRecord, JobStatus, JobStore, PeerClient, PeerTarget } from '../../core/ports.ts';
import type { ServiceCache } from '../service-cache.ts';
import type { DelegationCredentials } from './delegator.ts';
import { confirmOutcomeOf } from './hand-over.ts';

const STATUSES = new Set<JobStatus>(['Pending', 'Running', 'Succeeded', 'Failed']);

export class DelegatedMirror {
  /** Jobs whose cluster did not answer: failures in a row and when to ask again (ms). */
  private readonly backoff = new Map<string, { failures: number; next: number }>();
  /** Jobs seen with a confirm pending on an earlier pass: the delegator had its turn. */
  private readonly seenPending = new Set<string>();

  constructor(
    private readonly d: {
      store: JobStore;
      services: ServiceCache;
      peers: PeerClient;
      credentials: DelegationCredentials;
      clock: Clock;
      /** How often sync runs; the first wait after a failure is twice this (default 1.5 s). */
      intervalMs?: number;
      /** Longest wait between two questions to a cluster that does not answer (default 60 s). */
      maxBackoffMs?: number;
      /** This cluster's id: the origin a confirm is sent from (ADR 13). */
      clusterId?: string;
      logger?: { warn(obj: Record<string, unknown>, msg: string): void };
    },
  ) {}

  /**
   * Where a delegated job lives: the target and the remote service name; `gone` when its
   * service no longer names that cluster as a replica.
   */
  private async locate(job: JobRecord) {
    const service = await this.d.services.get(job.service);
    if (!job.delegatedTo || !job.remoteJobId) return undefined;
    const replicas = ((service as Record<string, unknown> | undefined)?.[REPLICAS_FIELD] as Replica[]) ?? [];
    const remoteService = replicas.find((r) => r.cluster_id === job.delegatedTo)?.service_name;
    if (!service || !remoteService) return 'gone' as const;
    const target = await this.d.credentials.targetFor(job.delegatedTo, service);
    return target ? { target, remoteService } : undefined;
  }

  /** The remote log of a delegated job (for `logs` while it runs). */
  async remoteLog(job: JobRecord): Promise<{ status: string; log: string } | undefined> {
    const where = await this.locate(job);
    if (!where || where === 'gone' || !job.remoteJobId) return undefined;
    return this.d.peers.jobStatus(
      where.target,
      where.remoteService,
      job.remoteJobId,
      AbortSignal.timeout(5000),
    );
  }

  /**
   * A hand-over recorded at a replica whose confirm was not answered (the origin crashed,
   * or the replica went quiet): confirm it again. Confirmed → mirrored from now on; refused
   * (the hold was dropped there: it never runs the job) → the job is this cluster's again.
   * Unanswered → asked again, with backoff; never given elsewhere meanwhile.
   */
  private async finishConfirm(
    job: JobRecord,
    where: { target: PeerTarget; remoteService: string },
  ): Promise<void> {
    if (!this.seenPending.has(job.id)) {
      // The delegator may be confirming it right now: give it one pass.
      this.seenPending.add(job.id);
      return;
    }
    const clusterId = this.d.clusterId ?? '';
    try {
      await this.d.peers.confirmJob(
        where.target,
        where.remoteService,
        delegatedIdFor(job, clusterId),
        { 'x-delegated-from': job.originCluster ?? clusterId },
        AbortSignal.timeout(5000),
      );
    } catch (e) {
      if (confirmOutcomeOf(e) === 'unknown') throw e;
      if (await this.d.store.takeBackDelegation(job.id, 'Pending'))
        this.d.logger?.warn(
          { job: job.id, from: job.delegatedTo },
          "the replica dropped the hand-over: the job is this cluster's again",
        );
      this.seenPending.delete(job.id);
      return;
    }
    await this.d.store.confirmedDelegation(job.id);
    this.seenPending.delete(job.id);
    this.backoff.delete(job.id);
  }

  private failedAgain(id: string, now: number): void {
    const failures = (this.backoff.get(id)?.failures ?? 0) + 1;
    const wait = Math.min(
      this.d.maxBackoffMs ?? 60_000,
      (this.d.intervalMs ?? 1500) * 2 ** Math.min(failures, 20),
    );
    this.backoff.set(id, { failures, next: now + wait });
  }

  /** One pass: refresh every delegated job that has not ended and is due. */
  async sync(): Promise<void> {
    const active = await this.d.store.delegatedActiveJobs(200);
    const ids = new Set(active.map((j) => j.id));
    for (const id of [...this.backoff.keys()]) if (!ids.has(id)) this.backoff.delete(id);
    for (const id of [...this.seenPending]) if (!ids.has(id)) this.seenPending.delete(id);
    for (const job of active) {
      const now = this.d.clock.now();
      if ((this.backoff.get(job.id)?.next ?? 0) > now.getTime()) continue;
      try {
        const where = await this.locate(job);
        if (where === 'gone') {
          await this.d.store.mirrorDelegated(job.id, {
            status: 'Failed',
            startedAt: job.startedAt,
            finishedAt: now,
            log: null,
            reason: `service "${job.service}" no longer names cluster ${job.delegatedTo} as a replica: the job's outcome there is unknown`,
            exitCode: null,
          });
          this.backoff.delete(job.id);
          continue;
        }
        if (job.confirmPending) {
          if (where) await this.finishConfirm(job, where);
          continue;
        }
        const remote = where
          ? await this.d.peers.jobStatus(
              where.target,
              where.remoteService,
              job.remoteJobId!,
              AbortSignal.timeout(5000),
            )
          : undefined;
        if (!remote) {
          this.failedAgain(job.id, now.getTime());
          continue;
        }
        this.backoff.delete(job.id);
        const status = STATUSES.has(remote.status as JobStatus) ? (remote.status as JobStatus) : job.status;
        const ended = status === 'Succeeded' || status === 'Failed';
        if (status === job.status && !ended) continue;
        await this.d.store.mirrorDelegated(job.id, {
          status,
          startedAt: job.startedAt ?? (status !== 'Pending' ? now : null),
          finishedAt: ended ? now : null,
          log: ended ? remote.log : null,
          reason: status === 'Failed' ? `failed on cluster ${job.delegatedTo}` : null,
          exitCode: null,
        });
      } catch {
        // The cluster is unreachable or answered out of shape: ask again later, less often.
        this.failedAgain(job.id, now.getTime());
      }
    }
  }
}
