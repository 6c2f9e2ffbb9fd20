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
  // What topsis also weighs (absent in snapshots made before it was added).
  /** Free bytes over all nodes. */
  totalFreeMemoryBytes?: number;
  /** Round trip of the poll that produced the snapshot, in ms. */
  latencyMs?: number;
  /** Jobs waiting there (`oscar.pods.states.Pending`). */
  pendingJobs?: number;
  /** Mean run time of recent jobs there (Flotilla's `oscar.mean_run_seconds`); unknown for OSCAR. */
  meanRunSeconds?: number;
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
  if (policy === 'topsis') return rankTopsis(copy, random);
  // load-based: most total free CPU first (OSCAR's plan: CPU only, with the per-node fit).
  const free = (c: Candidate) => c.snapshot?.totalFreeCpuMillis ?? Number.NEGATIVE_INFINITY;
  return copy.sort((a, b) => free(b) - free(a) || a.index - b.index);
};

// ------------------------------------------------------------------ topsis

/**
 * OSCAR v4.1's multi-criteria policy (pkg/resourcemanager/delegate.go), one row per cluster:
 * latency, nodes, free memory, free cpu, mean run time, pending jobs + 0.1. Latency, run time
 * and pending jobs are costs (lower is better), the rest benefits. OSCAR's weights.
 */
export const TOPSIS_WEIGHTS = [1, 8, 18, 65, 2, 6] as const;
const TOPSIS_COST = [true, false, false, false, true, true] as const;
/** OSCAR's value for a run time it has no succeeded job to measure by. */
export const TOPSIS_UNKNOWN_RUN_SECONDS = 1e6;
/** Candidates this close to the best (within 20 % of its closeness) are shuffled among themselves. */
export const TOPSIS_NEAR_BEST = 0.2;

/** The criteria row of a cluster, as OSCAR builds it (the cache stands for OSCAR's calls). */
export const topsisCriteria = (s: ClusterSnapshot): number[] => [
  (s.latencyMs ?? 0) / 1000,
  s.nodes.length,
  s.totalFreeMemoryBytes ?? s.nodes.reduce((a, n) => a + n.freeMemoryBytes, 0),
  s.totalFreeCpuMillis,
  s.meanRunSeconds ?? TOPSIS_UNKNOWN_RUN_SECONDS,
  (s.pendingJobs ?? 0) + 0.1,
];

/**
 * Closeness to the ideal cluster (0 worst … 1 best) of each row: columns normalised by
 * their Euclidean norm, weighted, then d⁻ / (d⁺ + d⁻). A column of zeros counts for nothing;
 * rows that are all alike are all 1 (OSCAR would divide by zero).
 */
export const topsisCloseness = (rows: readonly number[][]): number[] => {
  const n = rows.length;
  const cols = TOPSIS_WEIGHTS.length;
  if (n === 0) return [];
  // Column by column: weight ÷ Euclidean norm, computed scaled by the largest value so
  // neither bytes nor OSCAR's 1e6 s overflow and tiny values do not underflow.
  const v = new Float64Array(n * cols);
  const ideal = new Float64Array(cols);
  const anti = new Float64Array(cols);
  for (let j = 0; j < cols; j++) {
    let max = 0;
    for (let i = 0; i < n; i++) max = Math.max(max, Math.abs(rows[i][j]));
    let sum = 0;
    for (let i = 0; i < n; i++) sum += (rows[i][j] / (max || 1)) ** 2;
    const norm = max * Math.sqrt(sum);
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < n; i++) {
      const x = norm > 0 ? (rows[i][j] / norm) * TOPSIS_WEIGHTS[j] : 0;
      v[i * cols + j] = x;
      lo = Math.min(lo, x);
      hi = Math.max(hi, x);
    }
    ideal[j] = TOPSIS_COST[j] ? lo : hi;
    anti[j] = TOPSIS_COST[j] ? hi : lo;
  }
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    let toIdeal = 0;
    let toAnti = 0;
    for (let j = 0; j < cols; j++) {
      const x = v[i * cols + j];
      toIdeal += (x - ideal[j]) ** 2;
      toAnti += (x - anti[j]) ** 2;
    }
    // Weighted values are at most the weight (≤ 65): squares cannot overflow here.
    const dPlus = Math.sqrt(toIdeal);
    const dMinus = Math.sqrt(toAnti);
    out[i] = dPlus + dMinus > 0 ? dMinus / (dPlus + dMinus) : 1;
  }
  return out;
};

/**
 * Clusters by closeness, best first; those within 20 % of the best are shuffled among the
 * places they hold, as OSCAR does, so near-equal clusters share the load. Endpoints (no
 * status to weigh) come last, in list order.
 */
const rankTopsis = (list: Candidate[], random: () => number): Candidate[] => {
  const weighed = list.filter((c) => c.snapshot);
  const rest = list.filter((c) => !c.snapshot).sort((a, b) => a.index - b.index);
  const closeness = topsisCloseness(weighed.map((c) => topsisCriteria(c.snapshot!)));
  const order = weighed
    .map((c, i) => ({ c, p: closeness[i] }))
    .sort((a, b) => b.p - a.p || a.c.index - b.c.index);
  if (order.length > 1) {
    const best = order[0].p;
    const near = order.map((o, i) => (best - o.p < best * TOPSIS_NEAR_BEST ? i : -1)).filter((i) => i >= 0);
    const shuffled = near.map((i) => order[i]);
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
    }
    near.forEach((place, k) => {
      order[place] = shuffled[k];
    });
  }
  return [...order.map((o) => o.c), ...rest];
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
  return {
    ...s,
    nodes,
    totalFreeCpuMillis: s.totalFreeCpuMillis - job.cpuMillis,
    // The job waits there until the next poll says otherwise.
    ...(s.totalFreeMemoryBytes !== undefined
      ? { totalFreeMemoryBytes: s.totalFreeMemoryBytes - job.memoryBytes }
      : {}),
    ...(s.pendingJobs !== undefined ? { pendingJobs: s.pendingJobs + 1 } : {}),
  };
};

/**
 * A snapshot from OSCAR's /system/status answer (cpu in millicores, memory in bytes);
 * `latencyMs` is the round trip of the poll that fetched it.
 */
export const snapshotFromStatus = (
  clusterId: string,
  status: unknown,
  latencyMs?: number,
): ClusterSnapshot => {
  const st = status as {
    cluster?: {
      metrics?: { cpu?: { total_free_cores?: number }; memory?: { total_free_bytes?: number } };
      nodes?: Array<{
        cpu?: { capacity_cores?: number; request_cores?: number };
        memory?: { capacity_bytes?: number; request_bytes?: number };
        status?: string;
      }>;
    };
    oscar?: { pods?: { states?: { Pending?: number } }; mean_run_seconds?: number };
  };
  const nodes = (st?.cluster?.nodes ?? [])
    .filter((n) => !n.status || n.status === 'Ready')
    .map((n) => ({
      freeCpuMillis: Math.max(0, (n.cpu?.capacity_cores ?? 0) - (n.cpu?.request_cores ?? 0)),
      freeMemoryBytes: Math.max(0, (n.memory?.capacity_bytes ?? 0) - (n.memory?.request_bytes ?? 0)),
    }));
  const total = st?.cluster?.metrics?.cpu?.total_free_cores ?? nodes.reduce((a, n) => a + n.freeCpuMillis, 0);
  const number = (v: unknown): number | undefined =>
    typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined;
  const memory =
    number(st?.cluster?.metrics?.memory?.total_free_bytes) ??
    nodes.reduce((a, n) => a + n.freeMemoryBytes, 0);
  const meanRun = number(st?.oscar?.mean_run_seconds);
  return {
    clusterId,
    online: true,
    nodes,
    totalFreeCpuMillis: total,
    totalFreeMemoryBytes: memory,
    pendingJobs: number(st?.oscar?.pods?.states?.Pending) ?? 0,
    ...(meanRun !== undefined ? { meanRunSeconds: meanRun } : {}),
    ...(latencyMs !== undefined ? { latencyMs } : {}),
  };
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
