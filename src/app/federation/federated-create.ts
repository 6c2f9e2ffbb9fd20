// POST /system/services for a coordinator: the plan (a create per member) is stored with the
// coordinator and applied at once, and the answer reports each member's outcome. Atomic:
// every member is checked first (nothing is stored when one fails the check); then the
// coordinator is stored with the plan and the plan applied; when any create fails, the
// coordinator is deleted with compensating deletes for every member whose create may have
// happened, which are applied at once, and the answer is 502 with the report — a compensating
// delete that fails stays queued. Best-effort: the creates that fail stay queued and are
// retried until the member has its worker.
import type { Principal } from '../../core/auth/principal.ts';
import { FlotillaError, isFlotillaError } from '../../core/errors.ts';
import { type ChangePlan, changePlan, compensation } from '../../core/federation/change-plan.ts';
import {
  type ExpansionPlan,
  type FederationSpec,
  type NodeRef,
  nodeKey,
} from '../../core/federation/model.ts';
import { deployedMembers } from '../../core/federation/validate.ts';
import type { WorkerProof } from '../../core/federation/worker-guard.ts';
import type { PeerTarget } from '../../core/ports.ts';
import { type ChangeOutcome, errorText, type FederationCommon, ref } from './federation-common.ts';

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

/** The member holds the name with a service that is not this federation's worker. */
const holdsName = (o: ChangeOutcome): boolean =>
  !o.ok && isFlotillaError(o.error) && o.error.code === 'SERVICE_EXISTS';

export class FederatedCreate {
  constructor(private readonly f: FederationCommon) {}

  /** Returns a report for a federated create, undefined otherwise. */
  async create(
    principal: Principal,
    raw: unknown,
    callerAuth?: PeerTarget['auth'],
    proof?: WorkerProof,
  ): Promise<CreateReport | undefined> {
    const { d } = this.f;
    const service = await d.services.prepareCreate(principal, raw, proof);
    const spec = this.f.spec(service);
    if (!spec || deployedMembers(spec).length === 0) {
      const plain = spec ? this.f.expand(service, { ...spec, revision: 1 }, new Map()).coordinator : service;
      await d.services.commitCreate(principal, plain, { proof });
      return undefined;
    }
    // Fresh tokens for the workers, kept before any call: every later change proves with them.
    await d.workerTokens.forget(service.name);
    const tokens = await d.workerTokens.assign(service.name, deployedMembers(spec), false);
    const expansion = this.f.expand(service, { ...spec, revision: 1 }, tokens);
    // A definition kept in the outbox carries the owner's token sealed, never in clear.
    await this.f.attachOwnerToken(service, expansion, { orStored: false });
    const plan = changePlan({
      group: service.name,
      revision: 1,
      desired: expansion.workers,
      current: [],
      removed: 'delete',
      target: (n) => this.f.target(n.cluster_id, service, tokens, n),
    });
    return spec.deployment === 'atomic'
      ? this.atomic(principal, expansion, spec, plan, callerAuth)
      : this.bestEffort(principal, expansion, spec, plan, callerAuth);
  }

  private report(
    expansion: ExpansionPlan,
    spec: FederationSpec,
    outcome: CreateReport['outcome'],
    members: MemberReport[],
  ): CreateReport {
    return {
      service: expansion.coordinator.name,
      topology: spec.topology,
      deployment: spec.deployment,
      revision: 1,
      outcome,
      members,
    };
  }

  private async atomic(
    principal: Principal,
    expansion: ExpansionPlan,
    spec: FederationSpec,
    plan: ChangePlan,
    via: PeerTarget['auth'] | undefined,
  ): Promise<CreateReport> {
    const { d } = this.f;
    const name = expansion.coordinator.name;
    // 1. Every member is reachable, accepts the caller, and does not hold the name yet (one
    // read each answers all three: 401/403 or a network error, else 404 or the service).
    const checks = await d.applier.preflight(
      plan.changes.map((c) => ({ target: c.target, service: c.service_name })),
      via,
    );
    if (checks.some((c) => !c.ok || c.present)) {
      await d.workerTokens.forget(name);
      const members = plan.changes.map((c, i): MemberReport => {
        const check = checks[i];
        if (check.ok && !check.present) return { ...ref(c), status: 'not-created' };
        const error = check.ok
          ? `cluster ${c.cluster_id} already has a service "${c.service_name}"`
          : errorText(check.error);
        return { ...ref(c), status: check.ok ? 'exists' : 'unreachable', error };
      });
      throw new FlotillaError('FEDERATION_FAILED', federationFailure(name, members), {
        report: this.report(expansion, spec, 'rolled-back', members),
      });
    }

    // 2. The coordinator with its plan, then the plan applied at once: a create that fails is
    // not retried.
    const rows = this.f.rows(plan, { held: true });
    const ids = await d.services.commitCreate(principal, expansion.coordinator, { queue: async () => rows });
    const creates = await this.f.applyStored(rows, ids, { via, onFailure: 'abandon' });
    if (creates.every((c) => c.ok)) {
      return this.report(
        expansion,
        spec,
        'created',
        plan.changes.map((c) => ({ ...ref(c), status: 'created' })),
      );
    }

    // 3. Undo: the coordinator deleted with a delete for every member whose create may have
    // happened (404 tolerated), applied at once; one that fails stays queued, so no orphan
    // outlives the member's return.
    const mayExist = plan.changes.filter((_, i) => !holdsName(creates[i]));
    const undo = compensation(plan, mayExist);
    const undoRows = this.f.rows(undo, { held: true });
    const undoIds = await d.services.commitDelete(
      principal,
      expansion.coordinator,
      { cascade: false },
      async () => undoRows,
    );
    const deletes = await this.f.applyStored(undoRows, undoIds, { via, onFailure: 'retry' });
    const queued = new Set(undo.changes.filter((_, i) => !deletes[i].ok).map((c) => nodeKey(c)));
    // The queued deletes carry their proofs.
    await d.workerTokens.forget(name);
    const members = plan.changes.map((c, i): MemberReport => {
      const o = creates[i];
      // A create in doubt (e.g. the connection dropped after the member stored it) whose
      // delete could not reach the member is still pending removal: say so.
      const status: MemberStatus = queued.has(nodeKey(c))
        ? 'rollback-queued'
        : o.ok
          ? 'rolled-back'
          : 'failed';
      return { ...ref(c), status, ...(o.ok ? {} : { error: errorText(o.error) }) };
    });
    throw new FlotillaError('FEDERATION_FAILED', federationFailure(name, members), {
      report: this.report(expansion, spec, 'rolled-back', members),
    });
  }

  private async bestEffort(
    principal: Principal,
    expansion: ExpansionPlan,
    spec: FederationSpec,
    plan: ChangePlan,
    via: PeerTarget['auth'] | undefined,
  ): Promise<CreateReport> {
    // Every create that fails stays queued, one refused because the member holds the name
    // too: the member refuses to let a federation overwrite a service that is not its
    // worker (409, shown as its sync state), and the worker is created once the name is free.
    const rows = this.f.rows(plan, { held: true });
    const ids = await this.f.d.services.commitCreate(principal, expansion.coordinator, {
      queue: async () => rows,
    });
    const creates = await this.f.applyStored(rows, ids, { via, onFailure: 'retry' });
    const members = plan.changes.map((c, i): MemberReport => {
      const o = creates[i];
      return o.ok
        ? { ...ref(c), status: 'created' }
        : { ...ref(c), status: holdsName(o) ? 'exists' : 'queued', error: errorText(o.error) };
    });
    return this.report(expansion, spec, creates.every((c) => c.ok) ? 'created' : 'partial', members);
  }
}

const federationFailure = (name: string, members: MemberReport[]): string => {
  const bad = members.filter((m) => m.error);
  const names = bad.map((m) => `${m.cluster_id}/${m.service_name}: ${m.error}`).join('; ');
  return `atomic create of "${name}" failed; nothing was kept. ${names}`;
};
