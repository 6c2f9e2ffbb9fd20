// What the federation use cases share: their dependencies, how a service's federation block
// reads, the graph with the workers' tokens, how a member is reached, and a change plan's
// rows: stored with the coordinator's write and, when the answer needs their outcome,
// applied at once by the applier. No use case calls a peer itself.
import type { ClusterSnapshot } from '../../core/delegation/policy.ts';
import { fail } from '../../core/errors.ts';
import { attachOwnerToken } from '../../core/fdl/owner-token.ts';
import type { Service } from '../../core/fdl/service.ts';
import { type ChangePlan, outboxRows } from '../../core/federation/change-plan.ts';
import { expand } from '../../core/federation/expand.ts';
import {
  type ExpansionPlan,
  FEDERATION_WORKER,
  type FederationSpec,
  type NodeRef,
  nodeKey,
  ORIGIN_CLUSTER,
  ORIGIN_SERVICE,
} from '../../core/federation/model.ts';
import { parseFederation } from '../../core/federation/validate.ts';
import type { WorkerProof } from '../../core/federation/worker-guard.ts';
import type { PeerFailure } from '../../core/peer-failure.ts';
import type { NewOutboxRow, OutboxStore, PeerTarget, SettingsStore } from '../../core/ports.ts';
import type { ServiceUseCases } from '../services.ts';
import type { PeerResolver } from './peer-resolver.ts';
import type { WorkerTokens } from './worker-tokens.ts';

/** How one change applied at once went (the applier records the same on its row). */
export type ChangeOutcome = { ok: true } | { ok: false; error: unknown; failure: PeerFailure };

/** How a member answered the atomic create's check. */
export type PreflightOutcome =
  | { ok: true; present: boolean }
  | { ok: false; error: unknown; failure: PeerFailure };

/**
 * The applier (the outbox worker) as the use cases see it: it performs every remote change
 * they persist, in the background or — when an answer needs the outcome — at once.
 */
export interface ChangeApplier {
  /** Rows were added for these peers: apply them now rather than at the next poll. */
  nudge(peers: Iterable<string>): void;
  /** Waits a little for what is due to be applied. */
  settle(timeoutMs: number): Promise<void>;
  /** Until when rows about to be applied at once are kept from the background drain. */
  holdUntil(rows: number): Date;
  /** Applies persisted rows now and records each outcome on its row. */
  applyNow(
    rows: ReadonlyArray<NewOutboxRow & { id: number }>,
    opts: { via?: PeerTarget['auth']; onFailure: 'retry' | 'abandon' },
  ): Promise<ChangeOutcome[]>;
  /** The atomic create's check: reachable, accepting, and whether the name is held there. */
  preflight(
    checks: ReadonlyArray<{ target: PeerTarget; service: string }>,
    via?: PeerTarget['auth'],
  ): Promise<PreflightOutcome[]>;
}

export interface FederationDeps {
  store: Pick<OutboxStore, 'syncRowsOfGroup'> & SettingsStore;
  services: ServiceUseCases;
  resolver: PeerResolver;
  applier: ChangeApplier;
  /** The tokens this coordinator gave its workers: its proof that a worker is its own. */
  workerTokens: WorkerTokens;
  clusterId: string;
  /** The coordinator's address for its workers (read at use: known once listening). */
  publicUrl: () => string;
  /** How long a change request waits for propagation before answering. */
  settleMs?: number;
  /**
   * The owner's refresh token travels to workers (their credential for delegating onward in
   * OIDC mode), sealed inside outbox rows and opened right before it is sent: the sealed
   * value for this service's workers (app/credentials/refresh-tokens.ts).
   */
  ownerToken: { forWorkers(service: Service, opts: { orStored: boolean }): Promise<string | undefined> };
  /** What the status cache last saw of each cluster the service reaches (for the view only). */
  snapshots?: { forService(service: Service): Map<string, ClusterSnapshot> };
}

export const isWorker = (s: Service): boolean => s.annotations?.[FEDERATION_WORKER] === 'true';

/** A member's error text, shortened, never with credentials (PeerClient errors carry none). */
export const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e)).slice(0, 500);

export const ref = (n: NodeRef): NodeRef => ({ cluster_id: n.cluster_id, service_name: n.service_name });

export class FederationCommon {
  constructor(readonly d: FederationDeps) {}

  /** The federation block of a coordinator, validated; undefined for a worker or a plain service. */
  spec(service: Service): FederationSpec | undefined {
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

  /** The stored spec of a coordinator (no validation of clusters: it was valid when stored). */
  currentSpec(service: Service): FederationSpec | undefined {
    try {
      return this.spec(service);
    } catch {
      return undefined;
    }
  }

  /** The graph with each worker's token: the newest this coordinator gave it. */
  expand(service: Service, spec: FederationSpec, tokens: Map<string, string[]>): ExpansionPlan {
    return expand(service, spec, {
      clusterId: this.d.clusterId,
      publicUrl: this.d.publicUrl(),
      newToken: (node) => tokens.get(nodeKey(node))?.[0] ?? '',
    });
  }

  /**
   * How a member is reached, as kept in a row: the clusters map's endpoint with its Basic
   * credentials, or — when the map has none (OIDC mode) — the service owner, whose token is
   * minted at send time (a create's caller's own token is added only for the call: `via`),
   * with the proof that the node is this coordinator's worker when its tokens are known.
   */
  target(clusterId: string, service: Service, tokens: Map<string, string[]>, node: NodeRef): PeerTarget {
    const base = this.d.resolver.resolve(clusterId, service);
    const t: PeerTarget =
      base.auth.kind !== 'none' ? base : { ...base, auth: { kind: 'service-owner', service: service.name } };
    const worker: WorkerProof | undefined = this.d.workerTokens.proof(service.name, tokens, node);
    return worker ? { ...t, worker } : t;
  }

  /** The owner's token, sealed, in every worker's definition (none when there is none). */
  async attachOwnerToken(service: Service, expansion: ExpansionPlan, opts: { orStored: boolean }) {
    const sealed = await this.d.ownerToken.forWorkers(service, opts);
    if (sealed) for (const w of expansion.workers) attachOwnerToken(w.definition, sealed);
  }

  /**
   * The plan's rows, stored with the coordinator's own write (both or neither: a plan lost
   * between the two left the coordinator at a revision no member reached). `held`: kept from
   * the background drain while the caller applies them at once.
   */
  rows(plan: ChangePlan, opts: { held?: boolean } = {}): NewOutboxRow[] {
    return outboxRows(plan, opts.held ? this.d.applier.holdUntil(plan.changes.length) : undefined);
  }

  /** Rows just stored: the applier takes them up now rather than at its next poll. */
  queued(rows: readonly NewOutboxRow[]): void {
    if (rows.length > 0) this.d.applier.nudge(new Set(rows.map((r) => r.peer)));
  }

  /** Held rows just stored (`ids` in their order), applied now. */
  async applyStored(
    rows: readonly NewOutboxRow[],
    ids: readonly number[],
    opts: { via?: PeerTarget['auth']; onFailure: 'retry' | 'abandon' },
  ): Promise<ChangeOutcome[]> {
    if (rows.length === 0) return [];
    return this.d.applier.applyNow(
      rows.map((r, i) => ({ ...r, id: ids[i] })),
      opts,
    );
  }
}
