// Delegation end to end (DESIGN §4 "Delegation", "Storage of delegated jobs"), with four
// real managers and Basic credentials from the service's `clusters` map:
//   a  origin, 1 cpu (a long job keeps it full, so every new job is delegated at intake)
//   b  2 cpus                c  3 cpus
//   d  4 cpus on 8 nodes of 0.5 cpu: the most free cpu in total, but no node fits a 1-cpu job
// static picks the highest-priority replica that fits (d, listed first with priority 0, is
// skipped); random reaches several clusters (SC-003); load-based goes where most cpu is free
// and never to d (SC-004); a replica that dies between the status poll and the send loses
// the job to the next one, and the job runs once in the whole federation; a repeated
// X-Delegated-Job-ID runs once; outputs land in the origin's bucket (SC-005); the origin
// lists every delegated job with where it went and its final remote status, and serves the
// remote log (API and `flotilla logs`).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, jobsApi } from '../../client/api-client.ts';
import { runCli } from '../support/cli.ts';
import type { ClusterProcess, Harness } from '../support/cluster-harness.ts';
import {
  allJobs,
  CACHE_ROUND_MS,
  MARKER_SCRIPT,
  markerBody,
  newMarker,
  runsOf,
  type Submitted,
  sleep,
  startDelegationClusters,
  submitMarked,
  waitCacheOnline,
  waitJobsEnded,
} from '../support/delegation.ts';
import {
  clustersMap,
  createFederated,
  type MemberProxy,
  startMemberProxy,
  waitFor,
} from '../support/federation.ts';

const PW = 'pw';

describe('delegation policies across four clusters', () => {
  let h: Harness;
  let a: ClusterProcess;
  let b: ClusterProcess;
  let c: ClusterProcess;
  let d: ClusterProcess;
  let proxyB: MemberProxy;
  /** While true, b's proxy answers /system/status with b's last status and drops the rest. */
  let bDead = false;
  let lastStatusB: { status: number; headers: Record<string, string>; body: Buffer } | undefined;
  const jobsOf: Record<string, Submitted[]> = { stat: [], rand: [], load: [] };
  let longJob: Submitted;

  const service = (name: string, cpu: string, federation: Record<string, unknown>) => ({
    name,
    image: 'ghcr.io/grycap/alpine',
    script: MARKER_SCRIPT,
    cpu,
    memory: '64Mi',
    output: [{ storage_provider: 'minio.default', path: `${name}/out` }],
    clusters: clustersMap(h.clusters, { b: proxyB.url }),
    federation: { topology: 'star', rescheduler_threshold: 30, ...federation },
  });
  const worker = (name: string, cluster: string) => ({
    type: 'oscar',
    cluster_id: cluster,
    service_name: `${name}-${cluster}`,
  });

  beforeAll(async () => {
    h = await startDelegationClusters(
      [
        { id: 'a', args: ['--cpus', '1'] },
        { id: 'b', args: ['--cpus', '2'] },
        { id: 'c', args: ['--cpus', '3'] },
        { id: 'd', args: ['--cpus', '4', '--nodes', '8'] },
      ],
      { adminPassword: PW },
    );
    [a, b, c, d] = ['a', 'b', 'c', 'd'].map((id) => h.get(id));
    // b is reached through a proxy, so a test can hold open the window between the status
    // poll and the send: b dies, yet the poll still sees its last status.
    proxyB = await startMemberProxy(() => b.url);
    proxyB.setHook(async (req, _body, forward, res) => {
      const isStatus = req.method === 'GET' && req.url?.startsWith('/system/status');
      if (!bDead) {
        if (!isStatus) return false;
        const r = await forward();
        if (r.status === 200) lastStatusB = r;
        res.writeHead(r.status, r.headers);
        res.end(r.body);
        return true;
      }
      if (isStatus && lastStatusB) {
        res.writeHead(lastStatusB.status, lastStatusB.headers);
        res.end(lastStatusB.body);
        return true;
      }
      res.socket?.destroy();
      return true;
    });

    const created = await Promise.all([
      // static: d (priority 0, listed first) never fits a 1-cpu job; then b (0), then c (1).
      createFederated(
        a,
        service('stat', '1', {
          delegation: 'static',
          members: [
            { ...worker('stat', 'd'), priority: 0 },
            { ...worker('stat', 'b'), priority: 0 },
            { ...worker('stat', 'c'), priority: 1 },
          ],
        }),
      ),
      createFederated(
        a,
        service('rand', '0.5', {
          delegation: 'random',
          members: [worker('rand', 'b'), worker('rand', 'c'), worker('rand', 'd')],
        }),
      ),
      createFederated(
        a,
        service('load', '1', {
          delegation: 'load-based',
          members: [worker('load', 'b'), worker('load', 'c'), worker('load', 'd')],
        }),
      ),
    ]);
    for (const r of created) expect(r.status, JSON.stringify(r.body)).toBe(201);

    // The long job takes a's only cpu for the whole file: from now on nothing fits on a.
    longJob = await submitMarked(a.client, 'stat', newMarker('long', 'occupier'));
    expect(longJob.delegatedTo).toBeNull();
    await waitFor(
      async () => expect((await allJobs(a.client, 'stat'))[longJob.jobId]?.status).toBe('Running'),
      {
        what: 'the long job running on a',
      },
    );
    // Every replica polled and online in the cache (not a fixed sleep: a first poll can time
    // out on a loaded machine, and the first static jobs were then kept here).
    for (const svc of ['stat', 'rand', 'load']) await waitCacheOnline(a.client, svc, ['b', 'c', 'd']);
    await sleep(CACHE_ROUND_MS); // and polled again since the long job took a's cpu
  }, 240_000);

  afterAll(async () => {
    await proxyB?.close();
    await h?.close();
  });

  it('static: the highest-priority replica that fits takes the jobs; a non-fitting one is skipped', async () => {
    const sent: Submitted[] = [];
    // b (2 cpus) takes two 1-cpu jobs; the cache then counts it full, so the third goes to c.
    for (let i = 0; i < 3; i++) sent.push(await submitMarked(a.client, 'stat', newMarker('slow', `st${i}`)));
    jobsOf.stat.push(...sent);
    expect(sent.map((s) => s.delegatedTo)).toEqual(['b', 'b', 'c']);
    const listing = await waitJobsEnded(
      a.client,
      'stat',
      sent.map((s) => s.jobId),
      60_000,
    );
    for (const s of sent)
      expect(listing[s.jobId]).toMatchObject({ status: 'Succeeded', delegated_to: s.delegatedTo });
    // Why, as recorded: b before c by priority; d (listed first) had no node with room.
    expect(listing[sent[0].jobId].delegation).toMatchObject({
      trigger: 'intake',
      policy: 'static',
      outcome: 'delegated',
      to: 'b',
      candidates: [
        { cluster_id: 'b', service_name: 'stat-b', cache: 'fits', tried: 'accepted' },
        { cluster_id: 'c', service_name: 'stat-c', cache: 'fits' },
        { cluster_id: 'd', service_name: 'stat-d', cache: 'no-room' },
      ],
    });
    expect(listing[sent[0].jobId].delegation?.summary).toMatch(
      /^Delegated to b at intake: no local node had 1 cpu and 64 MiB free\. Policy static: b \([\d.]+ cpu free\) before c \([\d.]+ free\); d no room \([\d.]+ free\)\.$/,
    );
    // The third: the cache counted b full by then.
    expect(listing[sent[2].jobId].delegation).toMatchObject({
      to: 'c',
      candidates: [
        { cluster_id: 'c', cache: 'fits', tried: 'accepted' },
        { cluster_id: 'd', cache: 'no-room' },
        { cluster_id: 'b', cache: 'no-room' },
      ],
    });
    // d never saw any of them.
    expect(Object.keys(await allJobs(d.client, 'stat-d'))).toEqual([]);
  }, 90_000);

  it('random: ten delegations reach at least two clusters (SC-003)', async () => {
    const sent: Submitted[] = [];
    for (let i = 0; i < 10; i++)
      sent.push(await submitMarked(a.client, 'rand', newMarker('quick', `rnd${i}`)));
    jobsOf.rand.push(...sent);
    const where = sent.map((s) => s.delegatedTo);
    for (const w of where) expect(['b', 'c', 'd']).toContain(w);
    expect(new Set(where).size, `went to ${where.join(',')}`).toBeGreaterThanOrEqual(2);
    const listing = await waitJobsEnded(
      a.client,
      'rand',
      sent.map((s) => s.jobId),
      60_000,
    );
    for (const s of sent)
      expect(listing[s.jobId]).toMatchObject({ status: 'Succeeded', delegated_to: s.delegatedTo });
  }, 90_000);

  it('load-based: the cluster with the most free cpu that fits, never the bigger one without a fitting node (SC-004)', async () => {
    await sleep(CACHE_ROUND_MS); // the earlier reservations are replaced by fresh polls
    const sent: Submitted[] = [];
    // Free cpu per the cache: b 2, c 3, d 4 (but 0.5 per node). First c (3 → 2); then b and c
    // tie at 2 and list order gives b (2 → 1); then c (2) again.
    for (let i = 0; i < 3; i++) sent.push(await submitMarked(a.client, 'load', newMarker('slow', `lb${i}`)));
    jobsOf.load.push(...sent);
    expect(sent.map((s) => s.delegatedTo)).toEqual(['c', 'b', 'c']);
    const listing = await waitJobsEnded(
      a.client,
      'load',
      sent.map((s) => s.jobId),
      60_000,
    );
    for (const s of sent)
      expect(listing[s.jobId]).toMatchObject({ status: 'Succeeded', delegated_to: s.delegatedTo });
    // Recorded: c with the most free cpu, then b; d's 4 cpu free sit on nodes too small.
    const first = listing[sent[0].jobId].delegation!;
    expect(first).toMatchObject({
      policy: 'load-based',
      to: 'c',
      candidates: [
        { cluster_id: 'c', cache: 'fits', tried: 'accepted' },
        { cluster_id: 'b', cache: 'fits' },
        { cluster_id: 'd', cache: 'no-room' },
      ],
    });
    expect(first.candidates[0].free_cpu_millis!).toBeGreaterThan(first.candidates[1].free_cpu_millis!);
    expect(first.candidates[2].free_cpu_millis!).toBeGreaterThan(first.candidates[0].free_cpu_millis!);
    expect(Object.keys(await allJobs(d.client, 'load-d'))).toEqual([]);
  }, 90_000);

  it('the chosen replica dies between the status poll and the send: the job runs elsewhere, once', async () => {
    await sleep(CACHE_ROUND_MS);
    expect(lastStatusB, "b's status was polled through the proxy").toBeDefined();
    bDead = true;
    await b.kill();
    const marker = newMarker('quick', 'failover');
    const job = await submitMarked(a.client, 'stat', marker);
    jobsOf.stat.push(job);
    // b (first choice, still online in the cache) refused the connection; c took it.
    expect(job.delegatedTo).toBe('c');
    const warned = (await a.log())
      .split('\n')
      .filter((l) => l.includes(job.jobId) && l.includes('delegation failed; trying the next replica'));
    expect(warned.length, 'a logged the failed send to b').toBe(1);
    expect(JSON.parse(warned[0])).toMatchObject({ to: 'b' });
    // The same story in a's metrics: one failed send to b, and c among the targets.
    const metrics = await fetch(`${a.url}/metrics`, {
      headers: { authorization: `Basic ${Buffer.from(`oscar:${a.adminPassword}`).toString('base64')}` },
    }).then((r) => r.text());
    expect(metrics).toMatch(/^flotilla_delegation_failures_total\{[^}]*to="b"[^}]*\} 1$/m);
    expect(metrics).toMatch(/^flotilla_jobs_delegated_total\{[^}]*to="c"[^}]*\} [1-9]\d*$/m);
    const listing = await waitJobsEnded(a.client, 'stat', [job.jobId], 60_000);
    expect(listing[job.jobId]).toMatchObject({ status: 'Succeeded', delegated_to: 'c' });
    // And in the job's recorded decision: b unreachable, then c; no address of b's proxy in it.
    expect(listing[job.jobId].delegation).toMatchObject({
      outcome: 'delegated',
      to: 'c',
      candidates: [
        { cluster_id: 'b', cache: 'fits', tried: 'unreachable' },
        { cluster_id: 'c', cache: 'fits', tried: 'accepted' },
        { cluster_id: 'd', cache: 'no-room' },
      ],
    });
    expect(listing[job.jobId].delegation?.summary).toMatch(
      /Policy static: b \([\d.]+ cpu free; unreachable\) before c /,
    );
    expect(JSON.stringify(listing[job.jobId].delegation)).not.toContain(String(new URL(proxyB.url).port));

    bDead = false;
    await b.start();
    // Exactly one run of this job in the whole federation, and it was on c.
    const runs = {
      a: await runsOf(a, 'stat', marker),
      b: await runsOf(b, 'stat-b', marker),
      c: await runsOf(c, 'stat-c', marker),
      d: await runsOf(d, 'stat-d', marker),
    };
    expect(Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, v.length]))).toEqual({
      a: 0,
      b: 0,
      c: 1,
      d: 0,
    });
    expect(runs.c[0].info.status).toBe('Succeeded');
  }, 120_000);

  it('the same X-Delegated-Job-ID sent twice (and at once) runs once', async () => {
    const marker = newMarker('quick', 'dedupe');
    const body = JSON.stringify({ storage_provider: 'minio.a', event: markerBody(marker) });
    const post = () =>
      c.client.request<{ job_id: string }>('POST', '/job/stat-c', {
        raw: body,
        headers: {
          'x-delegated-job-id': `a.${marker}`,
          'x-delegated-from': 'a',
          'content-type': 'application/json',
        },
      });
    const [first, second] = await Promise.all([post(), post()]);
    const third = await post();
    expect(second.job_id).toBe(first.job_id);
    expect(third.job_id).toBe(first.job_id);
    await waitJobsEnded(c.client, 'stat-c', [first.job_id], 60_000);
    await sleep(1500); // a duplicate run would have been picked up by now
    const runs = await runsOf(c, 'stat-c', marker);
    expect(runs.map((r) => r.id)).toEqual([first.job_id]);
    // The log holds one execution.
    expect(runs[0].log.split(`marker=${marker} `).length - 1).toBe(1);
  }, 90_000);

  it("outputs of delegated jobs land in the origin's bucket, readable through the origin (SC-005)", async () => {
    const api = jobsApi(a.client);
    const delegated = [...jobsOf.stat, ...jobsOf.rand, ...jobsOf.load];
    expect(new Set(delegated.map((s) => s.delegatedTo))).toEqual(new Set(['b', 'c', 'd']));
    for (const [svc, sent] of Object.entries(jobsOf)) {
      const names = (await api.objects(svc)).objects.map((o) => o.object_name);
      for (const s of sent) expect(names, `${svc} output of ${s.marker}`).toContain(`out/${s.marker}.txt`);
    }
    // Each replica's output reads back through the origin, saying who made it.
    for (const s of [jobsOf.stat[0], jobsOf.stat[2], ...jobsOf.rand]) {
      const svc = jobsOf.stat.includes(s) ? 'stat' : 'rand';
      const signed = await api.presign(svc, `out/${s.marker}.txt`, 'download');
      const text = await (await fetch(signed.url)).text();
      expect(text.trim()).toBe(`${s.marker} processed by ${svc}-${s.delegatedTo}`);
    }
    // And none of them in the replicas' own stores.
    for (const cl of [b, c, d]) {
      for (const svc of Object.keys(jobsOf)) {
        const names = await jobsApi(cl.client)
          .objects(svc)
          .then((r) => r.objects.map((o) => o.object_name))
          .catch((e) => {
            if (e instanceof ApiError && e.status === 404) return [] as string[];
            throw e;
          });
        expect(
          names.filter((n) => n.startsWith('out/')),
          `${cl.id}/${svc}`,
        ).toEqual([]);
      }
    }
  }, 60_000);

  it('the origin lists delegated jobs with delegated_to and the remote status, and serves the remote log', async () => {
    const listing = await allJobs(a.client, 'stat');
    expect(listing[longJob.jobId]).toMatchObject({ status: 'Running', delegated_to: null });
    for (const s of jobsOf.stat) {
      expect(listing[s.jobId]).toMatchObject({ status: 'Succeeded', delegated_to: s.delegatedTo });
      expect(listing[s.jobId].finish_time).not.toBeNull();
      const { text, status } = await jobsApi(a.client).log('stat', s.jobId);
      expect(status).toBe('Succeeded');
      expect(text).toContain(`marker=${s.marker} ran-on=stat-${s.delegatedTo}`);
      expect(text).toContain(`done ${s.marker}`);
    }
    const target = jobsOf.stat[2];
    const cli = await runCli([
      'logs',
      'stat',
      target.jobId,
      '--endpoint',
      a.url,
      '--user',
      'oscar',
      '--password',
      PW,
    ]);
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).toContain(`marker=${target.marker} ran-on=stat-c`);
    const jobs = await runCli([
      'jobs',
      'stat',
      '--endpoint',
      a.url,
      '--user',
      'oscar',
      '--password',
      PW,
      '--json',
    ]);
    expect(jobs.code, jobs.stderr).toBe(0);
    expect(JSON.parse(jobs.stdout)[target.jobId]).toMatchObject({ status: 'Succeeded', delegated_to: 'c' });
  }, 60_000);
});
