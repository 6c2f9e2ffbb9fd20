// Scheduling simulation on the pure delegation code (src/core/delegation/policy.ts): 16
// clusters of mixed capacity (1–4 nodes each), a seeded stream of jobs of mixed size and
// duration arriving in a burst, event-driven time. Every job is placed by the policy from a
// snapshot — candidates(), rank(), reserveOnSnapshot() on the choice, the node's cpu and
// memory given back when the job ends; a job that fits nowhere waits (FIFO, later jobs that
// fit may pass it). Makespan of static, random, load-based and topsis against the lower bound
// max(total work / total capacity, latest arrival + duration). Two views of the clusters:
// exact (every release seen at once) and as the status cache sees them (a poll every 2 s:
// releases show up at the next poll, reservations at once). For topsis each cluster also has
// a fixed poll round trip (seeded, 2–80 ms) and reports the mean duration of the jobs it ran.
//   node bin/run-ts.mjs bench/scheduling-sim.bench.ts
// Goal: load-based within 1.15× of the bound.
import {
  type ClusterSnapshot,
  candidates,
  type JobDemand,
  rank,
  reserveOnSnapshot,
  seededRandom,
} from '../src/core/delegation/policy.ts';
import type { DelegationPolicy, Replica } from '../src/core/federation/model.ts';
import { fmt, row } from './lib.ts';

const CLUSTERS = 16;
/** A short burst (the drain at the end weighs a lot) and a long backlog (it weighs little). */
const WORKLOADS = (process.env.SIM_JOBS ?? '3000,12000').split(',').map(Number);
const SEEDS = (process.env.SIM_SEEDS ?? '1,2,3,4,5').split(',').map(Number);
const POLICIES: DelegationPolicy[] = ['static', 'random', 'load-based', 'topsis'];
const GiB = 1024 ** 3;

interface Node {
  cpu: number;
  mem: number;
}
interface Cluster {
  id: string;
  nodes: Node[];
  /** The round trip of a status poll, ms (topsis's latency). */
  latencyMs: number;
}
interface Job extends JobDemand {
  id: number;
  arrival: number;
  duration: number;
}

// ------------------------------------------------------------------ the world (seeded)

const world = (seed: number, count: number) => {
  const rnd = seededRandom(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)];
  // Its own generator, so the clusters and jobs are those of the runs before topsis.
  const latency = seededRandom(seed + 1000);
  const clusters: Cluster[] = Array.from({ length: CLUSTERS }, (_, i) => ({
    id: `c${i}`,
    nodes: Array.from({ length: 1 + Math.floor(rnd() * 4) }, () => ({
      cpu: pick([2000, 4000, 4000, 8000, 8000, 16000]),
      mem: pick([8, 16, 32, 64]) * GiB,
    })),
    latencyMs: Math.round(2 + 78 * latency()),
  }));
  const maxCpu = Math.max(...clusters.flatMap((c) => c.nodes.map((n) => n.cpu)));
  const maxMem = Math.max(...clusters.flatMap((c) => c.nodes.map((n) => n.mem)));
  const jobs: Job[] = [];
  let t = 0;
  for (let id = 0; id < count; id++) {
    // A burst: arrivals over the first few minutes, so the backlog (not arrivals) sets the end.
    t += -Math.log(1 - rnd()) * 0.1;
    // Mixed sizes: mostly small, some large; durations log-uniform 5 s – 10 min.
    const cpuMillis = Math.min(
      maxCpu,
      pick([250, 250, 500, 500, 500, 1000, 1000, 1000, 2000, 2000, 4000, 8000]),
    );
    const memoryBytes = Math.min(maxMem, pick([0.25, 0.5, 1, 1, 2, 4, 8, 16]) * GiB);
    const duration = Math.round(5 * 120 ** rnd());
    jobs.push({ id, arrival: t, duration, cpuMillis, memoryBytes });
  }
  return { clusters, jobs };
};

// ------------------------------------------------------------------ event-driven simulation

/** A small binary heap of timed events. */
class Events<T> {
  private heap: Array<{ at: number; seq: number; v: T }> = [];
  private seq = 0;
  get size() {
    return this.heap.length;
  }
  push(at: number, v: T) {
    const h = this.heap;
    h.push({ at, seq: this.seq++, v });
    for (let i = h.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (this.less(h[p], h[i])) break;
      [h[p], h[i]] = [h[i], h[p]];
      i = p;
    }
  }
  pop(): { at: number; v: T } | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0];
    const last = h.pop() as (typeof h)[number];
    if (h.length) {
      h[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l], h[m])) m = l;
        if (r < h.length && this.less(h[r], h[m])) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i], h[m]];
        i = m;
      }
    }
    return top;
  }
  private less(a: { at: number; seq: number }, b: { at: number; seq: number }) {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }
}

type Ev =
  | { kind: 'arrive'; job: Job }
  | { kind: 'finish'; job: Job; cluster: string; node: number }
  | { kind: 'poll' };

interface Result {
  makespan: number;
  /** When the last job started: until then the queue was never empty. */
  lastStart: number;
  /** Share of all cpus busy between time 0 and lastStart. */
  busyUntilLastStart: number;
  meanWait: number;
  p95Wait: number;
  decisions: number;
}

/** As /system/status shows a cluster: free capacity, nothing pending (jobs start at once), its mean run time. */
const snapshotOf = (c: Cluster, free: Node[], meanRunSeconds?: number): ClusterSnapshot => ({
  clusterId: c.id,
  online: true,
  nodes: free.map((n) => ({ freeCpuMillis: n.cpu, freeMemoryBytes: n.mem })),
  totalFreeCpuMillis: free.reduce((a, n) => a + n.cpu, 0),
  totalFreeMemoryBytes: free.reduce((a, n) => a + n.mem, 0),
  pendingJobs: 0,
  latencyMs: c.latencyMs,
  ...(meanRunSeconds !== undefined ? { meanRunSeconds } : {}),
});

const simulate = (
  clusters: Cluster[],
  jobs: Job[],
  policy: DelegationPolicy,
  opts: { seed: number; pollS: number },
): Result => {
  const random = seededRandom(opts.seed * 7919 + 1);
  // Static priorities: the order the clusters were listed in (as a user would write them).
  const replicas: Replica[] = clusters.map((c, i) => ({
    type: 'oscar',
    cluster_id: c.id,
    service_name: `s-${c.id}`,
    priority: i,
  }));
  // The truth: free cpu/memory per node.
  const free = new Map(clusters.map((c) => [c.id, c.nodes.map((n) => ({ ...n }))]));
  // What the policy sees: exact, or the last poll plus reservations since.
  const view = new Map<string, ClusterSnapshot>();
  const ran = new Map<string, { seconds: number; jobs: number }>();
  const meanRun = (id: string) => {
    const r = ran.get(id);
    return r ? r.seconds / r.jobs : undefined;
  };
  const poll = () => {
    for (const c of clusters) view.set(c.id, snapshotOf(c, free.get(c.id) as Node[], meanRun(c.id)));
  };
  poll();
  const events = new Events<Ev>();
  for (const j of jobs) events.push(j.arrival, { kind: 'arrive', job: j });
  if (opts.pollS > 0) events.push(opts.pollS, { kind: 'poll' });
  // Waiting jobs by demand class (same cpu and memory), each class in arrival order: a pass
  // walks all waiting jobs in arrival order exactly as one FIFO scan with backfilling would,
  // but skips a whole class once its head found no cluster.
  const classes = new Map<string, { jobs: Job[]; head: number }>();
  let waitingCount = 0;
  const waits: number[] = [];
  const started: Array<{ job: Job; at: number }> = [];
  let finished = 0;
  let now = 0;
  let decisions = 0;

  const place = () => {
    // Within one pass the view only shrinks: a job at least as large as one that found no
    // cluster finds none either (skipped without asking the policy).
    const failed: JobDemand[] = [];
    const done = new Set<{ jobs: Job[]; head: number }>();
    for (;;) {
      let q: { jobs: Job[]; head: number } | undefined;
      for (const c of classes.values()) {
        if (c.head >= c.jobs.length || done.has(c)) continue;
        if (!q || c.jobs[c.head].id < q.jobs[q.head].id) q = c;
      }
      if (!q) return;
      const job = q.jobs[q.head];
      if (failed.some((f) => job.cpuMillis >= f.cpuMillis && job.memoryBytes >= f.memoryBytes)) {
        done.add(q);
        continue;
      }
      decisions++;
      const first = rank(policy, candidates(replicas, view, job), random)[0];
      if (!first) {
        failed.push(job);
        done.add(q);
        continue;
      }
      const id = first.replica.cluster_id as string;
      const before = view.get(id) as ClusterSnapshot;
      const after = reserveOnSnapshot(before, job);
      const node = after.nodes.findIndex((n, k) => n.freeCpuMillis !== before.nodes[k].freeCpuMillis);
      const truth = (free.get(id) as Node[])[node];
      if (node < 0 || truth.cpu < job.cpuMillis || truth.mem < job.memoryBytes) {
        throw new Error(`policy placed job ${job.id} where it does not fit (${id}/${node})`);
      }
      view.set(id, after);
      truth.cpu -= job.cpuMillis;
      truth.mem -= job.memoryBytes;
      q.head++;
      waitingCount--;
      waits.push(now - job.arrival);
      started.push({ job, at: now });
      events.push(now + job.duration, { kind: 'finish', job, cluster: id, node });
    }
  };

  for (let e = events.pop(); e; e = events.pop()) {
    now = e.at;
    const ev = e.v;
    if (ev.kind === 'arrive') {
      const key = `${ev.job.cpuMillis}:${ev.job.memoryBytes}`;
      const q = classes.get(key) ?? { jobs: [], head: 0 };
      classes.set(key, q);
      q.jobs.push(ev.job);
      waitingCount++;
    } else if (ev.kind === 'finish') {
      const truth = (free.get(ev.cluster) as Node[])[ev.node];
      truth.cpu += ev.job.cpuMillis;
      truth.mem += ev.job.memoryBytes;
      finished++;
      const r = ran.get(ev.cluster) ?? { seconds: 0, jobs: 0 };
      ran.set(ev.cluster, { seconds: r.seconds + ev.job.duration, jobs: r.jobs + 1 });
      if (opts.pollS === 0)
        view.set(
          ev.cluster,
          snapshotOf(
            clusters.find((c) => c.id === ev.cluster) as Cluster,
            free.get(ev.cluster) as Node[],
            meanRun(ev.cluster),
          ),
        );
    } else {
      poll();
      if (finished < jobs.length) events.push(now + opts.pollS, { kind: 'poll' });
    }
    // Several events at the same instant: decide once they are all in.
    const next = events.size ? (events.pop() as { at: number; v: Ev }) : undefined;
    if (next) events.push(next.at, next.v);
    if (next && next.at === now) continue;
    if (waitingCount) place();
  }
  if (finished !== jobs.length || waitingCount) throw new Error(`${jobs.length - finished} jobs never ran`);
  const sorted = [...waits].sort((a, b) => a - b);
  const lastStart = Math.max(...started.map((s) => s.at));
  const capacity = clusters.reduce((a, c) => a + c.nodes.reduce((b, n) => b + n.cpu, 0), 0);
  const busy = started.reduce(
    (a, s) => a + s.job.cpuMillis * Math.max(0, Math.min(s.at + s.job.duration, lastStart) - s.at),
    0,
  );
  return {
    makespan: now,
    lastStart,
    busyUntilLastStart: lastStart > 0 ? busy / (capacity * lastStart) : 1,
    meanWait: waits.reduce((a, w) => a + w, 0) / waits.length,
    p95Wait: sorted[Math.floor(sorted.length * 0.95)],
    decisions,
  };
};

// ------------------------------------------------------------------ run and report

const main = async () => {
  const lines: string[] = [];
  const summary = new Map<string, number[]>();
  const t0 = performance.now();
  for (const count of WORKLOADS) {
    for (const seed of SEEDS) {
      const { clusters, jobs } = world(seed, count);
      const nodes = clusters.flatMap((c) => c.nodes);
      const cpuBound =
        jobs.reduce((a, j) => a + j.cpuMillis * j.duration, 0) / nodes.reduce((a, n) => a + n.cpu, 0);
      const memBound =
        jobs.reduce((a, j) => a + j.memoryBytes * j.duration, 0) / nodes.reduce((a, n) => a + n.mem, 0);
      const arrivalBound = Math.max(...jobs.map((j) => j.arrival + j.duration));
      const bound = Math.max(cpuBound, memBound, arrivalBound);
      const longest = Math.max(...jobs.map((j) => j.duration));
      // A reference without placement: all cpu and memory as one machine, same queue rules.
      // What it misses on top of the bound is the drain (the order the jobs come in), which no
      // placement policy can remove without knowing durations.
      const pool: Cluster = {
        id: 'pool',
        nodes: [{ cpu: nodes.reduce((a, n) => a + n.cpu, 0), mem: nodes.reduce((a, n) => a + n.mem, 0) }],
        latencyMs: 0,
      };
      const pooled = simulate([pool], jobs, 'load-based', { seed, pollS: 0 }).makespan / bound;
      summary.set(`${count}|pooled`, [...(summary.get(`${count}|pooled`) ?? []), pooled]);
      for (const pollS of [0, 2]) {
        for (const policy of POLICIES) {
          const r = simulate(clusters, jobs, policy, { seed, pollS });
          const ratio = r.makespan / bound;
          const key = `${count}|${pollS}|${policy}`;
          summary.set(key, [...(summary.get(key) ?? []), ratio]);
          lines.push(
            row([
              count,
              seed,
              pollS === 0 ? 'exact' : `poll ${pollS} s`,
              policy,
              fmt(nodes.reduce((a, n) => a + n.cpu, 0) / 1000, 0),
              `${fmt(bound, 0)} (${bound === cpuBound ? 'cpu' : bound === memBound ? 'mem' : 'arrival'})`,
              longest,
              fmt(r.lastStart, 0),
              `${fmt(100 * r.busyUntilLastStart, 1)} %`,
              fmt(r.makespan, 0),
              fmt(ratio, 3),
              fmt(r.meanWait, 0),
              fmt(r.p95Wait, 0),
            ]),
          );
        }
      }
    }
  }
  const elapsed = (performance.now() - t0) / 1000;

  console.log(
    `### Scheduling simulation: ${CLUSTERS} clusters, ${WORKLOADS.join(' and ')} jobs, seeds ${SEEDS.join(', ')} (${fmt(elapsed, 1)} s)\n`,
  );
  console.log(
    row([
      'jobs',
      'seed',
      'view',
      'policy',
      'total cpus',
      'lower bound s',
      'longest job s',
      'last start s',
      'cpu busy until then',
      'makespan s',
      'makespan ÷ bound',
      'mean wait s',
      'p95 wait s',
    ]),
  );
  console.log(
    row([
      '---:',
      '---:',
      '---',
      '---',
      '---:',
      '---:',
      '---:',
      '---:',
      '---:',
      '---:',
      '---:',
      '---:',
      '---:',
    ]),
  );
  console.log(lines.join('\n'));
  console.log('\n### Summary: makespan ÷ lower bound over the seeds\n');
  console.log(row(['jobs', 'view', 'policy', 'mean', 'worst', 'load-based ≤ 1.15']));
  console.log(row(['---:', '---', '---', '---:', '---:', '---']));
  for (const count of WORKLOADS) {
    const pooled = summary.get(`${count}|pooled`) as number[];
    console.log(
      row([
        count,
        'exact',
        'reference: one pooled machine, no placement',
        fmt(pooled.reduce((a, x) => a + x, 0) / pooled.length, 3),
        fmt(Math.max(...pooled), 3),
        '-',
      ]),
    );
    for (const pollS of [0, 2]) {
      for (const policy of POLICIES) {
        const rs = summary.get(`${count}|${pollS}|${policy}`) as number[];
        const worst = Math.max(...rs);
        console.log(
          row([
            count,
            pollS === 0 ? 'exact' : `poll ${pollS} s`,
            policy,
            fmt(rs.reduce((a, x) => a + x, 0) / rs.length, 3),
            fmt(worst, 3),
            policy === 'load-based' ? (worst <= 1.15 ? 'yes' : 'NO') : '-',
          ]),
        );
      }
    }
  }
  console.log(
    '\nLower bound = max(cpu·s ÷ total cpu, memory·s ÷ total memory, latest arrival + its duration). Jobs that fit nowhere wait; the queue is scanned in arrival order at every change. All four policies place greedily on a fitting node, so under a backlog they keep the same clusters busy; what separates makespan from the bound is the drain at the end (the last jobs started run alone, up to the longest duration), which weighs less the longer the backlog. The pooled reference (all capacity as one machine, so nothing to place) shows that part: where it is above 1.15, no placement policy reaches the goal with this queue order, and no order that ignores durations did in our trials (largest first, smallest first, random); OSCAR jobs do not declare durations.',
  );
};

await main();
