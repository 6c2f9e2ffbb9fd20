// Storage inside the pod (DESIGN §3.2, §3.3): with the Kubernetes executor faas-supervisor
// reaches the store itself, from the storage_providers of its function_config.yaml. A real
// manager with its embedded S3 store against the fake API server's shell kubelet: the pod's
// script finds keys that read its service's input and write under its output, and nothing
// else; the keys are not the admin's and sit only in a Secret.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { type FakeKubeApi, startFakeKubeApi } from '../support/fake-kube-api.ts';
import { basic, startInProcess, type TestManager } from '../support/in-process.ts';
import { waitFor } from '../support/wait.ts';

let fake: FakeKubeApi;
let tm: TestManager;
let admin: { endpoint: string; access_key: string; secret_key: string; region: string };
const dir = mkdtempSync(join(tmpdir(), 'flotilla-kube-s3-'));
const call = (opts: InjectOptions) =>
  tm.manager.http.inject({ ...opts, headers: { authorization: basic(), ...opts.headers } });

const PROBES = [
  'read:kin/in/photo.txt',
  'write:kout/out/result.txt',
  'read:kother/secret.txt',
  'write:kin/in/planted.txt',
  'write:kother/x.txt',
  'write:kout/elsewhere/x.txt',
  'list:kin',
];

beforeAll(async () => {
  fake = await startFakeKubeApi({ kubelet: 'shell' });
  const kubeconfig = join(dir, 'kubeconfig');
  fake.writeKubeconfig(kubeconfig);
  tm = await startInProcess({ executor: 'kubernetes', kubeconfig, namespace: 'jobs' });
  admin = ((await call({ method: 'GET', url: '/system/config' })).json() as { minio_provider: typeof admin })
    .minio_provider;
  // Objects in place before the service exists, so no upload triggers a job.
  const s3 = new S3Client({
    endpoint: admin.endpoint,
    region: admin.region,
    forcePathStyle: true,
    credentials: { accessKeyId: admin.access_key, secretAccessKey: admin.secret_key },
  });
  for (const bucket of ['kin', 'kother']) {
    const res = await call({ method: 'POST', url: '/system/buckets', payload: { bucket_name: bucket } });
    expect(res.statusCode, res.body).toBeLessThan(300);
  }
  await s3.send(new PutObjectCommand({ Bucket: 'kin', Key: 'in/photo.txt', Body: 'input' }));
  await s3.send(new PutObjectCommand({ Bucket: 'kother', Key: 'secret.txt', Body: 'not yours' }));
  s3.destroy();
  const res = await call({
    method: 'POST',
    url: '/system/services',
    payload: {
      name: 'kube-s3',
      image: 'alpine',
      script: 'node "$PROBE_SCRIPT"\n',
      input: [{ storage_provider: 'minio.default', path: 'kin/in' }],
      output: [{ storage_provider: 'minio.default', path: 'kout/out' }],
      environment: {
        variables: {
          PROBE_SCRIPT: resolve('test/support/pod-s3-probe.mjs'),
          REPO_ROOT: resolve('.'),
          PROBES: PROBES.join(' '),
        },
      },
    },
  });
  expect(res.statusCode, res.body).toBe(201);
}, 60_000);

afterAll(async () => {
  await tm?.close();
  await fake?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('storage keys in a Kubernetes pod', () => {
  it("read the service's input and write under its output, nothing else; only in a Secret", async () => {
    const svc = (await call({ method: 'GET', url: '/system/services/kube-s3' })).json() as { token: string };
    const res = await tm.manager.http.inject({
      method: 'POST',
      url: '/job/kube-s3',
      headers: { authorization: `Bearer ${svc.token}` },
      payload: '{}',
    });
    expect(res.statusCode, res.body).toBe(201);
    const { job_id: jobId } = res.json() as { job_id: string };
    const status = await waitFor(
      async () => {
        const list = (await call({ method: 'GET', url: '/system/logs/kube-s3' })).json() as {
          jobs: Record<string, { status: string }>;
        };
        const s = list.jobs[jobId]?.status;
        return s === 'Succeeded' || s === 'Failed' ? s : undefined;
      },
      60_000,
      'the job to end',
    );
    const log = (await call({ method: 'GET', url: `/system/logs/kube-s3/${jobId}` })).body;
    expect(status, log).toBe('Succeeded');
    const line = log.split('\n').find((l) => l.startsWith('PROBE '));
    expect(line, log).toBeDefined();
    expect(JSON.parse(line!.slice('PROBE '.length))).toEqual({
      'read:kin/in/photo.txt': 'ok',
      'write:kout/out/result.txt': 'ok',
      'read:kother/secret.txt': 'denied',
      'write:kin/in/planted.txt': 'denied',
      'write:kother/x.txt': 'denied',
      'write:kout/elsewhere/x.txt': 'denied',
      'list:kin': 'denied',
    });

    // The keys: in the -storage Secret's function_config.yaml, OSCAR's shape, not the admin's.
    const posted = fake.received.filter((r) => r.object.metadata.labels?.oscar_job === jobId);
    const storageSecret = posted.find(
      (r) => r.kind === 'secrets' && r.object.metadata.name.endsWith('-storage'),
    );
    expect(storageSecret).toBeDefined();
    const fdl = parse(
      Buffer.from(storageSecret!.object.data['function_config.yaml'], 'base64').toString('utf8'),
    ) as { storage_providers: { minio: { default: typeof admin } } };
    const keys = fdl.storage_providers.minio.default;
    expect(keys.endpoint).toBe(admin.endpoint);
    expect(keys.access_key).not.toBe(admin.access_key);
    expect(keys.secret_key).not.toBe(admin.secret_key);
    for (const r of posted.filter((p) => p.kind !== 'secrets')) {
      const text = JSON.stringify(r.object);
      expect(text).not.toContain(keys.secret_key);
      expect(text).not.toContain(admin.secret_key);
    }
    expect(log).not.toContain(keys.secret_key);
  }, 90_000);
});
