// Federated services, one concern per file: create across clusters (atomic or best-effort:
// federated-create.ts), updates and cascading deletes (federated-changes.ts), topology-wide
// member changes (federation-members-change.ts), the view with sync states
// (federation-view.ts). Core decides the graph (expand) and the change plan (change-plan);
// these persist the plan as outbox rows, and the applier (the outbox worker) performs every
// remote change.
import type { Principal } from '../../core/auth/principal.ts';
import type { MembersRequest } from '../../core/federation/members-request.ts';
import type { WorkerProof } from '../../core/federation/worker-guard.ts';
import type { PeerTarget } from '../../core/ports.ts';
import { FederatedChanges } from './federated-changes.ts';
import { type CreateReport, FederatedCreate } from './federated-create.ts';
import { FederationCommon, type FederationDeps } from './federation-common.ts';
import { FederationMembersChange } from './federation-members-change.ts';
import { FederationView } from './federation-view.ts';

export type { SyncState } from '../../core/federation/sync-state.ts';
export type { CreateReport, MemberReport, MemberStatus } from './federated-create.ts';
export type { ChangeApplier, FederationDeps } from './federation-common.ts';
export type { MembersRequest };

export class FederationUseCases {
  private readonly creates: FederatedCreate;
  private readonly changes: FederatedChanges;
  private readonly view: FederationView;
  private readonly members: FederationMembersChange;

  constructor(d: FederationDeps) {
    const common = new FederationCommon(d);
    this.creates = new FederatedCreate(common);
    this.changes = new FederatedChanges(common);
    this.view = new FederationView(common);
    this.members = new FederationMembersChange(common, this.changes, this.view);
  }

  /** POST /system/services. Returns a report for a federated create, undefined otherwise. */
  create(
    principal: Principal,
    raw: unknown,
    callerAuth?: PeerTarget['auth'],
    proof?: WorkerProof,
  ): Promise<CreateReport | undefined> {
    return this.creates.create(principal, raw, callerAuth, proof);
  }

  /** PUT /system/services. */
  update(principal: Principal, raw: unknown, proof?: WorkerProof): Promise<void> {
    return this.changes.update(principal, raw, proof);
  }

  /** DELETE /system/services/{name}. */
  delete(principal: Principal, name: string, opts: { cascade: boolean; proof?: WorkerProof }): Promise<void> {
    return this.changes.delete(principal, name, opts);
  }

  /** GET /system/federation/{name}. */
  get(principal: Principal, name: string) {
    return this.view.get(principal, name);
  }

  /** POST (add), PUT (update), DELETE (remove) of members on the coordinator. */
  changeMembers(principal: Principal, name: string, op: 'add' | 'update' | 'remove', req: MembersRequest) {
    return this.members.change(principal, name, op, req);
  }
}
