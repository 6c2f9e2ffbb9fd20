// Expansion (DESIGN §4): from a coordinator and its validated federation block, every
// node's delegation targets and the full definition of each worker to deploy. Pure: the
// caller supplies the coordinator's address and the token maker.
import { withoutOwnerToken } from '../fdl/owner-token.ts';
import type { Service } from '../fdl/service.ts';
import {
  type ExpandContext,
  type ExpansionPlan,
  FEDERATION_WORKER,
  type FederationSpec,
  type Member,
  type NodeRef,
  nodeKey,
  ORIGIN_CLUSTER,
  ORIGIN_SERVICE,
  REPLICAS_FIELD,
  type Replica,
} from './model.ts';
import { isDeployed, memberKey, nodeOf, walkMembers } from './tree.ts';
import { deployedMembers, withFederation } from './validate.ts';

/** A delegation target in OSCAR's Replica shape. */
const targetOf = (m: Member): Replica => {
  if (m.type === 'oscar') {
    return {
      type: 'oscar',
      cluster_id: m.cluster_id,
      service_name: m.service_name,
      priority: m.priority ?? 0,
    };
  }
  const target: Replica = { type: 'endpoint', url: m.url, priority: m.priority ?? 0 };
  if (m.ssl_verify !== undefined) target.ssl_verify = m.ssl_verify;
  if (m.headers !== undefined) target.headers = { ...m.headers };
  return target;
};

/** The coordinator as a target: it is no member, so it has no priority of its own (0). */
const hubTarget = (hub: NodeRef): Replica => ({ type: 'oscar', ...nodeOf(hub), priority: 0 });

/** Drops the node itself and repeats, keeping first occurrences (the parent stays first in a tree). */
const cleanTargets = (self: NodeRef, targets: readonly Replica[]): Replica[] => {
  const seen = new Set<string>([memberKey({ type: 'oscar', ...self })]);
  return targets.filter((t) => {
    const key = memberKey(t);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
};

type Graph = Map<string, Replica[]>;

const starGraph = (spec: FederationSpec, hub: NodeRef): Graph => {
  const graph: Graph = new Map([[nodeKey(hub), spec.members.map(targetOf)]]);
  for (const node of deployedMembers(spec)) graph.set(nodeKey(node), [hubTarget(hub)]);
  return graph;
};

// Endpoints are targets of every node and never sources: they run nothing of ours.
const meshGraph = (spec: FederationSpec, hub: NodeRef): Graph => {
  const everyone = [hubTarget(hub), ...spec.members.map(targetOf)];
  const graph: Graph = new Map();
  for (const node of [hub, ...deployedMembers(spec)]) graph.set(nodeKey(node), everyone);
  return graph;
};

// A node reaches its parent first (where its jobs came from), then its children.
const treeGraph = (spec: FederationSpec, hub: NodeRef): Graph => {
  const graph: Graph = new Map([[nodeKey(hub), spec.members.map(targetOf)]]);
  for (const { member, parent } of walkMembers(spec.members)) {
    if (!isDeployed(member)) continue;
    const up = parent ? targetOf(parent) : hubTarget(hub);
    graph.set(nodeKey(member), [up, ...(member.members ?? []).map(targetOf)]);
  }
  return graph;
};

/**
 * Every deployed node's delegation targets, keyed by nodeKey: the coordinator's and each
 * `oscar` member's. Empty for topology `none` (nothing is delegated).
 */
export const delegationGraph = (spec: FederationSpec, hub: NodeRef): Map<string, Replica[]> => {
  const build = { star: starGraph, mesh: meshGraph, tree: treeGraph, none: () => new Map() }[spec.topology];
  const graph: Graph = build(spec, hub);
  for (const node of [hub, ...deployedMembers(spec)]) {
    const key = nodeKey(node);
    if (graph.has(key)) graph.set(key, cleanTargets(node, graph.get(key)!));
  }
  return graph;
};

/** The federation block a worker carries: the group's settings, no members, and a view of them. */
const workerFederation = (
  block: Service['federation'],
  spec: FederationSpec,
  hub: NodeRef,
): Service['federation'] => {
  const { members: _written, coordinator: _c, view: _v, ...extra } = block ?? {};
  const { members, ...settings } = spec;
  return {
    ...structuredClone(extra),
    ...settings,
    members: [],
    coordinator: nodeOf(hub),
    // The coordinator's member list, so every node can show the same topology.
    view: structuredClone(members),
  };
};

// Both helpers below receive parts of a fresh clone of the coordinator, so they may reuse them.

/** The coordinator's `clusters` map without passwords, plus the coordinator's own entry. */
const workerClusters = (
  clusters: Service['clusters'],
  ctx: ExpandContext,
): NonNullable<Service['clusters']> => {
  const copy: NonNullable<Service['clusters']> = {};
  for (const [id, entry] of Object.entries(clusters ?? {})) {
    const { auth_user: _user, auth_password: _password, ...rest } = entry;
    copy[id] = rest;
  }
  copy[ctx.clusterId] ??= { endpoint: ctx.publicUrl };
  return copy;
};

/** The owner's refresh token stays with the coordinator; workers get credentials of their own. */
const workerEnvironment = (env: Service['environment']): Service['environment'] => {
  return { ...env, variables: env?.variables ?? {}, secrets: withoutOwnerToken(env?.secrets) };
};

const workerDefinition = (
  coordinator: Service,
  spec: FederationSpec,
  hub: NodeRef,
  node: NodeRef,
  targets: Replica[],
  ctx: ExpandContext,
): Service => {
  // owner is not sent: the receiving cluster sets it from the caller it authenticates.
  const { owner: _owner, token: _token, federation, ...rest } = coordinator;
  const base = structuredClone(rest);
  const worker: Omit<Service, 'owner'> = {
    ...base,
    name: node.service_name,
    cluster_id: node.cluster_id,
    federation: workerFederation(federation, spec, hub),
    [REPLICAS_FIELD]: targets,
    annotations: {
      ...(base.annotations ?? {}),
      [ORIGIN_CLUSTER]: ctx.clusterId,
      [ORIGIN_SERVICE]: coordinator.name,
      [FEDERATION_WORKER]: 'true',
    },
    clusters: workerClusters(base.clusters, ctx),
    environment: workerEnvironment(base.environment),
    token: ctx.newToken(node),
  };
  return worker as Service;
};

/**
 * The coordinator (its `federation` normalized, its `replicas` set) and one worker per
 * deployed member. With no members or topology `none`, no workers and no targets.
 * `endpoint` members are delegation targets only and never get a WorkerPlan.
 */
export const expand = (coordinator: Service, spec: FederationSpec, ctx: ExpandContext): ExpansionPlan => {
  const hub: NodeRef = { cluster_id: ctx.clusterId, service_name: coordinator.name };
  const normalized = withFederation(coordinator, spec);
  if (spec.members.length === 0 || spec.topology === 'none') {
    return { coordinator: { ...normalized, [REPLICAS_FIELD]: [] }, workers: [] };
  }
  const graph = delegationGraph(spec, hub);
  const workers = deployedMembers(spec).map((node) => ({
    ...node,
    definition: workerDefinition(coordinator, spec, hub, node, graph.get(nodeKey(node)) ?? [], ctx),
  }));
  return { coordinator: { ...normalized, [REPLICAS_FIELD]: graph.get(nodeKey(hub)) ?? [] }, workers };
};
