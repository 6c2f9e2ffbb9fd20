// The delegation decision of one job, as recorded on the job and shown in its listing: what
// triggered it, the policy, every replica considered (what the status cache said, what
// happened to each one tried) and where the job went — and the same in words. Pure: the
// delegator reports what it saw and did, this module shapes it. Only cluster ids, service
// names and numbers go in: never a URL, a header, a token or a credential of a replica.
import type { DelegationPolicy, Replica } from '../federation/model.ts';
import { type Candidate, type ClusterSnapshot, fitsOn, type JobDemand } from './policy.ts';

/** Replicas kept in one decision (the rest are counted): the record stays small. */
export const DECISION_MAX_CANDIDATES = 16;
/** Longest cluster id or service name kept (longer ones are cut). */
const MAX_NAME = 63;

/** Why delegation was tried. */
export type DelegationTrigger =
  /** At intake: no local node had room for the job. */
  | { trigger: 'intake' }
  /** The rescheduler: the job waited locally longer than the service's threshold. */
  | { trigger: 'rescheduler'; waited_s: number; threshold_s: number }
  /** The rescheduler: no local node is large enough for the job, ever. */
  | { trigger: 'never-fits' };

/** What the status cache said of a replica when the plan was made. */
export type CacheView =
  /** Online, and some node has room: a candidate. */
  | 'fits'
  /** Online, but no node has room for the job. */
  | 'no-room'
  | 'offline'
  /** Not (yet) in the status cache, or no cluster id to look it up by. */
  | 'unknown'
  /** An endpoint replica: no status, always a candidate. */
  | 'endpoint';

/** What happened to a replica the job was sent to. */
export type SendOutcome =
  | 'accepted'
  /** It answered: the credentials or its grant refused the job (401/403). */
  | 'refused'
  /** No answer (down, timed out, 5xx). */
  | 'unreachable'
  /** This cluster holds no credentials for it. */
  | 'no-credentials'
  /** Any other refusal (e.g. it has no such service). */
  | 'failed';

export interface ConsideredReplica {
  /** The replica's cluster id (oscar replicas). */
  cluster_id?: string;
  service_name?: string;
  /** 1-based position of an endpoint replica in the service's list (its URL is never kept). */
  endpoint?: number;
  cache: CacheView;
  /** Total free cpu the cache knew of, in millicores. */
  free_cpu_millis?: number;
  /** Set for each replica the job was sent to, in the order tried. */
  tried?: SendOutcome;
}

export type DelegationDecision = DelegationTrigger & {
  policy: DelegationPolicy;
  cpu_millis: number;
  memory_bytes: number;
  /** Candidates in the order tried, then the replicas that were not candidates, in list order. */
  candidates: ConsideredReplica[];
  /** Replicas left out of `candidates` (beyond the cap). */
  more_candidates: number;
  outcome: 'delegated' | 'kept-local';
  /** Where the job went: a cluster id, or "endpoint #n"; null when kept here. */
  to: string | null;
  decided_at: string;
};

/** One send the delegator made, by the replica's index in the service's list. */
export interface SendAttempt {
  index: number;
  outcome: SendOutcome;
}

/** What the delegator reports while it delegates one job (filled in by delegate()). */
export interface DelegationTrace {
  policy?: DelegationPolicy;
  /** Every replica as the plan saw it, candidates first in the order they would be tried. */
  considered?: Array<ConsideredReplica & { index: number }>;
  attempts: SendAttempt[];
}

const name = (s: string): string => s.replace(/[\u0000-\u001f\u007f]/g, '').slice(0, MAX_NAME);

const viewOf = (
  replica: Replica,
  snapshot: ClusterSnapshot | undefined,
  job: JobDemand,
): Pick<ConsideredReplica, 'cache' | 'free_cpu_millis'> => {
  if (replica.type === 'endpoint') return { cache: replica.url ? 'endpoint' : 'unknown' };
  if (!snapshot) return { cache: 'unknown' };
  if (!snapshot.online) return { cache: 'offline' };
  const free = Math.max(0, Math.round(snapshot.totalFreeCpuMillis));
  return { cache: fitsOn(snapshot, job) ? 'fits' : 'no-room', free_cpu_millis: free };
};

/**
 * Every replica as the plan saw it: the ranked candidates first (the order they are tried),
 * then the others in list order, each with what the cache said.
 */
export const consideredReplicas = (
  replicas: readonly Replica[],
  snapshots: ReadonlyMap<string, ClusterSnapshot>,
  job: JobDemand,
  ranked: readonly Candidate[],
): Array<ConsideredReplica & { index: number }> => {
  const entry = (replica: Replica, index: number) => {
    const snapshot = replica.cluster_id ? snapshots.get(replica.cluster_id) : undefined;
    const who: Omit<ConsideredReplica, 'cache'> =
      replica.type === 'endpoint'
        ? { endpoint: index + 1 }
        : {
            ...(replica.cluster_id ? { cluster_id: name(replica.cluster_id) } : {}),
            ...(replica.service_name ? { service_name: name(replica.service_name) } : {}),
          };
    return { index, ...who, ...viewOf(replica, snapshot, job) };
  };
  const inPlan = new Set(ranked.map((c) => c.index));
  return [
    ...ranked.map((c) => entry(c.replica, c.index)),
    ...replicas.flatMap((r, i) => (inPlan.has(i) ? [] : [entry(r, i)])),
  ];
};

/** A failed send by the error code the peer client gave. */
export const sendOutcomeOf = (code: string | undefined): SendOutcome => {
  if (code === 'PEER_UNREACHABLE' || code === 'TIMEOUT' || code === 'UNAVAILABLE') return 'unreachable';
  if (code === 'UNAUTHORIZED' || code === 'FORBIDDEN') return 'refused';
  return 'failed';
};

/** A replica's name in a decision: its cluster id, or "endpoint #n". */
export const replicaLabel = (r: Pick<ConsideredReplica, 'cluster_id' | 'endpoint'>): string =>
  r.cluster_id ?? (r.endpoint !== undefined ? `endpoint #${r.endpoint}` : 'a replica without a cluster id');

/**
 * The decision to record: the plan's view with each send's outcome, capped at
 * DECISION_MAX_CANDIDATES; delegated when a send was accepted, kept local otherwise.
 */
export const delegationDecision = (input: {
  trigger: DelegationTrigger;
  trace: DelegationTrace;
  job: JobDemand;
  at: Date;
}): DelegationDecision => {
  const { trace } = input;
  const outcomes = new Map(trace.attempts.map((a) => [a.index, a.outcome]));
  const all = (trace.considered ?? []).map(({ index, ...r }) => {
    const tried = outcomes.get(index);
    return tried ? { ...r, tried } : r;
  });
  const accepted = trace.attempts.find((a) => a.outcome === 'accepted');
  const target = accepted && trace.considered?.find((c) => c.index === accepted.index);
  return {
    ...input.trigger,
    policy: trace.policy ?? 'static',
    cpu_millis: input.job.cpuMillis,
    memory_bytes: input.job.memoryBytes,
    candidates: all.slice(0, DECISION_MAX_CANDIDATES),
    more_candidates: Math.max(0, all.length - DECISION_MAX_CANDIDATES),
    outcome: target ? 'delegated' : 'kept-local',
    to: target ? replicaLabel(target) : null,
    decided_at: input.at.toISOString(),
  };
};

// ------------------------------------------------------------------ in words

/** Cores as a user writes them: 2000 → "2", 500 → "0.5", 1250 → "1.25". */
const cores = (millis: number): string => String(Math.round(millis / 10) / 100);
/** Free cores with one decimal, as the dashboard shows them: 3500 → "3.5". */
const freeCores = (millis: number): string => (millis / 1000).toFixed(1);
const bytes = (n: number): string => {
  const gib = n / 1024 ** 3;
  if (gib >= 1) return `${Math.round(gib * 10) / 10} GiB`;
  return `${Math.round(n / 1024 ** 2)} MiB`;
};
const demandText = (d: DelegationDecision): string =>
  d.memory_bytes > 0
    ? `${cores(d.cpu_millis)} cpu and ${bytes(d.memory_bytes)}`
    : `${cores(d.cpu_millis)} cpu`;

/** When delegation was tried, and because of what. */
const whyText = (d: DelegationDecision): { when: string; because: string } => {
  if (d.trigger === 'intake')
    return { when: 'at intake', because: `no local node had ${demandText(d)} free` };
  if (d.trigger === 'rescheduler')
    return {
      when: 'by the rescheduler',
      because: `it waited ${d.waited_s} s here, more than the ${d.threshold_s} s threshold`,
    };
  return { when: 'by the rescheduler', because: `no local node is large enough for ${demandText(d)}` };
};

const TRIED_WORDS: Record<SendOutcome, string> = {
  accepted: 'took it',
  refused: 'credentials or grant refused',
  unreachable: 'unreachable',
  'no-credentials': 'no credentials for it',
  failed: 'rejected it',
};

const NOT_CANDIDATE_WORDS: Record<Exclude<CacheView, 'fits' | 'endpoint'>, string> = {
  'no-room': 'no room',
  offline: 'offline',
  unknown: 'not in the status cache',
};

/**
 * The decision in two sentences, e.g. "Delegated to b at intake: no local node had 2 cpu
 * and 64 MiB free. Policy load-based: b (3.5 cpu free) before c (1.0 free); d offline."
 */
export const delegationSummary = (d: DelegationDecision): string => {
  const { when, because } = whyText(d);
  const head =
    d.outcome === 'delegated'
      ? `Delegated to ${d.to} ${when}: ${because}.`
      : `Kept here: no replica took it, tried ${when} because ${because}.`;
  // Stored JSON: tolerate what an older or newer version may have written.
  const list = (Array.isArray(d.candidates) ? d.candidates : []).filter(
    (c): c is ConsideredReplica => !!c && typeof c === 'object',
  );
  let first = true;
  const ranked = list
    .filter((c) => c.cache === 'fits' || c.cache === 'endpoint')
    .map((c) => {
      const facts: string[] = [];
      if (c.free_cpu_millis !== undefined) {
        facts.push(`${freeCores(c.free_cpu_millis)}${first ? ' cpu' : ''} free`);
        first = false;
      }
      // The one that took it is named in the first sentence.
      if (c.tried && c.tried !== 'accepted') facts.push(TRIED_WORDS[c.tried] ?? c.tried);
      return facts.length ? `${replicaLabel(c)} (${facts.join('; ')})` : replicaLabel(c);
    });
  const others = list
    .filter((c) => c.cache !== 'fits' && c.cache !== 'endpoint')
    .map((c) => {
      const why = NOT_CANDIDATE_WORDS[c.cache as keyof typeof NOT_CANDIDATE_WORDS] ?? c.cache;
      return c.cache === 'no-room' && c.free_cpu_millis !== undefined
        ? `${replicaLabel(c)} ${why} (${freeCores(c.free_cpu_millis)} free)`
        : `${replicaLabel(c)} ${why}`;
    });
  const parts = [ranked.length ? ranked.join(' before ') : 'no candidate', ...others];
  if (d.more_candidates > 0) parts.push(`${d.more_candidates} more not shown`);
  return `${head} Policy ${d.policy}: ${parts.join('; ')}.`;
};
