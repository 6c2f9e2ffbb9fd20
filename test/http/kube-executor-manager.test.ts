// A whole manager with `--executor kubernetes --kubeconfig … --namespace …` against the fake
// API server: capacity in /system/status comes from the fake's nodes; /job goes through the
// durable queue and runner to a Job whose pod runs the script; its log and status come back
// through /system/logs; usage from the fake's metrics.k8s.io and its /version; /run answers with the pod log; secrets reach only the Secret (the
// environment's, and the -storage one with the supervisor's storage keys).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeKubeApi, fakeNode, startFakeKubeApi } from '../support/fake-kube-api.ts';
import { basic, startInProcess, type TestManager } from '../support/in-process.ts';
import { waitFor } from '../support/wait.ts';

let fake: FakeKubeApi;
let tm: TestManager;
const dir = mkdtempSync(join(tmpdir(), 'flotilla-kube-mgr-'));
const call = (opts: InjectOptions) =>
  tm.manager.http.inject({ ...opts, headers: { authorization: basic(), ...opts.headers } });

beforeAll(async () => {
  fake = await startFakeKubeApi({
    kubelet: 'shell',
    nodes: [fakeNode('k1', '4', '8Gi'), fakeNode('k2', '2', '4Gi')],
    version: 'v1.30.4',
    // k2 has no metrics yet (a node metrics-server has not scraped): requests stand in.
    nodeMetrics: { k1: { cpu: '1500m', memory: '2Gi' } },
  });
  const kubeconfig = join(dir, 'kubeconfig');
  fake.writeKubeconfig(kubeconfig);
  tm = await startInProcess({ executor: 'kubernetes', kubeconfig, namespace: 'jobs' });
  const res = await call({
    method: 'POST',
    url: '/system/services',
    payload: {
      name: 'kube-hello',
      image: 'ghcr.io/example/hello:1',
      cpu: '0.5',
      memory: '128Mi',
      script: 'echo "hello $GREETING"\nprintf "%s\\n" "$EVENT"\n',
      environment: { variables: { GREETING: 'world' }, secrets: { API_KEY: 'kube-s3cr3t-value' } },
    },
  });
  expect(res.statusCode, res.body).toBe(201);
});

afterAll(async () => {
  await tm?.close();
  await fake?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('manager with the Kubernetes executor', () => {
  it("shows the cluster's nodes in /system/status", async () => {
    const res = await call({ method: 'GET', url: '/system/status' });
    expect(res.statusCode, res.body).toBe(200);
    const { cluster } = res.json() as { cluster: { nodes_count: number; nodes: Array<{ name: string }> } };
    expect(cluster.nodes_count).toBe(2);
    expect(cluster.nodes.map((n) => n.name)).toEqual(['k1', 'k2']);
  });

  it("shows measured usage from metrics.k8s.io and the API server's version", async () => {
    const status = (await call({ method: 'GET', url: '/system/status' })).json() as {
      cluster: {
        nodes: Array<{ name: string; cpu: { usage_cores: number }; memory: { usage_bytes: number } }>;
      };
    };
    const [k1, k2] = status.cluster.nodes;
    expect(k1).toMatchObject({
      name: 'k1',
      cpu: { usage_cores: 1500 },
      memory: { usage_bytes: 2 * 1024 ** 3 },
    });
    expect(k2).toMatchObject({ name: 'k2', cpu: { usage_cores: 0 }, memory: { usage_bytes: 0 } });
    const info = (await call({ method: 'GET', url: '/system/info' })).json() as {
      kubernetes_version: string;
    };
    expect(info.kubernetes_version).toBe('v1.30.4');
  });

  it('runs /job as a Job and brings its status and log back to /system/logs', async () => {
    const svc = (await call({ method: 'GET', url: '/system/services/kube-hello' })).json() as {
      token: string;
    };
    const res = await tm.manager.http.inject({
      method: 'POST',
      url: '/job/kube-hello',
      headers: { authorization: `Bearer ${svc.token}`, 'content-type': 'application/json' },
      payload: '{"x":1}',
    });
    expect(res.statusCode, res.body).toBe(201);
    const { job_id: jobId } = res.json() as { job_id: string };
    const status = await waitFor(
      async () => {
        const list = (await call({ method: 'GET', url: '/system/logs/kube-hello' })).json() as {
          jobs: Record<string, { status: string }>;
        };
        const s = list.jobs[jobId]?.status;
        return s === 'Succeeded' || s === 'Failed' ? s : undefined;
      },
      20_000,
      'the job to end',
    );
    const log = (await call({ method: 'GET', url: `/system/logs/kube-hello/${jobId}` })).body;
    expect(status, log).toBe('Succeeded');
    expect(log).toContain('hello world\n{"x":1}\n');
    const posted = fake.received.filter((r) => r.object.metadata.labels?.oscar_job === jobId);
    expect(posted.map((r) => [r.kind, r.status]).sort()).toEqual([
      ['configmaps', 201],
      ['jobs', 201],
      ['secrets', 201],
      ['secrets', 201],
    ]);
    for (const r of posted.filter((p) => p.kind !== 'secrets')) {
      expect(JSON.stringify(r.object)).not.toContain('kube-s3cr3t-value');
    }
    expect(log).not.toContain('kube-s3cr3t-value');
    await waitFor(
      async () => fake.list('jobs', 'jobs').length === 0 && fake.list('secrets', 'jobs').length === 0,
      5_000,
      'cleanup',
    );
  });

  it('DELETE /system/logs on a running job deletes its Job, and the pod goes with it', async () => {
    const created = await call({
      method: 'POST',
      url: '/system/services',
      payload: { name: 'kube-sleep', image: 'alpine', script: 'echo started\nsleep 60\n' },
    });
    expect(created.statusCode, created.body).toBe(201);
    const svc = (await call({ method: 'GET', url: '/system/services/kube-sleep' })).json() as {
      token: string;
    };
    const res = await tm.manager.http.inject({
      method: 'POST',
      url: '/job/kube-sleep',
      headers: { authorization: `Bearer ${svc.token}` },
      payload: 'aGk=',
    });
    expect(res.statusCode, res.body).toBe(201);
    const { job_id: jobId } = res.json() as { job_id: string };
    const running = () =>
      fake
        .list('pods', 'jobs')
        .find((p) => p.metadata.labels.oscar_job === jobId && p.status.phase === 'Running');
    await waitFor(async () => running(), 20_000, 'the pod to run');
    const del = await call({ method: 'DELETE', url: `/system/logs/kube-sleep/${jobId}` });
    expect(del.statusCode, del.body).toBe(204);
    await waitFor(
      async () => !fake.list('jobs', 'jobs').some((j) => j.metadata.name === jobId) && !running(),
      10_000,
      'the Job and its pod to go',
    );
    const left = fake.list('pods', 'jobs').filter((p) => p.metadata.labels.oscar_job === jobId);
    expect(left).toEqual([]);
  });

  it('answers /run with the pod log', async () => {
    const svc = (await call({ method: 'GET', url: '/system/services/kube-hello' })).json() as {
      token: string;
    };
    const res = await tm.manager.http.inject({
      method: 'POST',
      url: '/run/kube-hello',
      headers: { authorization: `Bearer ${svc.token}`, 'content-type': 'application/json' },
      payload: '{"y":2}',
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.body).toBe('hello world\n{"y":2}\n');
  });
});
