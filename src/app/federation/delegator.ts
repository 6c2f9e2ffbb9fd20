// Delegating a job to a replica: decide from the status cache (no network call per
// decision), send to the first candidate, try the next on failure, keep it local when none
// is left. The origin records where the job went and mirrors its remote status.

import { createHash, randomBytes } from 'node:crypto';
import {
  consideredReplicas,
  type DelegationTrace,
  type SendOutcome,
  sendOutcomeOf,
} from '../../core/delegation/decision.ts';
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
import { delegatedJobKey, NO_TRACING, type Tracing } from '../../core/tracing.ts';
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
  /** A span per hand-over, whose context the `traceparent` carries (random without tracing). */
  tracing?: Pick<Tracing, 'enabled' | 'inSpan' | 'traceparent' | 'keptContext' | 'withContext'>;
}

export const replicasOf = (s: Service): Replica[] =>
  ((s as Record<string, unknown>)[REPLICAS_FIELD] as Replica[] | undefined) ?? [];

export const DELEGATION_TOKEN_PREFIX = 'dlg_';
const tokenKey = (token: string) => `delegation:${createHash('sha256').update(token).digest('hex')}`;

/** A hand-over in its own client span: job id, target cluster, and the outcome (ok or an error code). */
const inHandOverSpan = <T>(
  d: DelegatorDeps,
  job: JobRecord,
  to: string,
  send: () => Promise<T>,
  /** The failure a result reports without throwing (a hand-over that did not deliver). */
  failureOf: (result: T) => unknown = () => undefined,
): Promise<T> => {
  const tracing = d.tracing ?? NO_TRACING;
  const span = () =>
    tracing.inSpan(
      'delegation.hand-over',
      'client',
      { 'flotilla.job.id': job.id, 'flotilla.target_cluster': to },
      async (active) => {
        const result = await send();
        const failure = failureOf(result);
        if (failure !== undefined) active.fail(failure);
        return result;
      },
    );
  // A job delegated here, sent on: in the trace of the request that brought it, when kept.
  const kept =
    tracing.enabled && job.originCluster && job.delegatedId
      ? tracing.keptContext(delegatedJobKey(job.originCluster, job.delegatedId))
      : undefined;
  return kept ? tracing.withContext(kept, span) : span();
};

/** An endpoint's answer other than 2xx fails the hand-over. */
const answeredOk = (status: number): number => {
  if (status < 200 || status >= 300) throw new Error(`answered HTTP ${status}`);
  return status;
};

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

  /** The active hand-over span's traceparent with tracing on; a random one (as OSCAR sends) off. */
  private traceparent(): string {
    return (this.d.tracing ?? NO_TRACING).traceparent();
  }

  /** Candidates in the order they would be tried, for a job of this size (pure read of the cache). */
  plan(service: Service, demand: JobDemand): Replica[] {
    return this.planned(service, demand).order.map((c) => c.replica);
  }

  /** The plan, with what the cache said of every replica (one read of the cache for both). */
  private planned(service: Service, demand: JobDemand) {
    const policy = (service.federation?.delegation ?? 'static') as DelegationPolicy;
    const replicas = replicasOf(service);
    const snapshots = this.d.cache.forService(service);
    const order = rank(policy, candidates(replicas, snapshots, demand), this.d.random);
    const considered = () => consideredReplicas(replicas, snapshots, demand, order);
    return { policy, order, considered };
  }

  /**
   * Sends a job this manager has claimed to the best replica. Resolves to where it went, or
   * undefined when no candidate took it (the caller keeps it local). `trace`, when given,
   * receives the plan and each send's outcome (the job's delegation decision is made of it).
   */
  async delegate(
    job: JobRecord,
    service: Service,
    trace?: DelegationTrace,
  ): Promise<DelegationOutcome | undefined> {
    const demand = { cpuMillis: job.cpuMillis, memoryBytes: job.memoryBytes };
    const plan = this.planned(service, demand);
    if (trace) Object.assign(trace, { policy: plan.policy, considered: plan.considered() });
    const tried = (index: number, outcome: SendOutcome) => trace?.attempts.push({ index, outcome });
    const inDoubt: HandOverTo[] = [];
    for (const { replica, index } of plan.order) {
      if (replica.type === 'endpoint') {
        const to = replica.url ? await this.sendToEndpoint(job, replica) : undefined;
        tried(index, to ? 'accepted' : 'failed');
        if (to) return { clusterId: to, remoteJobId: '' };
        continue;
      }
      if (!replica.cluster_id || !replica.service_name) continue;
      const target = await this.d.credentials.targetFor(replica.cluster_id, service).catch(() => undefined);
      if (!target) {
        tried(index, 'no-credentials');
        continue;
      }
      const headers = await this.headers(job, service);
      const to = { clusterId: replica.cluster_id, target, service: replica.service_name };
      // Two steps (ADR 13): the replica holds the job until it is confirmed there. In the
      // hand-over's span, whose context the traceparent carries.
      const res = await inHandOverSpan(
        this.d,
        job,
        replica.cluster_id,
        () =>
          this.handOver.deliver(job, to, this.wrappedEvent(job), {
            ...headers,
            traceparent: this.traceparent(),
          }),
        (r) => (r.kind === 'failed' ? (r.error ?? new Error('not delivered')) : undefined),
      );
      if (res.kind === 'failed') {
        const e = res.error;
        if (res.inDoubt) inDoubt.push(to);
        // Only an unreachable target is marked offline (for every service reaching it with
        // the same endpoint and credentials); a refusal concerns this service alone.
        if (isFlotillaError(e) && e.code === 'PEER_UNREACHABLE')
          this.d.cache.markOffline(service, replica.cluster_id);
        tried(index, sendOutcomeOf(isFlotillaError(e) ? e.code : undefined));
        this.d.metrics?.delegationFailed(replica.cluster_id);
        this.d.logger.warn(
          { job: job.id, to: replica.cluster_id, err: (e as Error).message },
          'delegation failed; trying the next replica',
        );
        continue;
      }
      tried(index, 'accepted');
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
      const status = await inHandOverSpan(
        this.d,
        job,
        `endpoint:${URL.canParse(url) ? new URL(url).host : 'invalid'}`,
        () =>
          this.d.peers
            .postEvent(
              url,
              job.event,
              {
                ...(replica.headers ?? {}),
                'x-delegated-from': this.d.clusterId,
                traceparent: this.traceparent(),
              },
              replica.ssl_verify !== false,
              AbortSignal.timeout(this.d.sendTimeoutMs ?? 5000),
            )
            .then(answeredOk),
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
