// Where to delegate a job: candidates and their order, from a status snapshot. Pure: the
// snapshot comes from a cache refreshed in the background, randomness from a parameter.
import type { DelegationPolicy, Replica } from '../federation/model.ts';

/** What the cache knows of one cluster, from its /system/status. */
export interface ClusterSnapshot {
  clusterId: string;
  online: boolean;
  /** Free millicores and bytes per node. */
  nodes: Array<{ freeCpuMillis: number; freeMemoryBytes: number }>;
  totalFreeCpuMillis: number;
}

export interface JobDemand {
  cpuMillis: number;
  memoryBytes: number;
}

export interface Candidate {
  replica: Replica;
  /** Index in the node's replica list (static ties break by it). */
  index: number;
  snapshot: ClusterSnapshot | undefined;
}

/** Does some node of the cluster have room for the job now? */
export const fitsOn = (s: ClusterSnapshot, job: JobDemand): boolean =>
  s.nodes.some((n) => n.freeCpuMillis >= job.cpuMillis && n.freeMemoryBytes >= job.memoryBytes);

/**
 * Replicas a job may go to: `oscar` replicas whose cluster is online and fits the job (and
 * whose grant allows delegation, when `allowed` says no it is dropped); `endpoint` replicas
 * have no status and are always candidates (they come last for load-based).
 */
export const candidates = (
  replicas: readonly Replica[],
  snapshots: ReadonlyMap<string, ClusterSnapshot>,
  job: JobDemand,
  allowed: (r: Replica) => boolean = () => true,
): Candidate[] => {
  const out: Candidate[] = [];
  replicas.forEach((replica, index) => {
    if (!allowed(replica)) return;
    if (replica.type === 'endpoint') {
      if (replica.url) out.push({ replica, index, snapshot: undefined });
      return;
    }
    const snapshot = replica.cluster_id ? snapshots.get(replica.cluster_id) : undefined;
    if (!snapshot?.online || !fitsOn(snapshot, job)) return;
    out.push({ replica, index, snapshot });
  });
  return out;
};

/** Orders candidates by the policy: the first is tried first, the next on failure. */
export const rank = (
  policy: DelegationPolicy,
  list: readonly Candidate[],
  random: () => number,
): Candidate[] => {
  const copy = [...list];
  if (policy === 'static') {
    return copy.sort((a, b) => (a.replica.priority ?? 0) - (b.replica.priority ?? 0) || a.index - b.index);
  }
  if (policy === 'random') {
    // Fisher–Yates: uniform over the candidates.
    for (let i = copy.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [copy[i], copy[j]] = [copy[j], copy[i]];
    }
    return copy;
  }
  // load-based: most total free CPU first (OSCAR's plan: CPU only, with the per-node fit).
  const free = (c: Candidate) => c.snapshot?.totalFreeCpuMillis ?? Number.NEGATIVE_INFINITY;
  return copy.sort((a, b) => free(b) - free(a) || a.index - b.index);
};

/**
 * The cache's view after sending a job to `clusterId`: the node it most likely landed on
 * (the one with most free cpu that fits) and the cluster total lose the job's request, so
 * the next decision does not pile onto the same cluster before the next poll.
 */
export const reserveOnSnapshot = (s: ClusterSnapshot, job: JobDemand): ClusterSnapshot => {
  const nodes = s.nodes.map((n) => ({ ...n }));
  let best = -1;
  nodes.forEach((n, i) => {
    if (n.freeCpuMillis >= job.cpuMillis && n.freeMemoryBytes >= job.memoryBytes) {
      if (best < 0 || n.freeCpuMillis > nodes[best].freeCpuMillis) best = i;
    }
  });
  if (best >= 0) {
    nodes[best].freeCpuMillis -= job.cpuMillis;
    nodes[best].freeMemoryBytes -= job.memoryBytes;
  }
  return { ...s, nodes, totalFreeCpuMillis: s.totalFreeCpuMillis - job.cpuMillis };
};

/** A snapshot from OSCAR's /system/status answer (cpu in millicores, memory in bytes). */
export const snapshotFromStatus = (clusterId: string, status: unknown): ClusterSnapshot => {
  const st = status as {
    cluster?: {
      metrics?: { cpu?: { total_free_cores?: number } };
      nodes?: Array<{
        cpu?: { capacity_cores?: number; request_cores?: number };
        memory?: { capacity_bytes?: number; request_bytes?: number };
        status?: string;
      }>;
    };
  };
  const nodes = (st.cluster?.nodes ?? [])
    .filter((n) => !n.status || n.status === 'Ready')
    .map((n) => ({
      freeCpuMillis: Math.max(0, (n.cpu?.capacity_cores ?? 0) - (n.cpu?.request_cores ?? 0)),
      freeMemoryBytes: Math.max(0, (n.memory?.capacity_bytes ?? 0) - (n.memory?.request_bytes ?? 0)),
    }));
  const total = st.cluster?.metrics?.cpu?.total_free_cores ?? nodes.reduce((a, n) => a + n.freeCpuMillis, 0);
  return { clusterId, online: true, nodes, totalFreeCpuMillis: total };
};

/** A seedable PRNG (mulberry32) for the random policy in tests and simulations. */
export const seededRandom = (seed: number): (() => number) => {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
};
