// The rescheduler trigger with real managers: a job that found no room anywhere at intake
// waits locally; once a replica frees up and the job has waited past
// `rescheduler_threshold`, it is delegated there — and runs once, there.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterProcess, Harness } from '../support/cluster-harness.ts';
import {
  allJobs,
  CACHE_ROUND_MS,
  MARKER_SCRIPT,
  newMarker,
  runsOf,
  sleep,
  startDelegationClusters,
  submitMarked,
  waitJobsEnded,
} from '../support/delegation.ts';
import { clustersMap, createFederated, waitFor } from '../support/federation.ts';

describe('rescheduler', () => {
  let h: Harness;
  let a: ClusterProcess;
  let b: ClusterProcess;

  beforeAll(async () => {
    h = await startDelegationClusters([
      { id: 'a', args: ['--cpus', '1'] },
      { id: 'b', args: ['--cpus', '1'] },
    ]);
    [a, b] = [h.get('a'), h.get('b')];
    const created = await createFederated(a, {
      name: 'resch',
      image: 'alpine',
      script: MARKER_SCRIPT,
      cpu: '1',
      memory: '64Mi',
      clusters: clustersMap(h.clusters),
      federation: {
        topology: 'star',
        delegation: 'static',
        rescheduler_threshold: 2,
        members: [{ type: 'oscar', cluster_id: 'b', service_name: 'resch-b' }],
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
  }, 240_000);

  afterAll(async () => {
    await h?.close();
  });

  it('a job that waited past the threshold goes to the replica that freed up, and runs once', async () => {
    // Both clusters busy: a long job on b's worker, another on a.
    const bToken = ((await b.client.getService('resch-b')) as { token: string }).token;
    const onB = await submitMarked(b.client, 'resch-b', newMarker('long', 'b-busy'), bToken);
    const onA = await submitMarked(a.client, 'resch', newMarker('long', 'a-busy'));
    expect(onA.delegatedTo).toBeNull();
    await waitFor(async () => {
      expect((await allJobs(b.client, 'resch-b'))[onB.jobId]?.status).toBe('Running');
      expect((await allJobs(a.client, 'resch'))[onA.jobId]?.status).toBe('Running');
    });
    await sleep(CACHE_ROUND_MS); // a has seen b full

    // No room anywhere at intake: the job waits on a.
    const waiting = await submitMarked(a.client, 'resch', newMarker('quick', 'rescheduled'));
    expect(waiting.delegatedTo).toBeNull();
    await sleep(3_000);
    expect((await allJobs(a.client, 'resch'))[waiting.jobId]).toMatchObject({
      status: 'Pending',
      delegated_to: null,
    });

    // b frees up: after its next poll, the rescheduler sends the waiting job there.
    const stopped = await b.client.send('DELETE', `/system/logs/resch-b/${onB.jobId}`);
    expect(stopped.status).toBe(204);
    const listing = await waitJobsEnded(a.client, 'resch', [waiting.jobId], 60_000);
    expect(listing[waiting.jobId]).toMatchObject({ status: 'Succeeded', delegated_to: 'b' });
    expect(await runsOf(b, 'resch-b', waiting.marker)).toHaveLength(1);
    expect(await runsOf(a, 'resch', waiting.marker)).toHaveLength(0);
  }, 120_000);
});
