// Record-and-compare: the Job, ConfigMap and Secret the Kubernetes executor builds for a few
// FDLs, against expected objects written from OSCAR's job construction (pkg/handlers/job.go,
// pkg/types/service.go), each validated against the official OpenAPI schemas.
import { readFileSync } from 'node:fs';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret } from 'kubernetes-models/v1/Secret';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { jobStorageProviders } from '../../src/adapters/executor-kubernetes/kube-executor.ts';
import {
  buildJobObjects,
  inputFromService,
  kubeJobName,
} from '../../src/adapters/executor-kubernetes/objects.ts';

const JOB_ID = '5f0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b';
const EVENT = '{"Records":[{"s3":{"bucket":{"name":"hello"},"object":{"key":"in/a.txt"}}}]}';

function validateAll(objs: ReturnType<typeof buildJobObjects>) {
  new Job(objs.job as never).validate();
  new ConfigMap(objs.configMap as never).validate();
  if (objs.secret) new Secret(objs.secret as never).validate();
  if (objs.storageSecret) new Secret(objs.storageSecret as never).validate();
}

describe('Kubernetes job objects', () => {
  it('hello example: the Job, ConfigMap and (no) Secret OSCAR would build', () => {
    const fdl = parse(readFileSync('examples/hello/fdl.yaml', 'utf8'));
    const svc = fdl.functions.oscar[0].local;
    const script = readFileSync('examples/hello/script.sh', 'utf8');
    const objs = buildJobObjects(
      inputFromService(
        { ...svc, script, log_level: 'INFO' },
        { namespace: 'oscar-svc', jobId: JOB_ID, event: EVENT, timeoutMs: 300_000 },
      ),
    );
    validateAll(objs);
    const own = { oscar_service: 'hello', oscar_job: JOB_ID, 'app.kubernetes.io/managed-by': 'flotilla' };
    expect(objs.secret).toBeUndefined();
    expect(objs.configMap).toEqual({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: `${JOB_ID}-config`, namespace: 'oscar-svc', labels: own },
      data: {
        'script.sh': script,
        'function_config.yaml': expect.any(String),
      },
    });
    expect(parse(objs.configMap.data!['function_config.yaml']!)).toEqual({
      name: 'hello',
      image: 'alpine',
      script: '/oscar/config/script.sh',
      log_level: 'INFO',
      input: [{ storage_provider: 'minio.default', path: 'hello/in' }],
      output: [{ storage_provider: 'minio.default', path: 'hello/out' }],
    });
    expect(objs.job).toEqual({
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: JOB_ID, namespace: 'oscar-svc', labels: own },
      spec: {
        backoffLimit: 0,
        ttlSecondsAfterFinished: 3600,
        activeDeadlineSeconds: 300,
        template: {
          metadata: { labels: own },
          spec: {
            restartPolicy: 'Never',
            automountServiceAccountToken: false,
            initContainers: [
              {
                name: 'oscar-supervisor',
                image: 'ghcr.io/grycap/faas-supervisor:latest',
                command: [
                  '/bin/sh',
                  '-c',
                  'cp /supervisor /oscar/bin/supervisor && chmod 0555 /oscar/bin/supervisor',
                ],
                volumeMounts: [{ name: 'oscar-volume', mountPath: '/oscar/bin' }],
              },
            ],
            containers: [
              {
                name: 'oscar-container',
                image: 'alpine',
                imagePullPolicy: 'Always',
                command: ['/bin/sh'],
                args: ['-c', 'echo $EVENT | /oscar/bin/supervisor'],
                env: [
                  { name: 'GREETING', value: 'Hello' },
                  { name: 'EVENT', value: EVENT },
                  { name: 'JOB_UUID', value: JOB_ID },
                  { name: 'OSCAR_SERVICE_NAME', value: 'hello' },
                  { name: 'RESOURCE_ID', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
                ],
                resources: {
                  limits: { cpu: '0.5', memory: '256Mi' },
                  requests: { cpu: '0.5', memory: '256Mi' },
                },
                volumeMounts: [
                  { name: 'oscar-config', mountPath: '/oscar/config', readOnly: true },
                  { name: 'oscar-volume', mountPath: '/oscar/bin', readOnly: true },
                ],
              },
            ],
            volumes: [
              { name: 'oscar-config', configMap: { name: `${JOB_ID}-config` } },
              { name: 'oscar-volume', emptyDir: {} },
            ],
          },
        },
      },
    });
  });

  it('secrets go to a Secret through envFrom, never the refresh token, never a ConfigMap or annotation', () => {
    const objs = buildJobObjects(
      inputFromService(
        {
          name: 'grayify',
          image: 'ghcr.io/example/grayify:1',
          script: 'echo hi\n',
          labels: { team: 'imaging', oscar_job: 'spoofed' },
          annotations: { 'example.org/owner': 'ana' },
          environment: {
            variables: { B: '2', A: '1' },
            secrets: { API_KEY: 'k-123-secret', refresh_token: 'rt-never-in-a-job' },
          },
        },
        { namespace: 'ns1', jobId: JOB_ID, event: 'aGVsbG8=', extraEnv: { STORAGE_OBJECT_KEY: 'a.txt' } },
      ),
    );
    validateAll(objs);
    expect(objs.secret).toEqual({
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'Opaque',
      metadata: {
        name: `${JOB_ID}-env`,
        namespace: 'ns1',
        labels: { oscar_service: 'grayify', oscar_job: JOB_ID, 'app.kubernetes.io/managed-by': 'flotilla' },
      },
      data: { API_KEY: Buffer.from('k-123-secret').toString('base64') },
    });
    const pod = objs.job.spec!.template.spec!;
    const container = pod.containers[0]!;
    expect(container.envFrom).toEqual([{ secretRef: { name: `${JOB_ID}-env` } }]);
    expect(container.env!.map((e) => e.name)).toEqual([
      'A',
      'B',
      'STORAGE_OBJECT_KEY',
      'EVENT',
      'JOB_UUID',
      'OSCAR_SERVICE_NAME',
      'RESOURCE_ID',
    ]);
    // ours win over a user's label of the same name; the user's others are kept
    expect(objs.job.metadata!.labels).toMatchObject({ team: 'imaging', oscar_job: JOB_ID });
    expect(objs.job.metadata!.annotations).toEqual({ 'example.org/owner': 'ana' });
    expect(objs.job.spec!.template.metadata!.annotations).toEqual({ 'example.org/owner': 'ana' });
    expect(container.resources).toEqual({});
    expect(objs.job.spec!.activeDeadlineSeconds).toBeUndefined();
    const everythingButSecret = JSON.stringify([objs.job, objs.configMap]);
    expect(everythingButSecret).not.toContain('k-123-secret');
    expect(JSON.stringify(objs)).not.toContain('rt-never-in-a-job');
    expect(JSON.stringify(objs)).not.toContain(Buffer.from('rt-never-in-a-job').toString('base64'));
  });

  it('names objects after a job id that is not a DNS label by a stable hash, keeping the id in JOB_UUID', () => {
    const id = 'a.Client-42:retry';
    const objs = buildJobObjects(
      inputFromService({ name: 'x', script: 'true' }, { namespace: 'n', jobId: id, event: '' }),
    );
    validateAll(objs);
    const name = kubeJobName(id);
    expect(name).toMatch(/^job-[0-9a-f]{40}$/);
    expect(kubeJobName(id)).toBe(name);
    expect(kubeJobName(JOB_ID)).toBe(JOB_ID);
    expect(objs.job.metadata).toMatchObject({ name, labels: { oscar_job: name } });
    expect(objs.configMap.metadata!.name).toBe(`${name}-config`);
    expect(objs.job.spec!.template.spec!.containers[0]!.env).toContainEqual({ name: 'JOB_UUID', value: id });
  });

  it('the schemas catch a broken object (the validation is real)', () => {
    const objs = buildJobObjects(
      inputFromService({ name: 'x', script: 'true' }, { namespace: 'n', jobId: JOB_ID, event: '' }),
    );
    const broken = structuredClone(objs.job) as { spec: { backoffLimit: unknown } };
    broken.spec.backoffLimit = 'zero';
    expect(() => new Job(broken as never).validate()).toThrow(/backoffLimit/);
  });

  it("storage keys go into function_config.yaml in a -storage Secret, projected at OSCAR's path", () => {
    const scoped = {
      endpoint: 'http://s3.example:9000',
      verify: true,
      access_key: 'FSCOPED',
      secret_key: 'scoped-secret-value',
      region: 'us-east-1',
    };
    const providers = jobStorageProviders(
      {
        minio: { default: { access_key: 'user-wrote-this' }, other: { endpoint: 'https://m.example' } },
        s3: { aws: { access_key: 'AK', secret_key: 'own-aws-secret', region: 'eu-west-1' } },
      },
      scoped,
    );
    // minio.default is always this cluster's; the service's own providers are kept.
    expect(providers).toEqual({
      minio: { other: { endpoint: 'https://m.example' }, default: scoped },
      s3: { aws: { access_key: 'AK', secret_key: 'own-aws-secret', region: 'eu-west-1' } },
    });
    expect(jobStorageProviders({ minio: { default: { access_key: 'x' } } }, undefined)).toEqual({});
    const objs = buildJobObjects({
      ...inputFromService(
        {
          name: 'hello',
          script: 'true',
          input: [{ storage_provider: 'minio.default', path: 'hello/in' }],
        },
        { namespace: 'n', jobId: JOB_ID, event: '' },
      ),
      storageProviders: providers,
    });
    validateAll(objs);
    expect(objs.configMap.data).toEqual({ 'script.sh': 'true' });
    expect(objs.storageSecret!.metadata!.name).toBe(`${JOB_ID}-storage`);
    const fdl = parse(
      Buffer.from(objs.storageSecret!.data!['function_config.yaml']!, 'base64').toString('utf8'),
    );
    expect(fdl).toMatchObject({ name: 'hello', storage_providers: providers });
    const pod = objs.job.spec!.template.spec!;
    expect(pod.volumes!.find((v) => v.name === 'oscar-config')).toEqual({
      name: 'oscar-config',
      projected: {
        sources: [{ configMap: { name: `${JOB_ID}-config` } }, { secret: { name: `${JOB_ID}-storage` } }],
      },
    });
    // the keys are not env variables (no envFrom of the storage Secret)
    expect(pod.containers[0]!.envFrom).toBeUndefined();
    const visible = JSON.stringify([objs.job, objs.configMap]);
    for (const secret of ['scoped-secret-value', 'own-aws-secret']) expect(visible).not.toContain(secret);
  });
});
