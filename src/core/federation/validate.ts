// Validation of a service's `federation` block (DESIGN §4): defaults applied, and every
// refusal a FEDERATION_INVALID (400) whose message names the field or member at fault.
import { fail } from '../errors.ts';
import { type Federation, SERVICE_NAME_RE, type Service } from '../fdl/service.ts';
import { hasUserInfo } from './endpoint.ts';
import {
  DELEGATIONS,
  DEPLOYMENTS,
  type FederationSpec,
  MAX_TREE_DEPTH,
  type Member,
  type NodeRef,
  TOPOLOGIES,
  type Topology,
} from './model.ts';
import { isDeployed, memberKey, memberLabel, nodeOf, walkMembers } from './tree.ts';

export interface FederationContext {
  /** This manager's cluster id: the coordinator's. */
  clusterId: string;
  /** Cluster ids a member may name: the service's `clusters` keys plus peer records. */
  knownClusters: ReadonlySet<string>;
}

/** What member defaults depend on: who the coordinator is and which topology is in force. */
export interface MemberDefaults {
  clusterId: string;
  serviceName: string;
  topology: Topology;
}

export const DEFAULT_RESCHEDULER_THRESHOLD = 10;
const MAX_SERVICE_NAME = 39;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

const invalid = (where: string, message: string): never =>
  fail('FEDERATION_INVALID', `${where}: ${message}`, { fields: [where.split(' ')[0]] });

/** "federation.members[2] (cluster b/grayify-b)": the prefix of every member error. */
const memberWhere = (path: string, m: Partial<Member>): string => `${path} (${memberLabel(m)})`;

/** One of `allowed`, case-insensitively; `fallback` when absent. */
const pickOne = <T extends string>(raw: unknown, allowed: readonly T[], field: string, fallback: T): T => {
  if (raw === undefined || raw === null) return fallback;
  const value = typeof raw === 'string' ? raw.trim().toLowerCase() : raw;
  const found = allowed.find((a) => a === value);
  return (
    found ??
    invalid(`federation.${field}`, `unknown ${field} ${JSON.stringify(raw)}; allowed: ${allowed.join(', ')}`)
  );
};

const nonNegativeInt = (raw: unknown, where: string, fallback: number, unit = ''): number => {
  if (raw === undefined || raw === null) return fallback;
  if (typeof raw === 'number' && Number.isInteger(raw) && raw >= 0) return raw;
  return invalid(where, `must be a non-negative integer${unit}, got ${JSON.stringify(raw)}`);
};

const isHttpUrl = (raw: unknown): raw is string => {
  if (typeof raw !== 'string' || !URL.canParse(raw)) return false;
  const { protocol } = new URL(raw);
  return protocol === 'http:' || protocol === 'https:';
};

const checkServiceName = (name: unknown, where: string): string => {
  if (typeof name === 'string' && name.length <= MAX_SERVICE_NAME && SERVICE_NAME_RE.test(name)) return name;
  return invalid(where, `service_name must be a DNS label of 1 to ${MAX_SERVICE_NAME} characters`);
};

/** The optional Replica fields every member type may carry. */
const checkCommonFields = (raw: Obj, where: string): void => {
  if (raw.ssl_verify !== undefined && typeof raw.ssl_verify !== 'boolean') {
    invalid(where, 'ssl_verify must be true or false');
  }
  const headers = raw.headers;
  if (
    headers !== undefined &&
    !(isObj(headers) && Object.values(headers).every((v) => typeof v === 'string'))
  ) {
    invalid(where, 'headers must be a map of strings');
  }
};

/** cluster_id and service_name of an `oscar` member, with the service_name default applied. */
const oscarNode = (raw: Obj, where: string, defaults: MemberDefaults): NodeRef => {
  const cluster = raw.cluster_id;
  if (typeof cluster !== 'string' || cluster.trim() === '') return invalid(where, 'cluster_id is required');
  if (raw.service_name !== undefined) {
    return { cluster_id: cluster, service_name: checkServiceName(raw.service_name, where) };
  }
  // service_name defaults to the coordinator's name only on another cluster: the same
  // name on the coordinator's own cluster would be the coordinator itself.
  if (cluster === defaults.clusterId) {
    return invalid(where, "service_name is required for a member on the coordinator's own cluster");
  }
  return { cluster_id: cluster, service_name: defaults.serviceName };
};

/** One member with defaults applied (type oscar, priority 0); unknown fields are kept. */
const normalizeMember = (raw: unknown, path: string, depth: number, defaults: MemberDefaults): Member => {
  if (!isObj(raw)) return invalid(path, 'must be an object');
  const type = raw.type ?? 'oscar';
  if (type !== 'oscar' && type !== 'endpoint') {
    return invalid(
      memberWhere(path, { ...raw, type: 'oscar' }),
      `unknown member type ${JSON.stringify(type)}; allowed: oscar, endpoint`,
    );
  }
  const { members: nested, ...rest } = raw;
  const where = memberWhere(path, { ...rest, type } as Partial<Member>);
  const priority = nonNegativeInt(raw.priority, `${where}: priority`, 0);
  checkCommonFields(raw, where);
  const member: Member = { ...rest, type, priority };
  if (type === 'oscar') Object.assign(member, oscarNode(raw, where, defaults));
  else if (!isHttpUrl(raw.url)) invalid(where, 'an endpoint member needs an http(s) url');
  else if (hasUserInfo(raw.url)) {
    invalid(where, 'url must not carry a user name or password; send credentials in headers');
  }
  if (nested === undefined) return member;
  member.members = normalizeChildren(nested, member, path, depth, defaults);
  return member;
};

/** The `members` nested under a member: only in a tree, never under an endpoint, at most 8 deep. */
const normalizeChildren = (
  nested: unknown,
  parent: Member,
  path: string,
  depth: number,
  defaults: MemberDefaults,
): Member[] => {
  const where = memberWhere(path, parent);
  if (!Array.isArray(nested)) return invalid(where, 'members must be a list');
  if (nested.length === 0) return [];
  if (defaults.topology !== 'tree') {
    return invalid(
      where,
      `nested members are only allowed with topology tree (this is ${defaults.topology})`,
    );
  }
  if (parent.type === 'endpoint') return invalid(where, 'an endpoint member cannot have members');
  if (depth >= MAX_TREE_DEPTH) {
    return invalid(where, `the tree is deeper than ${MAX_TREE_DEPTH} levels (a cycle, or nest less)`);
  }
  return nested.map((m, i) => normalizeMember(m, `${path}.members[${i}]`, depth + 1, defaults));
};

/**
 * Shape and defaults of a member list (also of the members in a /system/federation
 * request): types, priorities, urls, service_name default, nesting and depth. Which
 * members may coexist is checkMembers' job.
 */
export const normalizeMembers = (
  raw: unknown,
  defaults: MemberDefaults,
  path = 'federation.members',
): Member[] => {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) return invalid(path, 'must be a list');
  return raw.map((m, i) => normalizeMember(m, `${path}[${i}]`, 1, defaults));
};

/**
 * Rules across the whole tree: no member twice (in a tree, a node reached twice is also
 * how a cycle shows), none that is the coordinator, none on a cluster nobody knows.
 */
export const checkMembers = (
  members: readonly Member[],
  serviceName: string,
  ctx: FederationContext,
): void => {
  const seen = new Map<string, string>();
  for (const { member, path } of walkMembers(members)) {
    const where = memberWhere(path, member);
    if (isDeployed(member)) {
      if (member.cluster_id === ctx.clusterId && member.service_name === serviceName) {
        invalid(where, 'a member cannot be the coordinator itself');
      }
      // The coordinator's own cluster is always known: a sibling service there is allowed.
      if (member.cluster_id !== ctx.clusterId && !ctx.knownClusters.has(member.cluster_id)) {
        invalid(
          where,
          `unknown cluster_id ${JSON.stringify(member.cluster_id)}; add it to the service's clusters map or peer with it`,
        );
      }
    }
    const first = seen.get(memberKey(member));
    if (first !== undefined) invalid(where, `duplicate member (already listed at ${first})`);
    seen.set(memberKey(member), path);
  }
};

const groupIdOf = (raw: unknown, fallback: string): string => {
  if (raw === undefined || raw === null) return fallback;
  if (typeof raw === 'string' && raw.trim() !== '') return raw;
  return invalid('federation.group_id', 'must be a non-empty string');
};

/**
 * The validated block with defaults, or undefined when the service has none. Topology
 * `none` with members is accepted (the members are kept and shown) but nothing is
 * deployed and nothing is delegated: see deployedMembers and expand.
 */
export const parseFederation = (service: Service, ctx: FederationContext): FederationSpec | undefined => {
  const raw: unknown = service.federation;
  if (raw === undefined || raw === null) return undefined;
  if (!isObj(raw)) return invalid('federation', 'must be an object');
  const rawMembers = raw.members ?? [];
  if (!Array.isArray(rawMembers)) return invalid('federation.members', 'must be a list');
  const topology = pickOne(raw.topology, TOPOLOGIES, 'topology', rawMembers.length > 0 ? 'star' : 'none');
  const members = normalizeMembers(rawMembers, {
    clusterId: ctx.clusterId,
    serviceName: service.name,
    topology,
  });
  checkMembers(members, service.name, ctx);
  return {
    group_id: groupIdOf(raw.group_id, service.name),
    topology,
    delegation: pickOne(raw.delegation, DELEGATIONS, 'delegation', 'static'),
    rescheduler_threshold: nonNegativeInt(
      raw.rescheduler_threshold,
      'federation.rescheduler_threshold',
      DEFAULT_RESCHEDULER_THRESHOLD,
      ' (seconds)',
    ),
    deployment: pickOne(raw.deployment, DEPLOYMENTS, 'deployment', 'atomic'),
    members,
    revision: nonNegativeInt(raw.revision, 'federation.revision', 0),
  };
};

/** The clusters a service's own FDL declares (the keys of its `clusters` map). */
export const knownClustersOf = (service: Service): Set<string> =>
  new Set(Object.keys(service.clusters ?? {}));

/** The members that get a service: every `oscar` member at any depth, in written order. */
export const deployedMembers = (spec: FederationSpec): NodeRef[] => {
  if (spec.topology === 'none') return [];
  const nodes: NodeRef[] = [];
  for (const { member } of walkMembers(spec.members)) if (isDeployed(member)) nodes.push(nodeOf(member));
  return nodes;
};

/** The service with its `federation` block replaced by the normalized spec (unknown keys kept). */
export const withFederation = (service: Service, spec: FederationSpec): Service => ({
  ...service,
  // Member is OSCAR's closed Replica shape; the stored block is a loose object.
  federation: {
    ...(isObj(service.federation) ? service.federation : {}),
    ...(structuredClone(spec) as Federation),
  },
});
