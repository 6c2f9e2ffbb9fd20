// Federated services: create across clusters (atomic or best-effort), propagate updates,
// cascade deletes, and topology-wide member changes. Core decides the graph (expand);
// this layer acts through PeerClient calls and the durable outbox.
import PQueue from 'p-queue';
import { narrowsVisibility, type Principal } from '../../core/auth/principal.ts';
import type { ClusterSnapshot } from '../../core/delegation/policy.ts';
import { FlotillaError, fail, isFlotillaError } from '../../core/errors.ts';
import type { Service } from '../../core/fdl/service.ts';
import { normalizeServiceEndpoints } from '../../core/federation/endpoint.ts';
import { expand } from '../../core/federation/expand.ts';
import { addMembers, diffNodes, removeMembers, updateMembers } from '../../core/federation/members.ts';
import type { MembersRequest } from '../../core/federation/members-request.ts';
import {
  type ExpansionPlan,
  FEDERATION_WORKER,
  type FederationSpec,
  type Member,
  type NodeRef,
  nodeKey,
  ORIGIN_CLUSTER,
  ORIGIN_SERVICE,
  REPLICAS_FIELD,
  type WorkerPlan,
} from '../../core/federation/model.ts';
import { deployedMembers, parseFederation } from '../../core/federation/validate.ts';
import type { WorkerProof } from '../../core/federation/worker-guard.ts';
import type { NewOutboxRow, OutboxRow, PeerClient, PeerTarget, Store } from '../../core/ports.ts';
import type { ServiceUseCases } from '../services.ts';
import type { PeerResolver } from './peer-resolver.ts';
import type { WorkerTokens } from './worker-tokens.ts';

export type MemberStatus =
  | 'created'
  | 'queued'
  | 'failed'
  | 'unreachable'
  | 'exists'
  | 'rolled-back'
  | 'rollback-queued'
  | 'not-created';

export interface MemberReport extends NodeRef {
  status: MemberStatus;
  error?: string;
}

export interface CreateReport {
  service: string;
  topology: string;
  deployment: string;
  revision: number;
  outcome: 'created' | 'rolled-back' | 'partial';
  members: MemberReport[];
}

export interface SyncState {
  state: 'synced' | 'pending' | 'failed';
  revision: number | null;
  last_error: string | null;
  /** Outbox rows for this member not applied yet (the changes still on their way). */
  pending_changes: number;
}

/** The outbox interface the use cases need: nudge to apply new rows now, settle to wait a little. */
export interface Propagator {
  /** Rows were added for these peers. */
  nudge(peers: Iterable<string>): void;
  settle(timeoutMs: number): Promise<void>;
}

export interface FederationDeps {
  store: Store;
  services: ServiceUseCases;
  peers: PeerClient;
  resolver: PeerResolver;
  outbox: Propagator;
  /** The tokens this coordinator gave its workers: its proof that a worker is its own. */
  workerTokens: WorkerTokens;
  clusterId: string;
  publicUrl: string;
  /** Parallel calls to members and the per-call timeout. */
  concurrency?: number;
  callTimeoutMs?: number;
  /** How long a change request waits for propagation before answering. */
  settleMs?: number;
  /**
   * The owner's refresh token travels to workers (their credential for delegating onward in
   * OIDC mode): open in a direct call, sealed inside outbox rows.
   */
  ownerToken?: { seal(plain: string): string; sealedFor(service: string): Promise<string | undefined> };
  /** What the status cache last saw of each cluster the service reaches (for the view only). */
  snapshots?: { forService(service: Service): Map<string, ClusterSnapshot> };
}

/** A member's liveness in the GET view: the status cache's, never a call made for it. */
export interface MemberLiveness {
  online: boolean;
  /** Free cores over the member cluster's nodes, as last seen. */
  free_cpu: number;
}

export type { MembersRequest };

const isWorker = (s: Service): boolean => s.annotations?.[FEDERATION_WORKER] === 'true';

/** A member's error text, shortened, never with credentials (PeerClient errors carry none). */
const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e)).slice(0, 500);

export class FederationUseCases {
  constructor(private readonly d: FederationDeps) {}

  private get timeoutMs(): number {
    return this.d.callTimeoutMs ?? 10_000;
  }

  private pool(): PQueue {
    return new PQueue({ concurrency: this.d.concurrency ?? 32 });
  }

  private spec(service: Service): FederationSpec | undefined {
    if (isWorker(service)) {
      if ((service.federation?.members?.length ?? 0) > 0) {
        fail(
          'FEDERATION_INVALID',
          `service "${service.name}" is a federation worker of ${service.annotations?.[ORIGIN_CLUSTER]}/${service.annotations?.[ORIGIN_SERVICE]}: change its members on the coordinator`,
        );
      }
      return undefined;
    }
    return parseFederation(service, {
      clusterId: this.d.clusterId,
      knownClusters: this.d.resolver.known(service),
    });
  }

  /** The graph with each worker's token: the newest this coordinator gave it. */
  private plan(service: Service, spec: FederationSpec, tokens: Map<string, string[]>): ExpansionPlan {
    return expand(service, spec, {
      clusterId: this.d.clusterId,
      publicUrl: this.d.publicUrl,
      newToken: (node) => tokens.get(nodeKey(node))?.[0] ?? '',
    });
  }

  /** A target for calls that create, change or delete the coordinator's worker `node`. */
  private proven(
    t: PeerTarget,
    coordinator: string,
    tokens: Map<string, string[]>,
    node: NodeRef,
  ): PeerTarget {
    const worker: WorkerProof | undefined = this.d.workerTokens.proof(coordinator, tokens, node);
    return worker ? { ...t, worker } : t;
  }

  // ------------------------------------------------------------------ create

  /** POST /system/services. Returns a report for a federated create, undefined otherwise. */
  /**
   * How to reach a member now: the clusters map's endpoint with its Basic credentials, or
   * — when the map has none (OIDC mode) — the caller's own bearer token at create time and
   * the owner's refresh token (minted at send time) in durable rows.
   */
  private target(clusterId: string, service: Service, callerAuth?: PeerTarget['auth']): PeerTarget {
    const base = this.d.resolver.resolve(clusterId, service);
    if (base.auth.kind !== 'none') return base;
    return { ...base, auth: callerAuth ?? { kind: 'service-owner', service: service.name } };
  }

  /** The same target as it is stored in an outbox row: never a short-lived token. */
  private durable(t: PeerTarget, service: string): PeerTarget {
    return t.auth.kind === 'bearer' ? { ...t, auth: { kind: 'service-owner', service } } : t;
  }

  async create(
    principal: Principal,
    raw: unknown,
    callerAuth?: PeerTarget['auth'],
    proof?: WorkerProof,
  ): Promise<CreateReport | undefined> {
    const service = await this.d.services.prepareCreate(principal, raw, proof);
    const spec = this.spec(service);
    if (!spec || deployedMembers(spec).length === 0) {
      const plain = spec ? this.plan(service, { ...spec, revision: 1 }, new Map()).coordinator : service;
      await this.d.services.commitCreate(principal, plain);
      return undefined;
    }
    // Fresh tokens for the workers, kept before any call: every later change proves with them.
    await this.d.workerTokens.forget(service.name);
    const tokens = await this.d.workerTokens.assign(service.name, deployedMembers(spec), false);
    const plan = this.plan(service, { ...spec, revision: 1 }, tokens);
    const refreshToken = plainRefreshToken(service);
    if (refreshToken) for (const w of plan.workers) setRefreshToken(w.definition, refreshToken);
    const targets = new Map(
      plan.workers.map((w) => [
        nodeKey(w),
        this.proven(this.target(w.cluster_id, service, callerAuth), service.name, tokens, w),
      ]),
    );
    return spec.deployment === 'atomic'
      ? this.createAtomic(principal, plan, spec, targets)
      : this.createBestEffort(principal, plan, spec, targets);
  }

  private report(
    plan: ExpansionPlan,
    spec: FederationSpec,
    outcome: CreateReport['outcome'],
    members: MemberReport[],
  ): CreateReport {
    return {
      service: plan.coordinator.name,
      topology: spec.topology,
      deployment: spec.deployment,
      revision: 1,
      outcome,
      members,
    };
  }

  private async createAtomic(
    principal: Principal,
    plan: ExpansionPlan,
    spec: FederationSpec,
    targets: Map<string, PeerTarget>,
  ): Promise<CreateReport> {
    // 1. Every member is reachable, accepts the caller, and does not hold the name yet.
    const checks = await this.forEachWorker(plan.workers, async (w) => {
      const t = targets.get(nodeKey(w))!;
      const signal = AbortSignal.timeout(this.timeoutMs);
      // One call answers both: reachable and accepting the credentials (else 401/403 or a
      // network error), and not holding the name yet (404).
      if (await this.d.peers.getService(t, w.service_name, signal)) {
        throw new FlotillaError(
          'SERVICE_EXISTS',
          `cluster ${w.cluster_id} already has a service "${w.service_name}"`,
        );
      }
    });
    if (checks.some((c) => c.error)) {
      await this.d.workerTokens.forget(plan.coordinator.name);
      const members = checks.map((c) => ({
        ...ref(c.worker),
        status: (c.error
          ? isFlotillaError(c.error) && c.error.code === 'SERVICE_EXISTS'
            ? 'exists'
            : 'unreachable'
          : 'not-created') as MemberStatus,
        ...(c.error ? { error: errorText(c.error) } : {}),
      }));
      throw new FlotillaError('FEDERATION_FAILED', federationFailure(plan, members), {
        report: this.report(plan, spec, 'rolled-back', members),
      });
    }

    // 2. Local first, then every worker in parallel.
    await this.d.services.commitCreate(principal, plan.coordinator);
    const creates = await this.forEachWorker(plan.workers, (w) =>
      this.d.peers.createService(targets.get(nodeKey(w))!, w.definition, AbortSignal.timeout(this.timeoutMs)),
    );
    if (!creates.some((c) => c.error)) {
      return this.report(
        plan,
        spec,
        'created',
        creates.map((c) => ({ ...ref(c.worker), status: 'created' })),
      );
    }

    // 3. Roll back: delete every worker whose create may have happened (404 tolerated);
    // a delete that fails is queued so no orphan outlives the member's return.
    const attempted = creates.filter((c) => !(isFlotillaError(c.error) && c.error.code === 'SERVICE_EXISTS'));
    const rollback = await this.forEachWorker(
      attempted.map((c) => c.worker),
      (w) =>
        this.d.peers.deleteService(
          targets.get(nodeKey(w))!,
          w.service_name,
          AbortSignal.timeout(this.timeoutMs),
        ),
    );
    const queued = rollback.filter((r) => r.error).map((r) => r.worker);
    await this.enqueue(
      queued.map((w) =>
        deleteRow(w, this.durable(targets.get(nodeKey(w))!, plan.coordinator.name), plan.coordinator.name, 1),
      ),
    );
    await this.d.services.commitDelete(principal, plan.coordinator, { cascade: false });
    // The queued rollback deletes carry their proofs.
    await this.d.workerTokens.forget(plan.coordinator.name);
    const members = creates.map((c): MemberReport => {
      const failedRollback = queued.some((w) => nodeKey(w) === nodeKey(c.worker));
      // A create in doubt (e.g. the connection dropped after the member stored it) whose
      // delete could not reach the member is still pending removal: say so.
      const status: MemberStatus = failedRollback ? 'rollback-queued' : c.error ? 'failed' : 'rolled-back';
      return { ...ref(c.worker), status, ...(c.error ? { error: errorText(c.error) } : {}) };
    });
    throw new FlotillaError('FEDERATION_FAILED', federationFailure(plan, members), {
      report: this.report(plan, spec, 'rolled-back', members),
    });
  }

  private async createBestEffort(
    principal: Principal,
    plan: ExpansionPlan,
    spec: FederationSpec,
    targets: Map<string, PeerTarget>,
  ): Promise<CreateReport> {
    await this.d.services.commitCreate(principal, plan.coordinator);
    const creates = await this.forEachWorker(plan.workers, (w) =>
      this.d.peers.createService(targets.get(nodeKey(w))!, w.definition, AbortSignal.timeout(this.timeoutMs)),
    );
    // Every member not created is queued, one that holds the name too: the member refuses
    // to let a federation overwrite a service that is not its worker (409, shown as its
    // sync state), and the worker is created once the name is free.
    const exists = (e: unknown) => isFlotillaError(e) && e.code === 'SERVICE_EXISTS';
    const missing = creates.filter((c) => c.error).map((c) => c.worker);
    // A definition kept in the outbox carries the owner's token sealed, never in clear.
    const token = missing.length ? plainRefreshToken(plan.workers[0].definition) : undefined;
    if (token && this.d.ownerToken)
      for (const w of missing) setRefreshToken(w.definition, this.d.ownerToken.seal(token));
    await this.enqueue(
      missing.map((w) =>
        upsertRow(w, this.durable(targets.get(nodeKey(w))!, plan.coordinator.name), plan.coordinator.name, 1),
      ),
    );
    const members = creates.map(
      (c): MemberReport => ({
        ...ref(c.worker),
        status: c.error ? (exists(c.error) ? 'exists' : 'queued') : 'created',
        ...(c.error ? { error: errorText(c.error) } : {}),
      }),
    );
    return this.report(plan, spec, creates.some((c) => c.error) ? 'partial' : 'created', members);
  }

  private async forEachWorker<T>(
    workers: WorkerPlan[],
    fn: (w: WorkerPlan) => Promise<T>,
  ): Promise<Array<{ worker: WorkerPlan; value?: T; error?: unknown }>> {
    const q = this.pool();
    return Promise.all(
      workers.map(
        (worker) =>
          q.add(async () => {
            try {
              return { worker, value: await fn(worker) };
            } catch (error) {
              return { worker, error };
            }
          }) as Promise<{ worker: WorkerPlan; value?: T; error?: unknown }>,
      ),
    );
  }

  private async enqueue(rows: NewOutboxRow[]): Promise<void> {
    if (rows.length === 0) return;
    await this.d.store.enqueueOutbox(rows);
    this.d.outbox.nudge(new Set(rows.map((r) => r.peer)));
  }

  // ------------------------------------------------------------------ update and delete

  /** PUT /system/services: a coordinator's change reaches every worker; `proof`: a coordinator's change to its worker here. */
  async update(principal: Principal, raw: unknown, proof?: WorkerProof): Promise<void> {
    const { service, previous } = await this.d.services.prepareUpdate(principal, raw, proof);
    const spec = this.spec(service);
    if (!spec) {
      await this.d.services.commitUpdate(principal, service, previous);
      return;
    }
    await this.applySpec(principal, service, previous, spec, { deleteRemoved: false });
  }

  /** DELETE /system/services/{name}: a coordinator takes its workers along unless cascade=false. */
  async delete(
    principal: Principal,
    name: string,
    opts: { cascade: boolean; proof?: WorkerProof },
  ): Promise<void> {
    const service = await this.d.services.prepareDelete(principal, name, opts.proof);
    const spec = isWorker(service) ? undefined : this.currentSpec(service);
    if (spec && opts.cascade) {
      const revision = (spec.revision ?? 0) + 1;
      const tokens = await this.d.workerTokens.known(service.name);
      const rows = deployedMembers(spec).map((n) =>
        deleteRow(
          n,
          this.proven(this.target(n.cluster_id, service), service.name, tokens, n),
          service.name,
          revision,
        ),
      );
      await this.enqueue(rows);
    }
    await this.d.services.commitDelete(principal, service, opts);
    // The queued deletes carry their proofs; nothing else needs the tokens.
    if (spec) await this.d.workerTokens.forget(service.name);
    if (spec && opts.cascade) await this.d.outbox.settle(this.d.settleMs ?? 5000);
  }

  /** The stored spec of a coordinator (no validation of clusters: it was valid when stored). */
  private currentSpec(service: Service): FederationSpec | undefined {
    try {
      return this.spec(service);
    } catch {
      return undefined;
    }
  }

  /**
   * Stores the coordinator with the new graph and queues the change for every node: new
   * and kept members get the full definition; removed ones lose their links, or their
   * service with deleteRemoved.
   */
  private async applySpec(
    principal: Principal,
    service: Service,
    previous: Service,
    spec: FederationSpec,
    opts: { deleteRemoved: boolean },
  ): Promise<FederationSpec> {
    const before = this.currentSpec(previous);
    const revision = Math.max(before?.revision ?? 0, previous.federation?.revision ?? 0) + 1;
    const next = { ...spec, revision };
    // Workers' tokens rotate with the coordinator's when its visibility narrows.
    const tokens = await this.d.workerTokens.assign(
      service.name,
      deployedMembers(next),
      narrowsVisibility(previous, service),
    );
    const plan = this.plan(service, next, tokens);
    await this.d.services.commitUpdate(principal, plan.coordinator, previous);
    const diff = diffNodes(before ? deployedMembers(before) : [], deployedMembers(next));
    const plain = plainRefreshToken(service);
    const sealed =
      plain && this.d.ownerToken
        ? this.d.ownerToken.seal(plain)
        : await this.d.ownerToken?.sealedFor(service.name);
    if (sealed) for (const w of plan.workers) setRefreshToken(w.definition, sealed);
    const rows: NewOutboxRow[] = plan.workers.map((w) =>
      upsertRow(
        w,
        this.proven(this.target(w.cluster_id, plan.coordinator), service.name, tokens, w),
        service.name,
        revision,
      ),
    );
    for (const gone of diff.removed) {
      const target = this.proven(
        this.target(gone.cluster_id, previous.clusters?.[gone.cluster_id] ? previous : plan.coordinator),
        service.name,
        tokens,
        gone,
      );
      rows.push(
        opts.deleteRemoved
          ? deleteRow(gone, target, service.name, revision)
          : upsertRow(
              { ...gone, definition: detached(plan, gone, revision) },
              target,
              service.name,
              revision,
            ),
      );
    }
    await this.enqueue(rows);
    // A removed member keeps its tokens (re-adding it proves with them) unless it is deleted.
    if (opts.deleteRemoved && diff.removed.length)
      await this.d.workerTokens.forget(service.name, diff.removed);
    await this.d.outbox.settle(this.d.settleMs ?? 5000);
    return next;
  }

  // ------------------------------------------------------------------ /system/federation

  /** GET: the topology and members as every node shows them, with sync states on the coordinator. */
  async get(principal: Principal, name: string) {
    const service = await this.d.services.get(principal, name);
    const fed = service.federation as Record<string, any> | undefined;
    if (isWorker(service)) {
      return {
        topology: fed?.topology ?? 'none',
        members: (fed?.view as Member[] | undefined) ?? [],
        group_id: fed?.group_id ?? name,
        delegation: fed?.delegation ?? 'static',
        revision: fed?.revision ?? 0,
        coordinator: fed?.coordinator ?? null,
        role: 'worker',
      };
    }
    const spec = this.currentSpec(service);
    if (!spec) return { topology: 'none', members: [], revision: 0, role: 'none' };
    // A member removed without delete keeps a block with topology none and no members: it
    // coordinates nothing.
    if (spec.topology === 'none' && spec.members.length === 0) {
      return { topology: 'none', members: [], revision: spec.revision, role: 'none' };
    }
    const sync = await this.syncStates(service.name, spec);
    const live = this.d.snapshots?.forService(service);
    const liveness = (clusterId: string | undefined): MemberLiveness | undefined => {
      const snap = clusterId ? live?.get(clusterId) : undefined;
      return snap ? { online: snap.online, free_cpu: snap.totalFreeCpuMillis / 1000 } : undefined;
    };
    const withSync = (m: Member): Member & { sync?: SyncState; status?: MemberLiveness } =>
      m.type === 'endpoint'
        ? { ...m }
        : {
            ...m,
            sync: sync.get(`${m.cluster_id}/${m.service_name}`),
            ...(liveness(m.cluster_id) ? { status: liveness(m.cluster_id) } : {}),
            ...(m.members ? { members: m.members.map(withSync) } : {}),
          };
    return {
      topology: spec.topology,
      members: spec.members.map(withSync),
      group_id: spec.group_id,
      delegation: spec.delegation,
      revision: spec.revision,
      coordinator: { cluster_id: this.d.clusterId, service_name: service.name },
      role: 'coordinator',
    };
  }

  private async syncStates(group: string, spec: FederationSpec): Promise<Map<string, SyncState>> {
    const rows = await this.d.store.outboxOfGroup(group);
    const out = new Map<string, SyncState>();
    for (const n of deployedMembers(spec)) {
      const mine = rows.filter((r) => r.peer === n.cluster_id && r.service === n.service_name);
      out.set(nodeKey(n), syncOf(mine, spec.revision));
    }
    return out;
  }

  /** POST (add), PUT (update), DELETE (remove) of members on the coordinator. */
  async changeMembers(
    principal: Principal,
    name: string,
    op: 'add' | 'update' | 'remove',
    req: MembersRequest,
  ) {
    const previous = await this.d.services.getManageable(principal, name);
    if (isWorker(previous)) {
      fail(
        'CONFLICT',
        `service "${name}" is a federation worker; change the members on its coordinator ${previous.annotations?.[ORIGIN_CLUSTER]}/${previous.annotations?.[ORIGIN_SERVICE]}`,
      );
    }
    const list = op === 'update' ? (req.update ?? req.members) : req.members;
    if (!Array.isArray(list) || list.length === 0) {
      fail(
        'VALIDATION_FAILED',
        `${op === 'update' ? '"update" or "members"' : '"members"'} must be a non-empty list of members`,
      );
    }
    // New clusters and storage providers come with the request (OSCAR's shape), their
    // endpoints normalised as a service's are.
    const merged: Service = structuredClone(previous);
    if (req.clusters) {
      const clusters = normalizeServiceEndpoints({ clusters: req.clusters }).clusters as Service['clusters'];
      merged.clusters = { ...(merged.clusters ?? {}), ...clusters };
    }
    if (req.storage_providers) {
      merged.storage_providers = {
        ...(merged.storage_providers ?? {}),
        ...(req.storage_providers as Service['storage_providers']),
      };
    }
    const current =
      this.currentSpec(merged) ??
      (parseFederation({ ...merged, federation: { ...(merged.federation ?? {}), members: [] } } as Service, {
        clusterId: this.d.clusterId,
        knownClusters: this.d.resolver.known(merged),
      }) as FederationSpec);
    // Request members get the same defaults as written ones (type, priority, service_name),
    // so `cluster/service` written either way names the same member.
    const defaults = { clusterId: this.d.clusterId, serviceName: name, topology: current.topology };
    const changed =
      op === 'add'
        ? addMembers(current, list!, defaults)
        : op === 'update'
          ? updateMembers(current, list!, defaults)
          : removeMembers(current, list!, defaults);
    // A service that had no federation block gets the default topology for members (star).
    const topology = previous.federation ? changed.topology : undefined;
    // Validate the result as a whole (cycles, unknown clusters, duplicates).
    const candidate = {
      ...merged,
      federation: { ...(merged.federation ?? {}), ...changed, topology },
    } as Service;
    const spec = this.spec(candidate)!;
    await this.applySpec(principal, candidate, previous, spec, {
      deleteRemoved: op === 'remove' && req.delete === true,
    });
    return this.get(principal, name);
  }
}

/** A refresh token sent in clear in this request (not "***", not already sealed). */
const plainRefreshToken = (s: Service): string | undefined => {
  const t = s.environment?.secrets?.refresh_token;
  return t && t !== '***' && !t.startsWith('sealed:') ? t : undefined;
};

const setRefreshToken = (def: Service, value: string): void => {
  def.environment = {
    ...(def.environment ?? { variables: {} }),
    secrets: { ...(def.environment?.secrets ?? {}), refresh_token: value },
  } as Service['environment'];
};

const ref = (n: NodeRef): NodeRef => ({ cluster_id: n.cluster_id, service_name: n.service_name });

const upsertRow = (w: WorkerPlan, target: PeerTarget, group: string, revision: number): NewOutboxRow => ({
  peer: w.cluster_id,
  service: w.service_name,
  op: 'upsert',
  payload: w.definition as Record<string, unknown>,
  target,
  group,
  revision,
});

const deleteRow = (n: NodeRef, target: PeerTarget, group: string, revision: number): NewOutboxRow => ({
  peer: n.cluster_id,
  service: n.service_name,
  op: 'delete',
  payload: null,
  target,
  group,
  revision,
});

/** A removed member's service: no federation, no links, no worker mark. */
const detached = (plan: ExpansionPlan, n: NodeRef, revision: number): Service => {
  const base = structuredClone(plan.coordinator);
  const annotations = { ...(base.annotations ?? {}) };
  delete annotations[FEDERATION_WORKER];
  const out: Service = {
    ...base,
    name: n.service_name,
    cluster_id: n.cluster_id,
    annotations,
    federation: { group_id: plan.coordinator.federation?.group_id, topology: 'none', members: [], revision },
  } as Service;
  (out as Record<string, unknown>)[REPLICAS_FIELD] = [];
  delete (out as Record<string, unknown>).token;
  delete (out as Record<string, unknown>).owner;
  if (out.clusters) {
    out.clusters = Object.fromEntries(
      Object.entries(out.clusters).map(([k, v]) => [k, { endpoint: v.endpoint, ssl_verify: v.ssl_verify }]),
    ) as Service['clusters'];
  }
  if (out.environment?.secrets?.refresh_token) {
    const { refresh_token: _drop, ...rest } = out.environment.secrets;
    out.environment = { ...out.environment, secrets: rest };
  }
  return out;
};

/**
 * The `doneAt` the outbox worker records for a row it skipped because a later row for the
 * same (peer, service) carries newer full state: done, but never applied at the peer.
 */
export const SUPERSEDED_AT = new Date(0);

const appliedAtPeer = (r: OutboxRow): boolean =>
  r.state === 'done' && r.doneAt?.getTime() !== SUPERSEDED_AT.getTime();

/** Sync state of one member from its outbox rows (newest first). */
export const syncOf = (rows: OutboxRow[], specRevision: number): SyncState => {
  const pending = rows.filter((r) => r.state === 'pending');
  // The revision the member holds: the newest row applied there (a superseded row was not).
  const lastDone = rows.find(appliedAtPeer);
  const applied = lastDone?.revision ?? (rows.length === 0 ? specRevision : null);
  if (pending.length === 0)
    return { state: 'synced', revision: applied, last_error: null, pending_changes: 0 };
  const head = pending[pending.length - 1];
  const error = pending.find((r) => r.lastError)?.lastError ?? null;
  // A refusal (4xx) will not heal by itself; a network error will when the member is back.
  const refused = !!error && /failed \(4\d\d\)/.test(error);
  return {
    state: refused ? 'failed' : 'pending',
    revision: applied,
    last_error: error ?? (head.attempts ? 'retrying' : null),
    pending_changes: pending.length,
  };
};

const federationFailure = (plan: ExpansionPlan, members: MemberReport[]): string => {
  const bad = members.filter((m) => m.error);
  const names = bad.map((m) => `${m.cluster_id}/${m.service_name}: ${m.error}`).join('; ');
  return `atomic create of "${plan.coordinator.name}" failed; nothing was kept. ${names}`;
};
