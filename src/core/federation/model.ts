// The federation model: what a `federation` block means once validated, and the shape of
// an expansion plan. Pure types; the functions live beside this file.
import type { Service } from '../fdl/service.ts';

export const TOPOLOGIES = ['none', 'star', 'mesh', 'tree'] as const;
export const DELEGATIONS = ['static', 'random', 'load-based', 'topsis'] as const;
export const DEPLOYMENTS = ['atomic', 'best-effort'] as const;
export const MAX_TREE_DEPTH = 8;

export type Topology = (typeof TOPOLOGIES)[number];
export type DelegationPolicy = (typeof DELEGATIONS)[number];
export type Deployment = (typeof DEPLOYMENTS)[number];

/** OSCAR's Replica shape: a delegation target. */
export interface Replica {
  type: 'oscar' | 'endpoint';
  cluster_id?: string;
  service_name?: string;
  url?: string;
  ssl_verify?: boolean;
  priority?: number;
  headers?: Record<string, string>;
}

/** A member as written in the block; `members` nests only under `tree`. */
export interface Member extends Replica {
  members?: Member[];
}

/** A validated federation block with defaults applied. */
export interface FederationSpec {
  group_id: string;
  topology: Topology;
  delegation: DelegationPolicy;
  rescheduler_threshold: number;
  deployment: Deployment;
  members: Member[];
  revision: number;
}

/** Annotations a worker carries (OSCAR's names). */
export const ORIGIN_CLUSTER = 'oscar.grycap/origin-cluster';
export const ORIGIN_SERVICE = 'oscar.grycap/origin-service';
export const FEDERATION_WORKER = 'oscar.grycap/federation-worker';

/** `<origin cluster>/<origin service>` of a federation worker, or undefined for any other service. */
export const workerOriginOf = (s: { annotations?: Record<string, string> }): string | undefined =>
  s.annotations?.[FEDERATION_WORKER] === 'true'
    ? `${s.annotations?.[ORIGIN_CLUSTER] ?? ''}/${s.annotations?.[ORIGIN_SERVICE] ?? ''}`
    : undefined;

/** A deployed node of the federation: the coordinator or an `oscar` member. */
export interface NodeRef {
  cluster_id: string;
  service_name: string;
}

export interface WorkerPlan extends NodeRef {
  /** The worker's full service definition, ready to POST/PUT on its cluster. */
  definition: Service;
}

export interface ExpansionPlan {
  /** The coordinator's definition with its own `replicas` filled in. */
  coordinator: Service;
  workers: WorkerPlan[];
}

export interface ExpandContext {
  /** The coordinator's cluster id. */
  clusterId: string;
  /** The coordinator's address for others (its entry in the workers' `clusters` map). */
  publicUrl: string;
  /**
   * A worker's service token: the one its coordinator generated for it and proves itself
   * with (random in production, deterministic in tests).
   */
  newToken: (node: NodeRef) => string;
}

/** Where a node's delegation targets are kept on a service (OSCAR's Replica list). */
export const REPLICAS_FIELD = 'replicas';

export const nodeKey = (n: NodeRef): string => `${n.cluster_id}/${n.service_name}`;
