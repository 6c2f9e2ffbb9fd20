// The origin's view of its delegated jobs: their remote status and log, fetched from the
// cluster running each (only a job log of the expected shape, from the fixed logs path), so
// `jobs` and `logs` work for them here. A cluster that does not answer is asked again with
// backoff; a job whose cluster its service no longer names is ended, not polled for good.
import { REPLICAS_FIELD, type Replica } from '../../core/federation/model.ts';
import type { Clock, JobRecord, JobStatus, JobStore, PeerClient } from '../../core/ports.ts';
import type { ServiceCache } from '../service-cache.ts';
import type { DelegationCredentials } from './delegator.ts';

const STATUSES = new Set<JobStatus>(['Pending', 'Running', 'Succeeded', 'Failed']);

export class DelegatedMirror {
  /** Jobs whose cluster did not answer: failures in a row and when to ask again (ms). */
  private readonly backoff = new Map<string, { failures: number; next: number }>();

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
