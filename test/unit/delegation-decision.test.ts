// The delegation decision recorded on a job (issue #16, "per job where it ran and why"): the
// pure builder and its words for each trigger, each policy, offline / unknown / no-room
// replicas, refused / unreachable / credential-less sends, the kept-local outcome and the
// cap; then the real triggers and delegator recording it through a store, and a fuzz that
// no URL, header or credential of a replica ever reaches the record or its words.
import { SpanStatusCode } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createOtelTracing } from '../../src/adapters/tracing-otel/otel-tracing.ts';
import { DelegationTriggers } from '../../src/app/federation/delegation-triggers.ts';
import { Delegator } from '../../src/app/federation/delegator.ts';
import type { ServiceCache } from '../../src/app/service-cache.ts';
import {
  type ConsideredReplica,
  consideredReplicas,
  DECISION_MAX_CANDIDATES,
  type DelegationDecision,
  type DelegationTrace,
  type DelegationTrigger,
  delegationDecision,
  delegationSummary,
  sendOutcomeOf,
} from '../../src/core/delegation/decision.ts';
import {
  type ClusterSnapshot,
  candidates,
  type JobDemand,
  rank,
  seededRandom,
} from '../../src/core/delegation/policy.ts';
import { FlotillaError } from '../../src/core/errors.ts';
import type { Service } from '../../src/core/fdl/service.ts';
import type { DelegationPolicy, Replica } from '../../src/core/federation/model.ts';
import type { JobRecord, JobStore, PeerClient, SettingsStore } from '../../src/core/ports.ts';
import type { Tracing } from '../../src/core/tracing.ts';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const AT = new Date('2026-12-02T08:00:00.000Z');
const JOB: JobDemand = { cpuMillis: 2000, memoryBytes: 64 * MiB };

const snap = (clusterId: string, nodesFree: number[], online = true): ClusterSnapshot => ({
  clusterId,
  online,
  nodes: nodesFree.map((cpu) => ({ freeCpuMillis: cpu, freeMemoryBytes: 4 * GiB })),
  totalFreeCpuMillis: nodesFree.reduce((a, b) => a + b, 0),
});
const oscar = (id: string, priority?: number): Replica => ({
  type: 'oscar',
  cluster_id: id,
  service_name: `svc-${id}`,
  ...(priority !== undefined ? { priority } : {}),
});

/** The trace delegate() would fill: the plan over these replicas and snapshots, then sends. */
const traceOf = (
  policy: DelegationPolicy,
  replicas: Replica[],
  snapshots: Map<string, ClusterSnapshot>,
  sends: Array<DelegationTrace['attempts'][number]['outcome']> = [],
  job = JOB,
): DelegationTrace => {
  const order = rank(policy, candidates(replicas, snapshots, job), seededRandom(7));
  return {
    policy,
    considered: consideredReplicas(replicas, snapshots, job, order),
    attempts: sends.map((outcome, i) => ({ index: order[i].index, outcome })),
  };
};
const decide = (trigger: DelegationTrigger, trace: DelegationTrace, job = JOB) =>
  delegationDecision({ trigger, trace, job, at: AT });

describe('the decision builder', () => {
  const replicas = [oscar('b'), oscar('c'), oscar('d'), oscar('e'), oscar('f')];
  const snapshots = new Map([
    ['b', snap('b', [3500])],
    ['c', snap('c', [2000, 0])],
    ['d', snap('d', [8000], false)], // offline
    // e: never polled (unknown)
    ['f', snap('f', [1000, 1000])], // 2 cpu in total, but no node holds 2
  ]);

  it('load-based at intake: candidates in the order tried with their free cpu, then the others as the cache saw them', () => {
    const d = decide({ trigger: 'intake' }, traceOf('load-based', replicas, snapshots, ['accepted']));
    expect(d).toEqual({
      trigger: 'intake',
      policy: 'load-based',
      cpu_millis: 2000,
      memory_bytes: 64 * MiB,
      candidates: [
        { cluster_id: 'b', service_name: 'svc-b', cache: 'fits', free_cpu_millis: 3500, tried: 'accepted' },
        { cluster_id: 'c', service_name: 'svc-c', cache: 'fits', free_cpu_millis: 2000 },
        { cluster_id: 'd', service_name: 'svc-d', cache: 'offline' },
        { cluster_id: 'e', service_name: 'svc-e', cache: 'unknown' },
        { cluster_id: 'f', service_name: 'svc-f', cache: 'no-room', free_cpu_millis: 2000 },
      ],
      more_candidates: 0,
      outcome: 'delegated',
      to: 'b',
      decided_at: AT.toISOString(),
    } satisfies DelegationDecision);
    expect(delegationSummary(d)).toBe(
      'Delegated to b at intake: no local node had 2 cpu and 64 MiB free. ' +
        'Policy load-based: b (3.5 cpu free) before c (2.0 free); d offline; e not in the status cache; ' +
        'f no room (2.0 free).',
    );
  });

  it('static: priority order; a refused and an unreachable send, then the next one took it', () => {
    const list = [oscar('b', 2), oscar('c', 0), oscar('g', 1)];
    const snaps = new Map([
      ['b', snap('b', [4000])],
      ['c', snap('c', [2500])],
      ['g', snap('g', [3000])],
    ]);
    const d = decide(
      { trigger: 'intake' },
      traceOf('static', list, snaps, ['refused', 'unreachable', 'accepted']),
    );
    expect(d.candidates.map((c) => [c.cluster_id, c.tried])).toEqual([
      ['c', 'refused'],
      ['g', 'unreachable'],
      ['b', 'accepted'],
    ]);
    expect(d.to).toBe('b');
    expect(delegationSummary(d)).toBe(
      'Delegated to b at intake: no local node had 2 cpu and 64 MiB free. Policy static: ' +
        'c (2.5 cpu free; credentials or grant refused) before g (3.0 free; unreachable) before b (4.0 free).',
    );
  });

  it('random and topsis name their policy and keep the order they drew', () => {
    const list = [oscar('b'), oscar('c'), oscar('g')];
    const snaps = new Map(list.map((r) => [r.cluster_id!, snap(r.cluster_id!, [3000])]));
    for (const policy of ['random', 'topsis'] as const) {
      const trace = traceOf(policy, list, snaps, ['accepted']);
      const d = decide({ trigger: 'intake' }, trace);
      expect(d.policy).toBe(policy);
      expect(d.candidates.map((c) => c.cluster_id)).toEqual(trace.considered!.map((c) => c.cluster_id));
      expect(d.to).toBe(trace.considered![0].cluster_id);
      expect(delegationSummary(d)).toContain(`Policy ${policy}: ${d.to} (3.0 cpu free) before`);
    }
  });

  it('the rescheduler: how long the job waited and the threshold, or that it never fits here', () => {
    const trace = traceOf('load-based', [oscar('b')], new Map([['b', snap('b', [4000])]]), ['accepted']);
    const waited = decide({ trigger: 'rescheduler', waited_s: 12, threshold_s: 10 }, trace);
    expect(waited).toMatchObject({ trigger: 'rescheduler', waited_s: 12, threshold_s: 10, to: 'b' });
    expect(delegationSummary(waited)).toBe(
      'Delegated to b by the rescheduler: it waited 12 s here, more than the 10 s threshold. ' +
        'Policy load-based: b (4.0 cpu free).',
    );
    const big = { cpuMillis: 6000, memoryBytes: 3 * GiB };
    const never = decide(
      { trigger: 'never-fits' },
      traceOf('load-based', [oscar('b')], new Map([['b', snap('b', [8000])]]), ['accepted'], big),
      big,
    );
    expect(delegationSummary(never)).toBe(
      'Delegated to b by the rescheduler: no local node is large enough for 6 cpu and 3 GiB. ' +
        'Policy load-based: b (8.0 cpu free).',
    );
  });

  it('kept local: every candidate failed (unreachable, no credentials); the record says so', () => {
    const list = [oscar('b'), oscar('c')];
    const snaps = new Map([
      ['b', snap('b', [4000])],
      ['c', snap('c', [3000])],
    ]);
    const d = decide(
      { trigger: 'intake' },
      traceOf('load-based', list, snaps, ['unreachable', 'no-credentials']),
    );
    expect(d).toMatchObject({ outcome: 'kept-local', to: null });
    expect(delegationSummary(d)).toBe(
      'Kept here: no replica took it, tried at intake because no local node had 2 cpu and 64 MiB free. ' +
        'Policy load-based: b (4.0 cpu free; unreachable) before c (3.0 free; no credentials for it).',
    );
  });

  it('an endpoint replica is named by its place in the list, never by its URL or headers', () => {
    const list: Replica[] = [
      oscar('b'),
      {
        type: 'endpoint',
        url: 'https://user:hunter2@hooks.example.org/secret-path?token=abc',
        headers: { authorization: 'Bearer leaked-token' },
      },
    ];
    const d = decide(
      { trigger: 'intake' },
      traceOf('load-based', list, new Map([['b', snap('b', [4000])]]), ['unreachable', 'accepted']),
    );
    expect(d.to).toBe('endpoint #2');
    expect(d.candidates[1]).toEqual({ endpoint: 2, cache: 'endpoint', tried: 'accepted' });
    const text = JSON.stringify(d) + delegationSummary(d);
    for (const secret of ['hooks.example.org', 'hunter2', 'secret-path', 'abc', 'leaked-token', 'http'])
      expect(text).not.toContain(secret);
    expect(delegationSummary(d)).toBe(
      'Delegated to endpoint #2 at intake: no local node had 2 cpu and 64 MiB free. ' +
        'Policy load-based: b (4.0 cpu free; unreachable) before endpoint #2.',
    );
  });

  it(`keeps at most ${DECISION_MAX_CANDIDATES} replicas and counts the rest`, () => {
    const list = Array.from({ length: 40 }, (_, i) => oscar(`c${i}`));
    const snaps = new Map(list.map((r, i) => [r.cluster_id!, snap(r.cluster_id!, [2000 + i * 10])]));
    const d = decide({ trigger: 'intake' }, traceOf('load-based', list, snaps, ['accepted']));
    expect(d.candidates).toHaveLength(DECISION_MAX_CANDIDATES);
    expect(d.more_candidates).toBe(40 - DECISION_MAX_CANDIDATES);
    expect(d.to).toBe('c39'); // the most free cpu
    expect(delegationSummary(d)).toMatch(/; 24 more not shown\.$/);
  });

  it('no candidate at all reads as such (every replica offline or full)', () => {
    const d = decide(
      { trigger: 'intake' },
      traceOf(
        'static',
        [oscar('b'), oscar('c')],
        new Map([
          ['b', snap('b', [0])],
          ['c', snap('c', [9000], false)],
        ]),
      ),
    );
    expect(delegationSummary(d)).toBe(
      'Kept here: no replica took it, tried at intake because no local node had 2 cpu and 64 MiB free. ' +
        'Policy static: no candidate; b no room (0.0 free); c offline.',
    );
  });

  it('maps the peer errors to outcomes: unreachable, refused (credentials or grant), failed', () => {
    expect(sendOutcomeOf('PEER_UNREACHABLE')).toBe('unreachable');
    expect(sendOutcomeOf('TIMEOUT')).toBe('unreachable');
    expect(sendOutcomeOf('FORBIDDEN')).toBe('refused');
    expect(sendOutcomeOf('UNAUTHORIZED')).toBe('refused');
    expect(sendOutcomeOf('NOT_FOUND')).toBe('failed');
    expect(sendOutcomeOf(undefined)).toBe('failed');
  });

  it('cuts long names and drops control characters from cluster ids and service names', () => {
    const odd: Replica = {
      type: 'oscar',
      cluster_id: `b\u0000\n${'x'.repeat(200)}`,
      service_name: 's\u001b[31m',
    };
    const [c] = consideredReplicas([odd], new Map(), JOB, []);
    expect(c.cluster_id).toBe(`b${'x'.repeat(62)}`);
    expect(c.service_name).toBe('s[31m');
  });
});

// ------------------------------------------------------------------ fuzz

const SECRET_MARK = 'zz-secret-zz';
const replicaArb: fc.Arbitrary<Replica> = fc.oneof(
  fc.record({
    type: fc.constant('oscar' as const),
    cluster_id: fc.option(fc.string({ maxLength: 80 }), { nil: undefined }),
    service_name: fc.option(fc.string({ maxLength: 80 }), { nil: undefined }),
    priority: fc.option(fc.integer({ min: -3, max: 3 }), { nil: undefined }),
  }),
  fc.record({
    type: fc.constant('endpoint' as const),
    url: fc.option(fc.constant(`https://${SECRET_MARK}.example.org/p?t=${SECRET_MARK}`), { nil: undefined }),
    headers: fc.constant({ authorization: `Bearer ${SECRET_MARK}` }),
  }),
);

describe('the decision, fuzzed', () => {
  it('never throws, stays bounded, and never holds a URL or header of a replica', () => {
    fc.assert(
      fc.property(
        fc.array(replicaArb, { maxLength: 60 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 10_000 }), fc.boolean(), fc.boolean()), {
          maxLength: 60,
        }),
        fc.constantFrom(...(['static', 'random', 'load-based', 'topsis'] as const)),
        fc.array(
          fc.constantFrom(...(['accepted', 'refused', 'unreachable', 'no-credentials', 'failed'] as const)),
          {
            maxLength: 60,
          },
        ),
        fc.constantFrom<DelegationTrigger>(
          { trigger: 'intake' },
          { trigger: 'rescheduler', waited_s: 31, threshold_s: 30 },
          { trigger: 'never-fits' },
        ),
        (replicas, snaps, policy, sends, trigger) => {
          const snapshots = new Map<string, ClusterSnapshot>();
          replicas.forEach((r, i) => {
            const s = snaps[i];
            if (r.cluster_id && s) snapshots.set(r.cluster_id, snap(r.cluster_id, [s[0]], s[1]));
          });
          const trace = traceOf(policy, replicas, snapshots, []);
          const order = trace.considered!.filter((c) => c.cache === 'fits' || c.cache === 'endpoint');
          trace.attempts = order
            .slice(0, sends.length)
            .map((c, i) => ({ index: c.index, outcome: sends[i] }));
          const d = decide(trigger, trace);
          const words = delegationSummary(d);
          expect(d.candidates.length).toBeLessThanOrEqual(DECISION_MAX_CANDIDATES);
          expect(d.candidates.length + d.more_candidates).toBe(replicas.length);
          expect(d.outcome === 'delegated').toBe(d.to !== null);
          const all = JSON.stringify(d) + words;
          expect(all).not.toContain(SECRET_MARK);
          // Bounded: 16 replicas of at most two 63-character names each, plus the fixed parts.
          expect(JSON.stringify(d).length).toBeLessThan(6000);
          expect(words.length).toBeLessThan(6000);
          for (const c of d.candidates as ConsideredReplica[]) {
            expect((c.cluster_id ?? '').length).toBeLessThanOrEqual(63);
            expect(c.cluster_id ?? '').not.toMatch(/[\u0000-\u001f]/);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('the words for a stored decision of another shape', () => {
  it('never throw, whatever JSON the candidates hold', () => {
    const base = decide(
      { trigger: 'intake' },
      traceOf('static', [oscar('b')], new Map([['b', snap('b', [4000])]])),
    );
    fc.assert(
      fc.property(fc.jsonValue(), fc.array(fc.jsonValue(), { maxLength: 5 }), (whole, list) => {
        const odd = { ...base, candidates: list } as unknown as DelegationDecision;
        expect(typeof delegationSummary(odd)).toBe('string');
        const other = { ...base, candidates: whole } as unknown as DelegationDecision;
        expect(typeof delegationSummary(other)).toBe('string');
      }),
      { numRuns: 300 },
    );
  });
});

// ------------------------------------------------------------------ the triggers record it

describe('the triggers record the decision on the job', () => {
  const job = (): JobRecord => ({
    id: 'job-1',
    service: 'svc',
    status: 'Pending',
    event: new Uint8Array(),
    owner: 'o',
    cpuMillis: 1000,
    memoryBytes: 64 * MiB,
    createdAt: new Date(0),
    startedAt: null,
    finishedAt: null,
    exitCode: null,
    reason: null,
    log: null,
    delegatedTo: null,
    delegatedId: null,
    remoteJobId: null,
    originCluster: null,
    originToken: null,
    attempts: 0,
    delegation: null,
    holdState: null,
    heldUntil: null,
    confirmPending: false,
  });

  /** Real triggers and delegator; the peers answer per cluster as `answers` says. */
  const setup = (
    replicas: Replica[],
    snapshots: Map<string, ClusterSnapshot>,
    answers: Record<string, 'ok' | FlotillaError>,
    opts: {
      threshold?: number;
      localCpu?: number;
      now?: number;
      failRecord?: boolean;
      tracing?: Tracing;
    } = {},
  ) => {
    const j = job();
    const calls: string[] = [];
    const store = {
      dropExpiredHolds: async () => [],
      getJob: async () => j,
      pendingJobs: async () => (j.status === 'Pending' && !j.delegatedTo ? [j] : []),
      claimJob: async () => {
        if (j.status !== 'Pending') return false;
        j.status = 'Running';
        return true;
      },
      releaseJob: async () => {
        calls.push('release');
        j.status = 'Pending';
      },
      markDelegated: async (_id: string, to: string) => {
        calls.push(`delegated:${to}`);
        j.status = 'Pending';
        j.delegatedTo = to;
      },
      recordDelegation: async (_id: string, d: DelegationDecision) => {
        if (opts.failRecord) throw new Error('disk full');
        calls.push(`decision:${d.outcome}`);
        j.delegation = d;
      },
    } as unknown as JobStore;
    const svc = {
      name: 'svc',
      script: 'true',
      cpu: '1',
      memory: '64Mi',
      federation: { delegation: 'static', rescheduler_threshold: opts.threshold ?? 10 },
      replicas,
    } as unknown as Service;
    const peers = {
      submitJob: async (t: { clusterId: string }) => {
        const a = answers[t.clusterId];
        if (a instanceof FlotillaError) throw a;
        return { job_id: `remote-on-${t.clusterId}` };
      },
    } as unknown as PeerClient;
    const delegator = new Delegator({
      store,
      settings: { getSetting: async () => undefined, setSetting: async () => {} } as unknown as SettingsStore,
      cache: { forService: () => snapshots, reserve: () => {}, markOffline: () => {} },
      peers,
      credentials: {
        targetFor: async (clusterId) =>
          clusterId === 'nocreds'
            ? undefined
            : {
                clusterId,
                endpoint: `https://${clusterId}.${SECRET_MARK}.example.org`,
                sslVerify: true,
                auth: { kind: 'basic', user: 'oscar', password: SECRET_MARK },
              },
      },
      clusterId: 'home',
      random: seededRandom(1),
      logger: { info: () => {}, warn: () => {} },
      openSealed: (s) => s,
      tracing: opts.tracing,
    });
    const cpu = opts.localCpu ?? 1000;
    const triggers = new DelegationTriggers({
      store,
      services: { get: async () => svc } as unknown as ServiceCache,
      delegator,
      nodes: () => [
        {
          name: 'n',
          cpuCapacityMillis: cpu,
          memoryCapacityBytes: GiB,
          cpuRequestedMillis: cpu,
          memoryRequestedBytes: 0,
        },
      ],
      wakeRunner: () => calls.push('wake'),
      clock: { now: () => new Date(opts.now ?? 12_500) },
      logger: { warn: () => {} },
    });
    return { j, svc, calls, triggers };
  };
  const free = (id: string, cpu = 2000) => snap(id, [cpu]);
  const unreachable = new FlotillaError('PEER_UNREACHABLE', 'cluster b: connect ECONNREFUSED');
  const forbidden = new FlotillaError(
    'FORBIDDEN',
    'cluster c: job submit failed (403): refused the credentials',
  );

  it('at intake: unreachable, then refused by its grant, then taken — in the order tried, URLs and passwords left out', async () => {
    const { j, svc, calls, triggers } = setup(
      [oscar('b', 0), oscar('c', 1), oscar('d', 2), oscar('x', 3)],
      new Map([
        ['b', free('b')],
        ['c', free('c')],
        ['d', free('d')],
        ['x', snap('x', [9000], false)],
      ]),
      { b: unreachable, c: forbidden, d: 'ok' },
    );
    expect(await triggers.atIntake(j.id, svc)).toBe('d');
    expect(calls).toEqual(['delegated:d', 'decision:delegated']);
    expect(j.delegation).toMatchObject({
      trigger: 'intake',
      policy: 'static',
      outcome: 'delegated',
      to: 'd',
      candidates: [
        { cluster_id: 'b', cache: 'fits', tried: 'unreachable' },
        { cluster_id: 'c', cache: 'fits', tried: 'refused' },
        { cluster_id: 'd', cache: 'fits', tried: 'accepted' },
        { cluster_id: 'x', cache: 'offline' },
      ],
    });
    expect(JSON.stringify(j.delegation)).not.toContain(SECRET_MARK);
    expect(delegationSummary(j.delegation!)).toBe(
      'Delegated to d at intake: no local node had 1 cpu and 64 MiB free. Policy static: ' +
        'b (2.0 cpu free; unreachable) before c (2.0 free; credentials or grant refused) before d (2.0 free); x offline.',
    );
  });

  it("each hand-over's span says what became of it: a send that did not deliver is failed, with its code", async () => {
    const spans = new InMemorySpanExporter();
    const tracing = await createOtelTracing({ clusterId: 'home', exporter: spans });
    const { j, svc, triggers } = setup(
      [oscar('b', 0), oscar('c', 1), oscar('d', 2)],
      new Map([
        ['b', free('b')],
        ['c', free('c')],
        ['d', free('d')],
      ]),
      { b: unreachable, c: forbidden, d: 'ok' },
      { tracing },
    );
    expect(await triggers.atIntake(j.id, svc)).toBe('d');
    await tracing.forceFlush();
    const handOvers = spans
      .getFinishedSpans()
      .filter((s) => s.name === 'delegation.hand-over')
      .map((s) => [s.attributes['flotilla.target_cluster'], s.attributes['flotilla.outcome'], s.status.code]);
    expect(handOvers).toEqual([
      ['b', 'PEER_UNREACHABLE', SpanStatusCode.ERROR],
      ['c', 'FORBIDDEN', SpanStatusCode.ERROR],
      ['d', 'ok', SpanStatusCode.UNSET],
    ]);
    await tracing.shutdown();
  });

  it('the rescheduler records how long the job waited; every send failing keeps it local, recorded', async () => {
    const { j, calls, triggers } = setup(
      [oscar('b'), oscar('nocreds')],
      new Map([
        ['b', free('b')],
        ['nocreds', free('nocreds')],
      ]),
      { b: unreachable },
      { threshold: 10, localCpu: 2000, now: 12_500 }, // fits here one day: waits for the threshold
    );
    await triggers.reschedule();
    expect(calls).toEqual(['decision:kept-local', 'release', 'wake']);
    expect(j.status).toBe('Pending');
    expect(j.delegation).toMatchObject({
      trigger: 'rescheduler',
      waited_s: 12,
      threshold_s: 10,
      outcome: 'kept-local',
      to: null,
      candidates: [
        { cluster_id: 'b', tried: 'unreachable' },
        { cluster_id: 'nocreds', tried: 'no-credentials' },
      ],
    });
    expect(delegationSummary(j.delegation!)).toMatch(
      /^Kept here: no replica took it, tried by the rescheduler because it waited 12 s here, more than the 10 s threshold\./,
    );
  });

  it('a job no local node can ever hold: the never-fits trigger', async () => {
    const { j, triggers } = setup(
      [oscar('b')],
      new Map([['b', free('b')]]),
      { b: 'ok' },
      { localCpu: 500, now: 1 },
    );
    await triggers.reschedule();
    expect(j.delegation).toMatchObject({ trigger: 'never-fits', outcome: 'delegated', to: 'b' });
  });

  it('no decision is recorded while no replica could take the job (nothing was tried)', async () => {
    const { j, svc, calls, triggers } = setup([oscar('b')], new Map([['b', snap('b', [0])]]), {});
    expect(await triggers.atIntake(j.id, svc)).toBeUndefined();
    await triggers.reschedule();
    expect(calls).toEqual([]);
    expect(j.delegation).toBeNull();
  });

  it('a store failing to record the decision neither releases a delegated job nor fails it', async () => {
    const { j, svc, calls, triggers } = setup(
      [oscar('b')],
      new Map([['b', free('b')]]),
      { b: 'ok' },
      { failRecord: true },
    );
    expect(await triggers.atIntake(j.id, svc)).toBe('b');
    expect(calls).toEqual(['delegated:b']);
    expect(j.delegatedTo).toBe('b');
  });
});
