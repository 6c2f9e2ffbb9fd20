// The origin's view of its delegated jobs: their remote status and log, fetched from the
// cluster running each, so `jobs` and `logs` work for them here.
import { REPLICAS_FIELD, type Replica } from '../../core/federation/model.ts';
import type { Clock, JobRecord, JobStatus, JobStore, PeerClient } from '../../core/ports.ts';
import type { ServiceCache } from '../service-cache.ts';
import type { DelegationCredentials } from './delegator.ts';

const STATUSES = new Set<JobStatus>(['Pending', 'Running', 'Succeeded', 'Failed']);

export class DelegatedMirror {
  constructor(
    private readonly d: {
      store: JobStore;
      services: ServiceCache;
      peers: PeerClient;
      credentials: DelegationCredentials;
      clock: Clock;
    },
  ) {}

  /** Where a delegated job lives: the target and the remote service name. */
  private async locate(job: JobRecord) {
    const service = await this.d.services.get(job.service);
    if (!service || !job.delegatedTo || !job.remoteJobId) return undefined;
    const replicas = ((service as Record<string, unknown>)[REPLICAS_FIELD] as Replica[] | undefined) ?? [];
    const remoteService = replicas.find((r) => r.cluster_id === job.delegatedTo)?.service_name;
    const target = await this.d.credentials.targetFor(job.delegatedTo, service);
    return remoteService && target ? { target, remoteService } : undefined;
  }

  /** The remote log of a delegated job (for `logs` while it runs). */
  async remoteLog(job: JobRecord): Promise<{ status: string; log: string } | undefined> {
    const where = await this.locate(job);
    if (!where || !job.remoteJobId) return undefined;
    return this.d.peers.jobStatus(
      where.target,
      where.remoteService,
      job.remoteJobId,
      AbortSignal.timeout(5000),
    );
  }

  /** One pass: refresh every delegated job that has not ended. */
  async sync(): Promise<void> {
    for (const job of await this.d.store.delegatedActiveJobs(200)) {
      try {
        const remote = await this.remoteLog(job);
        const now = this.d.clock.now();
        if (!remote) continue;
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
        // The cluster is unreachable now: try again next pass.
      }
    }
  }
}
