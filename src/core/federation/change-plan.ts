// The change plan of a federation (Karmada's way: compute, persist, apply): from the workers
// the spec wants (expand's output) and the members deployed now, what each member must
// undergo — create, update or delete — at which revision, reached how, with which
// definition. Pure: the use cases persist the plan as outbox rows in one transaction, and the
// applier (src/worker/outbox-worker.ts) performs every change it lists.
import { stripOwnerToken } from '../fdl/owner-token.ts';
import type { Service } from '../fdl/service.ts';
import type { NewOutboxRow, OutboxOp, PeerTarget } from '../ports.ts';
import { diffNodes } from './members.ts';
import { FEDERATION_WORKER, type NodeRef, nodeKey, REPLICAS_FIELD, type WorkerPlan } from './model.ts';

export type ChangeOp = OutboxOp;

export interface PlannedChange extends NodeRef {
  op: ChangeOp;
  revision: number;
  /** How to reach the member, as it is kept: never a short-lived token. */
  target: PeerTarget;
  /** The member's full definition for a create or an update; null for a delete. */
  definition: Service | null;
}

export interface ChangePlan {
  /** The coordinator whose federation this is (the rows' group). */
  group: string;
  revision: number;
  changes: PlannedChange[];
}

export interface PlanInput {
  group: string;
  revision: number;
  /** The workers as the spec wants them, in expand's order; none when the federation goes away. */
  desired: readonly WorkerPlan[];
  /** The members deployed now (none for a new federation). */
  current: readonly NodeRef[];
  /**
   * What becomes of a member no longer desired: its service deleted, or kept and detached
   * from the coordinator (no federation, no links, no worker mark).
   */
  removed: 'delete' | { detachFrom: Service };
  /** How to reach a node; `leaving`: it is no longer desired. */
  target: (node: NodeRef, leaving: boolean) => PeerTarget;
}

/** Desired members are created (new) or updated (kept); the others are deleted or detached. */
export const changePlan = (p: PlanInput): ChangePlan => {
  const diff = diffNodes(p.current, p.desired);
  const isNew = new Set(diff.added.map(nodeKey));
  const changes: PlannedChange[] = p.desired.map((w) => ({
    cluster_id: w.cluster_id,
    service_name: w.service_name,
    op: isNew.has(nodeKey(w)) ? 'create' : 'update',
    revision: p.revision,
    target: p.target(w, false),
    definition: w.definition,
  }));
  for (const gone of diff.removed) {
    const node = { cluster_id: gone.cluster_id, service_name: gone.service_name };
    const target = p.target(node, true);
    changes.push(
      p.removed === 'delete'
        ? { ...node, op: 'delete', revision: p.revision, target, definition: null }
        : {
            ...node,
            op: 'update',
            revision: p.revision,
            target,
            definition: detached(p.removed.detachFrom, node, p.revision),
          },
    );
  }
  return { group: p.group, revision: p.revision, changes };
};

/**
 * Undoes the creates of a plan that failed as a whole (an atomic create): a delete for every
 * member whose create may have happened, at the plan's revision, reached as the create was.
 */
export const compensation = (plan: ChangePlan, mayExist: readonly PlannedChange[]): ChangePlan => ({
  group: plan.group,
  revision: plan.revision,
  changes: mayExist.map((c) => ({ ...c, op: 'delete', definition: null })),
});

/** The plan's changes as outbox rows; `notBefore`: held while the caller applies them itself. */
export const outboxRows = (plan: ChangePlan, notBefore?: Date): NewOutboxRow[] =>
  plan.changes.map((c) => ({
    peer: c.cluster_id,
    service: c.service_name,
    op: c.op,
    payload: c.definition as Record<string, unknown> | null,
    target: c.target,
    group: plan.group,
    revision: c.revision,
    ...(notBefore ? { notBefore } : {}),
  }));

/** A removed member's service: no federation, no links, no worker mark, no owner's token. */
export const detached = (coordinator: Service, n: NodeRef, revision: number): Service => {
  const base = structuredClone(coordinator);
  const annotations = { ...(base.annotations ?? {}) };
  delete annotations[FEDERATION_WORKER];
  const out: Service = {
    ...base,
    name: n.service_name,
    cluster_id: n.cluster_id,
    annotations,
    federation: { group_id: coordinator.federation?.group_id, topology: 'none', members: [], revision },
  } as Service;
  (out as Record<string, unknown>)[REPLICAS_FIELD] = [];
  delete (out as Record<string, unknown>).token;
  delete (out as Record<string, unknown>).owner;
  if (out.clusters) {
    out.clusters = Object.fromEntries(
      Object.entries(out.clusters).map(([k, v]) => [k, { endpoint: v.endpoint, ssl_verify: v.ssl_verify }]),
    ) as Service['clusters'];
  }
  stripOwnerToken(out);
  return out;
};
