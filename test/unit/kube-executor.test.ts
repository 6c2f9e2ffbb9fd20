// The Kubernetes executor against the fake API server with a hand-driven kubelet: one watch
// for many jobs, a dropped watch resumed from the last resourceVersion, a 410 answered by a
// re-list, a pod deleted while the watch was down, a refused object, and where secrets end up.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createKubernetesExecutor,
  type KubernetesExecutor,
  type KubeServiceSpec,
} from '../../src/adapters/executor-kubernetes/index.ts';
import { userNamespace } from '../../src/adapters/executor-kubernetes/namespaces.ts';
import type { ExecutionRequest } from '../../src/core/ports.ts';
import { type FakeKubeApi, startFakeKubeApi } from '../support/fake-kube-api.ts';
import { waitFor } from '../support/wait.ts';

const NS = 'svc';
let fake: FakeKubeApi;
let executor: KubernetesExecutor;

async function setup(
  spec: KubeServiceSpec = { image: 'alpine', cpu: '0.5', memory: '128Mi' },
  extra: { watchIdleMs?: number; maxLiveLogs?: number; maxInFlight?: number } = {},
) {
  fake = await startFakeKubeApi({ kubelet: 'manual' });
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions(fake.kubeconfig(NS));
  executor = createKubernetesExecutor({
    kubeConfig,
    namespace: NS,
    resolveService: async () => spec,
    rewatchDelayMs: 20,
    ...extra,
  });
}

afterEach(async () => {
  await executor?.close();
  await fake?.close();
});

const request = (over: Partial<ExecutionRequest> = {}): ExecutionRequest => ({
  jobId: randomUUID(),
  serviceName: 'svc1',
  script: 'echo hi',
  event: '{}',
  env: {},
  cpuMillis: 200,
  memoryBytes: 256 * 1024 ** 2,
  timeoutMs: 20_000,
  ...over,
});

const podOf = (jobId: string, timeoutMs = 5_000) =>
  waitFor(
    async () => fake.list('pods', NS).find((p) => p.metadata.labels['job-name'] === jobId),
    timeoutMs,
    `pod of ${jobId}`,
  );

describe('Kubernetes executor on the fake API server', () => {
  it('follows 20 concurrent jobs with one watch connection', async () => {
    await setup();
    const reqs = Array.from({ length: 20 }, () => request());
    const runs = reqs.map((r) => executor.run(r));
    await Promise.all(reqs.map((r) => podOf(r.jobId)));
    reqs.forEach((r, i) => {
      fake.setPod(NS, r.jobId, { phase: 'Succeeded', exitCode: 0, log: `job ${i}\n` });
    });
    const results = await Promise.all(runs);
    expect(results.map((r) => r.stdout)).toEqual(reqs.map((_, i) => `job ${i}\n`));
    expect(fake.watchRequests).toHaveLength(1);
    expect(fake.watchRequests[0]!.query).toMatchObject({
      labelSelector: 'app.kubernetes.io/managed-by=flotilla',
    });
    expect(executor.watchStats()).toMatchObject({ opened: 1, relists: 1 });
  });

  it('a burst of 300 jobs: at most maxInFlight API calls at once, few connections, none dropped', async () => {
    await setup(undefined, { maxInFlight: 16 });
    const retriesBefore = executor.watchStats().retries;
    const reqs = Array.from({ length: 300 }, () => request());
    const runs = reqs.map((r) => executor.run(r));
    await waitFor(async () => fake.list('jobs', NS).length === 300 || undefined, 30_000, 'all Jobs posted');
    for (const r of reqs) fake.setPod(NS, r.jobId, { phase: 'Succeeded', exitCode: 0, log: 'ok\n' });
    const results = await Promise.all(runs);
    expect(results.every((r) => r.exitCode === 0)).toBe(true);
    expect(fake.maxInFlight()).toBeLessThanOrEqual(16);
    expect(fake.connections()).toBeLessThanOrEqual(16 + 4); // + the watch, a re-list, slack
    expect(executor.watchStats().retries - retriesBefore).toBe(0);
  }, 60_000);

  it('resumes a dropped watch from the last resourceVersion it saw and misses no transition', async () => {
    await setup();
    const req = request();
    const run = executor.run(req);
    await podOf(req.jobId);
    fake.setPod(NS, req.jobId, { phase: 'Running' });
    const lastSeen = fake.get('pods', NS, (await podOf(req.jobId)).metadata.name).metadata.resourceVersion;
    await waitFor(async () => executor.watchStats().resourceVersion === lastSeen, 2_000, 'the Running event');
    fake.dropWatches();
    fake.setPod(NS, req.jobId, { phase: 'Failed', exitCode: 7, log: 'boom\n' }); // while no watch is open
    const result = await run;
    expect(result).toMatchObject({ exitCode: 7, cancelled: false, timedOut: false, stdout: 'boom\n' });
    expect(fake.watchRequests).toHaveLength(2);
    expect(fake.watchRequests[1]!.query.resourceVersion).toBe(lastSeen);
    expect(executor.watchStats().relists).toBe(1);
  });

  it('streams the pod log to onLog while the job runs, each byte once', async () => {
    await setup();
    const chunks: string[] = [];
    const req = request({ onLog: (c) => chunks.push(c) });
    const run = executor.run(req);
    await podOf(req.jobId);
    fake.setPod(NS, req.jobId, { phase: 'Running', log: 'first\n' });
    await waitFor(async () => chunks.join('') === 'first\n', 3_000, 'the live log');
    fake.setPod(NS, req.jobId, { phase: 'Running', log: 'second\n' });
    await waitFor(async () => chunks.join('') === 'first\nsecond\n', 3_000, 'more live log');
    fake.setPod(NS, req.jobId, { phase: 'Succeeded', exitCode: 0, log: 'third\n' });
    const result = await run;
    expect(result.stdout).toBe('first\nsecond\nthird\n');
    expect(chunks.join('')).toBe('first\nsecond\nthird\n');
  });

  it('follows at most maxLiveLogs logs at once; the others hand their log over at the end', async () => {
    await setup(undefined, { maxLiveLogs: 1 });
    const a: string[] = [];
    const b: string[] = [];
    const reqA = request({ onLog: (c) => a.push(c) });
    const reqB = request({ onLog: (c) => b.push(c) });
    const runA = executor.run(reqA);
    await podOf(reqA.jobId);
    fake.setPod(NS, reqA.jobId, { phase: 'Running', log: 'a\n' });
    await waitFor(async () => a.join('') === 'a\n', 3_000, 'live log of a');
    const runB = executor.run(reqB);
    await podOf(reqB.jobId);
    fake.setPod(NS, reqB.jobId, { phase: 'Running', log: 'b\n' });
    fake.setPod(NS, reqA.jobId, { phase: 'Running', log: 'a2\n' });
    await waitFor(async () => a.join('') === 'a\na2\n', 3_000, 'more live log of a');
    expect(b).toEqual([]); // b is not followed: a holds the one live slot
    fake.setPod(NS, reqB.jobId, { phase: 'Succeeded', exitCode: 0 });
    fake.setPod(NS, reqA.jobId, { phase: 'Succeeded', exitCode: 0 });
    await Promise.all([runA, runB]);
    expect(b.join('')).toBe('b\n');
    expect(a.join('')).toBe('a\na2\n');
    const podA = fake.logRequests.find((r) => r.pod.startsWith(reqA.jobId))!.pod;
    expect(fake.logRequests.filter((r) => r.follow).map((r) => r.pod)).toEqual([podA]);
  });

  it('re-opens a watch that went silent without a reset, and sees what it missed', async () => {
    await setup(undefined, { watchIdleMs: 300 });
    const req = request();
    const run = executor.run(req);
    await podOf(req.jobId);
    await waitFor(async () => fake.openWatches() === 1, 2_000);
    fake.stallWatches(); // the connection stays open; nothing more arrives on it
    fake.setPod(NS, req.jobId, { phase: 'Succeeded', exitCode: 0, log: 'late\n' });
    const result = await run;
    expect(result).toMatchObject({ exitCode: 0, stdout: 'late\n' });
    expect(fake.watchRequests.length).toBeGreaterThanOrEqual(2);
    expect(executor.watchStats().relists).toBe(1);
  });

  it('re-lists when the resourceVersion it resumes from is too old (410) and still sees the end', async () => {
    await setup();
    const req = request();
    const run = executor.run(req);
    await podOf(req.jobId);
    fake.dropWatches();
    fake.setPod(NS, req.jobId, { phase: 'Succeeded', exitCode: 0, log: 'done\n' });
    fake.compact();
    const result = await run;
    expect(result).toMatchObject({ exitCode: 0, stdout: 'done\n' });
    expect(executor.watchStats().relists).toBe(2);
    // after the 410: a fresh watch from the re-list's resourceVersion
    expect(fake.watchRequests.length).toBeGreaterThanOrEqual(3);
  });

  it('reports a job whose pod was deleted while the watch was down as cancelled', async () => {
    await setup();
    const req = request();
    const run = executor.run(req);
    const pod = await podOf(req.jobId);
    await waitFor(async () => fake.openWatches() === 1, 2_000);
    fake.dropWatches();
    // someone else deletes the pod (kubectl delete pod), then history is compacted
    await fetch(`${fake.url}/api/v1/namespaces/${NS}/pods/${pod.metadata.name}`, { method: 'DELETE' });
    fake.compact();
    const result = await run;
    expect(result).toMatchObject({ cancelled: true, exitCode: null });
  });

  it('surfaces the API server 422 and leaves nothing behind', async () => {
    await setup({ image: 'alpine', labels: { team: 5 as unknown as string } });
    const req = request({ env: { API_KEY: 'k-secret-value' } });
    const err = await executor.run(req).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(
      /cannot create job .*: 422: Job\.batch ".*" is invalid: .*labels\/team must be string/,
    );
    expect(err?.message).not.toContain('k-secret-value');
    expect(fake.received.map((r) => [r.kind, r.status])).toEqual([
      ['configmaps', 201],
      ['secrets', 201],
      ['jobs', 422],
    ]);
    expect(fake.list('configmaps', NS)).toEqual([]);
    expect(fake.list('secrets', NS)).toEqual([]);
  });

  it('puts the service environment only in the Secret, never in the Job or ConfigMap', async () => {
    await setup({ image: 'alpine', annotations: { 'example.org/a': 'b' } });
    const req = request({ env: { API_KEY: 'k-secret-value' }, extraEnv: { STORAGE_OBJECT_KEY: 'a.txt' } });
    const run = executor.run(req);
    await podOf(req.jobId);
    fake.setPod(NS, req.jobId, { phase: 'Succeeded', exitCode: 0 });
    await run;
    const byKind = (k: string) =>
      fake.received.filter((r) => r.kind === k).map((r) => JSON.stringify(r.object));
    expect(byKind('jobs').join()).not.toContain('k-secret-value');
    expect(byKind('configmaps').join()).not.toContain('k-secret-value');
    expect(byKind('secrets').join()).toContain(Buffer.from('k-secret-value').toString('base64'));
    expect(byKind('jobs').join()).toContain('STORAGE_OBJECT_KEY');
  });

  it('deletes the Job with its pod when the job times out', async () => {
    await setup();
    const req = request({ timeoutMs: 300 });
    const run = executor.run(req);
    await podOf(req.jobId);
    fake.setPod(NS, req.jobId, { phase: 'Running', log: 'working\n' });
    const result = await run;
    expect(result).toMatchObject({ timedOut: true, cancelled: false, stdout: 'working\n' });
    await waitFor(
      async () => fake.list('pods', NS).length === 0 && fake.list('jobs', NS).length === 0,
      3_000,
      'job and pod gone',
    );
  });

  /** Starts `jobId` from a separate process and SIGKILLs it once the Job's pod exists. */
  const crashAfterStart = async (jobId: string) => {
    const child = spawn(
      process.execPath,
      ['bin/run-ts.mjs', 'test/support/kube-run-child.ts', fake.url, NS, jobId],
      {
        stdio: 'ignore',
      },
    );
    try {
      // a fresh process loads tsx and the client first: slow on a busy machine
      await podOf(jobId, 30_000);
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
  };

  it('after a crash, running the job again re-attaches to its Job instead of starting a second', async () => {
    await setup();
    const req = request({ env: { K: 'v' } });
    await crashAfterStart(req.jobId);
    fake.setPod(NS, req.jobId, { phase: 'Running', log: 'half\n' });
    const run = executor.run(req);
    await waitFor(
      async () => fake.received.filter((r) => r.kind === 'jobs').length === 2,
      5_000,
      'second POST',
    );
    fake.setPod(NS, req.jobId, { phase: 'Succeeded', exitCode: 0, log: 'done\n' });
    const result = await run;
    expect(result).toMatchObject({ exitCode: 0, stdout: 'half\ndone\n' });
    expect(fake.received.filter((r) => r.kind === 'jobs').map((r) => r.status)).toEqual([201, 409]);
    expect(fake.list('pods', NS)).toEqual([]);
    expect(fake.list('jobs', NS)).toEqual([]);
  });

  it('re-attaching to a Job that finished while the manager was down reports how it ended', async () => {
    await setup();
    const req = request({ env: { K: 'v' } });
    await crashAfterStart(req.jobId);
    fake.setPod(NS, req.jobId, { phase: 'Failed', exitCode: 2, log: 'went wrong\n' });
    const result = await executor.run(req);
    expect(result).toMatchObject({ exitCode: 2, cancelled: false, stdout: 'went wrong\n' });
    expect(fake.list('configmaps', NS)).toEqual([]);
    expect(fake.list('secrets', NS)).toEqual([]);
  });
});

describe('releasing a per-user namespace', () => {
  it("kept while another of the owner's USER services lives there; deleted with the last, its pod watch closed", async () => {
    const svc = { name: 'svc1', owner: 'u1', isolation_level: 'USER' };
    await setup({ image: 'alpine', owner: 'u1', isolation_level: 'USER' });
    const ns = userNamespace(NS, 'u1');
    const req = request();
    const run = executor.run(req);
    const pod = await waitFor(
      async () => fake.list('pods', ns).find((p) => p.metadata.labels['job-name'] === req.jobId),
      5_000,
      'pod in the user namespace',
    );
    expect(pod).toBeDefined();
    fake.setPod(ns, req.jobId, { phase: 'Succeeded', exitCode: 0, log: 'ok\n' });
    expect((await run).exitCode).toBe(0);
    expect(executor.watchStats().namespaces).toContain(ns);
    expect(fake.openWatches()).toBe(1);
    // Another USER service of u1 still there; one of another owner or in the shared namespace does not count.
    expect(
      await executor.releaseNamespace(svc, [{ name: 'svc2', owner: 'u1', isolation_level: 'user' }]),
    ).toBe('kept');
    expect(fake.namespaces().some((n) => n.metadata.name === ns)).toBe(true);
    expect(
      await executor.releaseNamespace(svc, [
        { name: 'svc2', owner: 'u2', isolation_level: 'USER' },
        { name: 'svc3', owner: 'u1', isolation_level: 'SERVICE' },
      ]),
    ).toBe('deleted');
    expect(fake.namespaces().some((n) => n.metadata.name === ns)).toBe(false);
    expect(executor.watchStats().namespaces).not.toContain(ns);
    await waitFor(async () => fake.openWatches() === 0 || undefined, 5_000, 'the watch closed');
    const opened = executor.watchStats().opened;
    await new Promise((r) => setTimeout(r, 200));
    expect(executor.watchStats().opened).toBe(opened); // not re-opened
    // The shared namespace is never released; an already-gone namespace is fine.
    expect(await executor.releaseNamespace({ name: 'x', owner: 'u1' }, [])).toBe('kept');
    expect(await executor.releaseNamespace(svc, [])).toBe('kept');
  });
});

describe('a released namespace still Terminating', () => {
  it('a new exposed USER service of that owner meanwhile: 503 saying so; once it is gone, made again', async () => {
    fake = await startFakeKubeApi({ kubelet: 'manual', namespaceTerminationMs: 400 });
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromOptions(fake.kubeconfig(NS));
    executor = createKubernetesExecutor({ kubeConfig, namespace: NS, resolveService: async () => ({}) });
    const svc = {
      name: 'web1',
      image: 'alpine',
      script: 'sleep 1000',
      owner: 'u1',
      isolation_level: 'USER',
      token: 't'.repeat(64),
      expose: { api_port: 8080 },
    } as unknown as Parameters<KubernetesExecutor['exposed']['apply']>[0];
    const ns = userNamespace(NS, 'u1');
    await executor.exposed.apply(svc);
    expect(fake.get('deployments', ns, 'web1-dpl')).toBeDefined();
    await executor.exposed.remove(svc);
    expect(await executor.releaseNamespace(svc, [])).toBe('deleted');
    expect(fake.namespaces().find((n) => n.metadata.name === ns)?.status.phase).toBe('Terminating');
    await expect(executor.exposed.apply(svc)).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      message: expect.stringContaining(`namespace ${ns} is being deleted`),
    });
    await waitFor(
      async () => !fake.namespaces().some((n) => n.metadata.name === ns) || undefined,
      5_000,
      'namespace gone',
    );
    await executor.exposed.apply(svc);
    expect(fake.namespaces().find((n) => n.metadata.name === ns)?.status.phase).toBe('Active');
    expect(fake.get('deployments', ns, 'web1-dpl')).toBeDefined();
  });
});
