// PUT and DELETE of a coordinator, and the change of its graph that member changes make too:
// the coordinator is stored with its change plan (create the new members, update the kept
// ones, delete or detach the removed ones) in one write, and the applier propagates it; the answer
// waits a little for it (settle) but not for a member that is down.
import { narrowsVisibility, type Principal } from '../../core/auth/principal.ts';
import type { Service } from '../../core/fdl/service.ts';
import { type ChangePlan, changePlan } from '../../core/federation/change-plan.ts';
import type { FederationSpec } from '../../core/federation/model.ts';
import { deployedMembers } from '../../core/federation/validate.ts';
import type { WorkerProof } from '../../core/federation/worker-guard.ts';
import type { NewOutboxRow } from '../../core/ports.ts';
import { type FederationCommon, isWorker } from './federation-common.ts';

export class FederatedChanges {
  constructor(private readonly f: FederationCommon) {}

  /** PUT /system/services: a coordinator's change reaches every worker; `proof`: a coordinator's change to its worker here. */
  async update(principal: Principal, raw: unknown, proof?: WorkerProof): Promise<void> {
    const { d } = this.f;
    const { service, previous } = await d.services.prepareUpdate(principal, raw, proof);
    const spec = this.f.spec(service);
    if (!spec) {
      await d.services.commitUpdate(principal, service, previous);
      return;
    }
    await this.apply(principal, service, previous, spec, { deleteRemoved: false });
  }

  /** DELETE /system/services/{name}: a coordinator takes its workers along unless cascade=false. */
  async delete(
    principal: Principal,
    name: string,
    opts: { cascade: boolean; proof?: WorkerProof },
  ): Promise<void> {
    const { d } = this.f;
    const service = await d.services.prepareDelete(principal, name, opts.proof);
    const spec = isWorker(service) ? undefined : this.f.currentSpec(service);
    let rows: NewOutboxRow[] = [];
    const cascade = spec && opts.cascade ? async () => (rows = await this.cascade(service, spec)) : undefined;
    await d.services.commitDelete(principal, service, opts, cascade);
    this.f.queued(rows);
    // The queued deletes carry their proofs; nothing else needs the tokens.
    if (spec) await d.workerTokens.forget(service.name);
    if (cascade) await d.applier.settle(d.settleMs ?? 5000);
  }

  /** A delete of every deployed member, each proving with its worker's token. */
  private async cascade(service: Service, spec: FederationSpec): Promise<NewOutboxRow[]> {
    const tokens = await this.f.d.workerTokens.known(service.name);
    return this.f.rows(
      changePlan({
        group: service.name,
        revision: (spec.revision ?? 0) + 1,
        desired: [],
        current: deployedMembers(spec),
        removed: 'delete',
        target: (n) => this.f.target(n.cluster_id, service, tokens, n),
      }),
    );
  }

  /**
   * Stores the coordinator with the new graph and queues the change for every node: new
   * and kept members get the full definition; removed ones lose their links, or their
   * service with deleteRemoved.
   */
  async apply(
    principal: Principal,
    service: Service,
    previous: Service,
    spec: FederationSpec,
    opts: { deleteRemoved: boolean },
  ): Promise<FederationSpec> {
    const { d } = this.f;
    const before = this.f.currentSpec(previous);
    const revision = Math.max(before?.revision ?? 0, previous.federation?.revision ?? 0) + 1;
    const next = { ...spec, revision };
    // Workers' tokens rotate with the coordinator's when its visibility narrows.
    const tokens = await d.workerTokens.assign(
      service.name,
      deployedMembers(next),
      narrowsVisibility(previous, service),
    );
    const expansion = this.f.expand(service, next, tokens);
    let plan: ChangePlan | undefined;
    let rows: NewOutboxRow[] = [];
    await d.services.commitUpdate(principal, expansion.coordinator, previous, async () => {
      // After the before-hooks: the owner's token they kept is what the workers get.
      await this.f.attachOwnerToken(service, expansion, { orStored: true });
      plan = changePlan({
        group: service.name,
        revision,
        desired: expansion.workers,
        current: before ? deployedMembers(before) : [],
        removed: opts.deleteRemoved ? 'delete' : { detachFrom: expansion.coordinator },
        // A removed member is reached as the previous definition knew it, when it did.
        target: (n, leaving) =>
          this.f.target(
            n.cluster_id,
            leaving && previous.clusters?.[n.cluster_id] ? previous : expansion.coordinator,
            tokens,
            n,
          ),
      });
      rows = this.f.rows(plan);
      return rows;
    });
    this.f.queued(rows);
    // A removed member keeps its tokens (re-adding it proves with them) unless it is deleted.
    const removed = plan?.changes.filter((c) => c.op === 'delete') ?? [];
    if (opts.deleteRemoved && removed.length) await d.workerTokens.forget(service.name, removed);
    await d.applier.settle(d.settleMs ?? 5000);
    return next;
  }
}
