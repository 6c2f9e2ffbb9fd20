// PUT and DELETE of a coordinator, and the change of its graph that member changes make too:
// the coordinator is stored, the change plan (create the new members, update the kept ones,
// delete or detach the removed ones) is persisted, and the applier propagates it; the answer
// waits a little for it (settle) but not for a member that is down.
import { narrowsVisibility, type Principal } from '../../core/auth/principal.ts';
import type { Service } from '../../core/fdl/service.ts';
import { changePlan } from '../../core/federation/change-plan.ts';
import type { FederationSpec } from '../../core/federation/model.ts';
import { deployedMembers } from '../../core/federation/validate.ts';
import type { WorkerProof } from '../../core/federation/worker-guard.ts';
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
    if (spec && opts.cascade) {
      const tokens = await d.workerTokens.known(service.name);
      await this.f.persist(
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
    await d.services.commitDelete(principal, service, opts);
    // The queued deletes carry their proofs; nothing else needs the tokens.
    if (spec) await d.workerTokens.forget(service.name);
    if (spec && opts.cascade) await d.applier.settle(d.settleMs ?? 5000);
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
    await d.services.commitUpdate(principal, expansion.coordinator, previous);
    await this.f.attachOwnerToken(service, expansion, { orStored: true });
    const plan = changePlan({
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
    await this.f.persist(plan);
    // A removed member keeps its tokens (re-adding it proves with them) unless it is deleted.
    const removed = plan.changes.filter((c) => c.op === 'delete');
    if (opts.deleteRemoved && removed.length) await d.workerTokens.forget(service.name, removed);
    await d.applier.settle(d.settleMs ?? 5000);
    return next;
  }
}
