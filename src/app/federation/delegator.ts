// Delegating a job to a replica: decide from the status cache (no network call per
// decision), send to the first candidate, try the next on failure, keep it local when none
// is left. The origin records where the job went and mirrors its remote status.

import { createHash, randomBytes } from 'node:crypto';
import { delegatedIdFor } from '../../core/delegation/delegated-id.ts';
import { type ClusterSnapshot, candidates, type JobDemand, rank } from '../../core/delegation/policy.ts';
import { isFlotillaError } from '../../core/errors.ts';
import type { Service } from '../../core/fdl/service.ts';
import { type DelegationPolicy, REPLICAS_FIELD, type Replica } from '../../core/federation/model.ts';
import type {
  JobRecord,
  JobStore,
  Log,
  MetricsSink,
  PeerClient,
  PeerTarget,
  SettingsStore,
} from '../../core/ports.ts';
import { HandOver, type HandOverTo } from './hand-over.ts';

/** How this cluster reaches another on behalf of a service (strongest credential first). */
export interface DelegationCredentials {
  /**
   * How to reach `clusterId` for `service`. `round` shares the owner's token between calls
   * of one pass over many (service, cluster) pairs: one store read per service, not per pair.
   */
  targetFor(
    clusterId: string,
    service: Service,
    round?: Map<string, Promise<string | undefined>>,
  ): Promise<PeerTarget | undefined>;
}

/**
 * The status cache as one service sees it: each replica cluster as reached with that
 * service's own endpoint and credentials, so no other service's entry can change it.
 */
export interface SnapshotSource {
  /** Snapshots of the service's replica clusters, by cluster id. */
  forService(service: Service): Map<string, ClusterSnapshot>;
  reserve(service: Service, clusterId: string, job: JobDemand): void;
  markOffline(service: Service, clusterId: string): void;
}

export type DelegatorLogger = Pick<Log, 'info' | 'warn'>;

export interface DelegatorDeps {
  store: JobStore;
  settings: SettingsStore;
  cache: SnapshotSource;
  peers: PeerClient;
  credentials: DelegationCredentials;
  clusterId: string;
  random: () => number;
  logger: DelegatorLogger;
  /** Opens a job's sealed origin token (a job delegated here, sent onward). */
  openSealed: (sealed: string) => string;
  sendTimeoutMs?: number;
  /** How long replicas hold a job for this cluster's confirm (ADR 13; default 120 s). */
  holdSeconds?: number;
  /** How long a delegation token (for the origin's storage keys) stays valid. */
  delegationTokenTtlMs?: number;
  metrics?: Pick<MetricsSink, 'jobDelegated' | 'delegationFailed'>;
}

export const replicasOf = (s: Service): Replica[] =>
  ((s as Record<string, unknown>)[REPLICAS_FIELD] as Replica[] | undefined) ?? [];

export const DELEGATION_TOKEN_PREFIX = 'dlg_';
const tokenKey = (token: string) => `delegation:${createHash('sha256').update(token).digest('hex')}`;

/** A W3C traceparent for the hop to the replica. */
const traceparent = (): string =>
  `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`;

export interface DelegationOutcome {
  clusterId: string;
  remoteJobId: string;
}

export class Delegator {
  private readonly handOver: HandOver;

  constructor(private readonly d: DelegatorDeps) {
    this.handOver = new HandOver({
      peers: d.peers,
      store: d.store,
      logger: d.logger,
      sendTimeoutMs: d.sendTimeoutMs,
      holdSeconds: d.holdSeconds,
    });
  }

  /** Candidates in the order they would be tried, for a job of this size (pure read of the cache). */
  plan(service: Service, demand: JobDemand): Replica[] {
    const policy = (service.federation?.delegation ?? 'static') as DelegationPolicy;
    const list = candidates(replicasOf(service), this.d.cache.forService(service), demand);
    return rank(policy, list, this.d.random).map((c) => c.replica);
  }

  /**
   * Sends a job this manager has claimed to the best replica. Resolves to where it went, or
   * undefined when no candidate took it (the caller keeps it local).
   */
  async delegate(job: JobRecord, service: Service): Promise<DelegationOutcome | undefined> {
    const demand = { cpuMillis: job.cpuMillis, memoryBytes: job.memoryBytes };
    const inDoubt: HandOverTo[] = [];
    for (const replica of this.plan(service, demand)) {
      if (replica.type === 'endpoint') {
        const to = replica.url ? await this.sendToEndpoint(job, replica) : undefined;
        if (to) return { clusterId: to, remoteJobId: '' };
        continue;
      }
      if (!replica.cluster_id || !replica.service_name) continue;
      const target = await this.d.credentials.targetFor(replica.cluster_id, service).catch(() => undefined);
      if (!target) continue;
      const headers = await this.headers(job, service);
      const to = { clusterId: replica.cluster_id, target, service: replica.service_name };
      // Two steps (ADR 13): the replica holds the job until it is confirmed there.
      const res = await this.handOver.deliver(job, to, this.wrappedEvent(job), headers);
      if (res.kind === 'failed') {
        const e = res.error;
        if (res.inDoubt) inDoubt.push(to);
        // Only an unreachable target is marked offline (for every service reaching it with
        // the same endpoint and credentials); a refusal concerns this service alone.
        if (isFlotillaError(e) && e.code === 'PEER_UNREACHABLE')
          this.d.cache.markOffline(service, replica.cluster_id);
        this.d.metrics?.delegationFailed(replica.cluster_id);
        this.d.logger.warn(
          { job: job.id, to: replica.cluster_id, err: (e as Error).message },
          'delegation failed; trying the next replica',
        );
        continue;
      }
      this.d.cache.reserve(service, replica.cluster_id, demand);
      this.d.metrics?.jobDelegated(replica.cluster_id);
      this.d.logger.info({ job: job.id, to: replica.cluster_id, remote: res.remoteJobId }, 'job delegated');
      this.abandonAll(inDoubt, job);
      return { clusterId: replica.cluster_id, remoteJobId: res.remoteJobId };
    }
    this.abandonAll(inDoubt, job);
    return undefined;
  }

  /** Replicas that may hold the job drop their hold: it went elsewhere or stays here. */
  private abandonAll(inDoubt: HandOverTo[], job: JobRecord): void {
    const id = delegatedIdFor(job, this.d.clusterId);
    const from = job.originCluster ?? this.d.clusterId;
    for (const to of inDoubt) void this.handOver.abandon(to, id, from);
  }

  /**
   * An `endpoint` replica gets the original event by HTTP POST (OSCAR's re-send). It runs no
   * job Flotilla can follow, so the origin records the hand-over as the job's end.
   */
  private async sendToEndpoint(job: JobRecord, replica: Replica): Promise<string | undefined> {
    const url = replica.url!;
    try {
      const status = await this.d.peers.postEvent(
        url,
        job.event,
        { ...(replica.headers ?? {}), 'x-delegated-from': this.d.clusterId, traceparent: traceparent() },
        replica.ssl_verify !== false,
        AbortSignal.timeout(this.d.sendTimeoutMs ?? 5000),
      );
      if (status < 200 || status >= 300) throw new Error(`answered HTTP ${status}`);
      const host = new URL(url).host;
      const to = `endpoint:${host}`;
      await this.d.store.markDelegated(job.id, to, '');
      await this.d.store.mirrorDelegated(job.id, {
        status: 'Succeeded',
        startedAt: new Date(),
        finishedAt: new Date(),
        log: `[flotilla] event sent to endpoint ${host} (HTTP ${status})\n`,
        reason: null,
        exitCode: null,
      });
      this.d.logger.info({ job: job.id, to: host }, 'job sent to an endpoint replica');
      this.d.metrics?.jobDelegated(to);
      return to;
    } catch (e) {
      this.d.metrics?.delegationFailed(`endpoint:${URL.canParse(url) ? new URL(url).host : 'invalid'}`);
      this.d.logger.warn(
        { job: job.id, err: (e as Error).message },
        'endpoint replica refused the event; trying the next replica',
      );
      return undefined;
    }
  }

  /** The event as the replica gets it: wrapped with the origin's storage provider. */
  private wrappedEvent(job: JobRecord): Uint8Array {
    // A job delegated here keeps its first origin's wrapper when it moves on.
    if (job.originCluster) return job.event;
    const wrapped = {
      storage_provider: `minio.${this.d.clusterId}`,
      event: Buffer.from(job.event).toString('utf8'),
    };
    return new TextEncoder().encode(JSON.stringify(wrapped));
  }

  private async headers(job: JobRecord, service: Service): Promise<Record<string, string>> {
    const headers: Record<string, string> = {
      'x-delegated-job-id': delegatedIdFor(job, this.d.clusterId),
      'x-delegated-from': job.originCluster ?? this.d.clusterId,
      traceparent: traceparent(),
    };
    headers['x-delegation-token'] = job.originToken
      ? this.d.openSealed(job.originToken)
      : await this.mintToken(service.name);
    return headers;
  }

  /** A token the replica presents to /system/config here for keys to this service's buckets. */
  private async mintToken(service: string): Promise<string> {
    const token = `${DELEGATION_TOKEN_PREFIX}${randomBytes(32).toString('hex')}`;
    const expires = Date.now() + (this.d.delegationTokenTtlMs ?? 24 * 3600_000);
    await this.d.settings.setSetting(tokenKey(token), JSON.stringify({ service, expires }));
    return token;
  }
}

/** The service a delegation token grants storage keys for, or undefined. */
export const resolveDelegationToken = async (
  settings: SettingsStore,
  token: string,
): Promise<string | undefined> => {
  if (!token.startsWith(DELEGATION_TOKEN_PREFIX)) return undefined;
  const raw = await settings.getSetting(tokenKey(token));
  if (!raw) return undefined;
  const { service, expires } = JSON.parse(raw) as { service: string; expires: number };
  return expires > Date.now() ? service : undefined;
};

/** Whether a job of this service could go elsewhere: it names some replica to delegate to. */
export const canDelegateFrom =
  (services: { get(name: string): Promise<Service | undefined> }) =>
  async (name: string): Promise<boolean> => {
    const svc = await services.get(name);
    return !!svc && replicasOf(svc).length > 0;
  };
