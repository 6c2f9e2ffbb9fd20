// Delegation exactly once (ADR 13) with real managers: a (no room for the job) delegates to
// b (priority 0, reached through a proxy) or c. The proxy forwards a hand-over to b and
// drops b's answer, as a network that fails after the request went through. Whatever
// follows — b answers the repeat, b stays down, the abandon reaches b — the job runs on
// exactly one cluster (counted by the marker its run prints), and a's record, the cluster
// that ran it and b's held copy agree.
import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobInfo } from '../../client/api-client.ts';
import { jobsApi } from '../../client/api-client.ts';
import type { ClusterProcess, Harness } from '../support/cluster-harness.ts';
import {
  allJobs,
  MARKER_SCRIPT,
  newMarker,
  runsOf,
  startDelegationClusters,
  submitMarked,
  waitJobsEnded,
} from '../support/delegation.ts';
import {
  clustersMap,
  createFederated,
  federationOf,
  type MemberProxy,
  startMemberProxy,
  waitFor,
} from '../support/federation.ts';

const HOLD_S = 6;
const SERVICE = 'once';

/** How the proxy in front of b treats a's calls. */
type Mode =
  | 'pass'
  /** The first hand-over reaches b, its answer is dropped; the rest passes. */
  | 'lose-first-answer'
  /** Every hand-over reaches b, every answer is dropped; confirms and abandons pass. */
  | 'lose-answers'
  /** The first hand-over reaches b, its answer is dropped; from then on b is down. */
  | 'lose-then-down';

describe('delegation exactly once: the hand-over answer is lost', () => {
  let h: Harness;
  let a: ClusterProcess;
  let b: ClusterProcess;
  let c: ClusterProcess;
  let proxy: MemberProxy;
  let mode: Mode = 'pass';
  let handOvers = 0;

  const drop = (res: ServerResponse) => {
    res.socket?.destroy();
    return true;
  };

  beforeAll(async () => {
    h = await startDelegationClusters([
      // Half a core: a 1-cpu job never fits on a and is delegated at intake.
      { id: 'a', args: ['--cpus', '0.5', '--delegation-hold', String(HOLD_S)] },
      { id: 'b', args: ['--cpus', '4'] },
      { id: 'c', args: ['--cpus', '4'] },
    ]);
    [a, b, c] = ['a', 'b', 'c'].map((id) => h.get(id));
    proxy = await startMemberProxy(() => b.url);
    proxy.setHook(async (req, _body, forward, res) => {
      const isHandOver = req.method === 'POST' && req.url === `/job/${SERVICE}-b`;
      if (mode === 'pass') return false;
      if (mode === 'lose-then-down' && handOvers > 0) return drop(res);
      if (!isHandOver) return false;
      if (mode === 'lose-first-answer' && handOvers > 0) return false;
      handOvers += 1;
      await forward(); // b stores (holds) it ...
      return drop(res); // ... and a never hears so
    });
    const created = await createFederated(a, {
      name: SERVICE,
      image: 'alpine',
      script: MARKER_SCRIPT,
      cpu: '1',
      memory: '64Mi',
      clusters: clustersMap(h.clusters, { b: proxy.url }),
      federation: {
        topology: 'star',
        delegation: 'static',
        rescheduler_threshold: 60,
        members: [
          { type: 'oscar', cluster_id: 'b', service_name: `${SERVICE}-b`, priority: 0 },
          { type: 'oscar', cluster_id: 'c', service_name: `${SERVICE}-c`, priority: 1 },
        ],
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
  }, 240_000);

  afterAll(async () => {
    await proxy?.close();
    await h?.close();
  });

  /** a's status cache sees b online (after a failure marked it offline). */
  const bOnline = () =>
    waitFor(
      async () => {
        const view = await federationOf(a, SERVICE);
        const m = (view.members ?? []).find((x) => x.cluster_id === 'b') as
          | { status?: { online?: boolean } }
          | undefined;
        expect(m?.status?.online).toBe(true);
      },
      { what: "a's cache to see b online", timeoutMs: 30_000 },
    );

  /** Jobs b holds for the service, beyond those it had before. */
  const newOnB = async (before: Set<string>): Promise<Array<[string, JobInfo]>> =>
    Object.entries(await allJobs(b.client, `${SERVICE}-b`)).filter(([id]) => !before.has(id));

  const totalRuns = async (marker: string) =>
    (await runsOf(a, SERVICE, marker)).length +
    (await runsOf(b, `${SERVICE}-b`, marker)).length +
    (await runsOf(c, `${SERVICE}-c`, marker)).length;

  it('b up: the repeat with the same id finds the held job; confirmed there, runs once on b', async () => {
    await bOnline();
    const before = new Set(Object.keys(await allJobs(b.client, `${SERVICE}-b`)));
    mode = 'lose-first-answer';
    handOvers = 0;
    const sent = await submitMarked(a.client, SERVICE, newMarker('quick', 'up'));
    expect(sent.delegatedTo).toBe('b');
    const listing = await waitJobsEnded(a.client, SERVICE, [sent.jobId], 60_000);
    expect(listing[sent.jobId]).toMatchObject({ status: 'Succeeded', delegated_to: 'b' });
    const onB = await newOnB(before);
    expect(onB).toHaveLength(1);
    expect(onB[0][1].status).toBe('Succeeded');
    expect(await runsOf(b, `${SERVICE}-b`, sent.marker)).toHaveLength(1);
    expect(await totalRuns(sent.marker)).toBe(1);
    // a's record shows the run b made (the mirrored log).
    expect((await jobsApi(a.client).log(SERVICE, sent.jobId)).text).toContain(`marker=${sent.marker} `);
    mode = 'pass';
  }, 120_000);

  it('b answers nothing to the hand-over: c runs it; b drops its hold on the abandon, never running it', async () => {
    await bOnline();
    const before = new Set(Object.keys(await allJobs(b.client, `${SERVICE}-b`)));
    mode = 'lose-answers';
    handOvers = 0;
    const sent = await submitMarked(a.client, SERVICE, newMarker('quick', 'abandon'));
    expect(sent.delegatedTo).toBe('c');
    expect(handOvers).toBe(2); // the send and its repeat both reached b
    const listing = await waitJobsEnded(a.client, SERVICE, [sent.jobId], 60_000);
    expect(listing[sent.jobId]).toMatchObject({ status: 'Succeeded', delegated_to: 'c' });
    const dropped = await waitFor(
      async () => {
        const onB = await newOnB(before);
        expect(onB).toHaveLength(1);
        expect(onB[0][1].status).toBe('Failed');
        return onB[0][1];
      },
      { what: "b's hold dropped", timeoutMs: 30_000 },
    );
    expect(dropped.start_time).toBeNull();
    expect(dropped.reason).toMatch(/abandoned by the origin/);
    expect(await runsOf(c, `${SERVICE}-c`, sent.marker)).toHaveLength(1);
    expect(await totalRuns(sent.marker)).toBe(1);
    mode = 'pass';
  }, 120_000);

  it('b stays down after the lost answer: c runs it; b, back, has only a dropped hold', async () => {
    await bOnline();
    const before = new Set(Object.keys(await allJobs(b.client, `${SERVICE}-b`)));
    mode = 'lose-then-down';
    handOvers = 0;
    const sent = await submitMarked(a.client, SERVICE, newMarker('quick', 'down'));
    expect(sent.delegatedTo).toBe('c');
    expect(handOvers).toBe(1);
    const listing = await waitJobsEnded(a.client, SERVICE, [sent.jobId], 60_000);
    expect(listing[sent.jobId]).toMatchObject({ status: 'Succeeded', delegated_to: 'c' });
    expect((await jobsApi(a.client).log(SERVICE, sent.jobId)).text).toContain(`ran-on=${SERVICE}-c`);
    // Unconfirmed, b's hold runs out there (a's abandon never arrived): dropped, never run.
    const dropped = await waitFor(
      async () => {
        const onB = await newOnB(before);
        expect(onB).toHaveLength(1);
        expect(onB[0][1].status).toBe('Failed');
        return onB[0][1];
      },
      { what: "b's hold to expire", timeoutMs: 30_000 },
    );
    expect(dropped.start_time).toBeNull();
    expect(dropped.reason).toMatch(/not confirmed by the origin in time/);
    // b comes back for a: nothing changes, the job ran once, on c.
    mode = 'pass';
    await bOnline();
    expect(await runsOf(c, `${SERVICE}-c`, sent.marker)).toHaveLength(1);
    expect(await totalRuns(sent.marker)).toBe(1);
    expect((await newOnB(before))[0][1].status).toBe('Failed');
    expect((await allJobs(a.client, SERVICE))[sent.jobId]).toMatchObject({
      status: 'Succeeded',
      delegated_to: 'c',
    });
  }, 120_000);
});
