// OSCAR drop-in, single user (Basic admin): requests sent exactly as oscar-cli, oscar_python
// and OSCAR's Robot Framework suite send them (test/http/oscar-clients.ts names the sources),
// through the whole service, job, log, bucket, presign, federation and metrics lifecycle.
// Every answer is checked against OSCAR's v4.1.2 contract (documented differences named).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgliteStore } from '../../src/adapters/store-pglite/pglite-store.ts';
import { loadConfig } from '../../src/config/config.ts';
import { createManager } from '../../src/main/manager.ts';
import { ADMIN_PASSWORD, startInProcess, type TestManager } from '../support/in-process.ts';
import { basicAuth, expectOscar, JOB_NAME, send, waitForJob } from './oscar-clients.ts';

const ADMIN = basicAuth('oscar', ADMIN_PASSWORD);
const JOB_BODY_EXTENSION =
  'DESIGN §3: POST /job answers {job_id, cluster_id, delegated_to}; OSCAR answers an empty body';

let tm: TestManager;
let peer: TestManager;
let base: string;
let peerBase: string;

/** A manager that logs at info into its own ring only (GET /system/logs), not to stdout. */
const startLogging = async (clusterId: string): Promise<TestManager> => {
  const dataDir = await mkdtemp(join(tmpdir(), 'flotilla-compat-'));
  const config = loadConfig(
    { dataDir, adminPassword: ADMIN_PASSWORD, logLevel: 'info', port: '0', clusterId },
    {},
  );
  const store = await PgliteStore.open(undefined);
  const manager = await createManager(config, { store, logDestination: { write: () => {} } });
  return {
    manager,
    config,
    store,
    dataDir,
    async close() {
      await manager.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
};

beforeAll(async () => {
  [tm, peer] = await Promise.all([startLogging('compat-a'), startInProcess({ clusterId: 'compat-b' })]);
  [base, peerBase] = await Promise.all([tm.manager.listen(), peer.manager.listen()]);
});
afterAll(async () => {
  await Promise.all([tm?.close(), peer?.close()]);
});

/**
 * oscar-cli's body: `json.Marshal` of OSCAR's types.Service (grycap/oscar pkg/types/service.go)
 * read from an FDL, so every field it was not given is there as Go's zero value.
 */
const goMarshal = (fdl: Record<string, unknown>) => ({
  name: '',
  cluster_id: '',
  memory: '',
  cpu: '',
  total_memory: '',
  total_cpu: '',
  enable_gpu: false,
  enable_sgx: false,
  image_prefetch: false,
  synchronous: { min_scale: 0, max_scale: 0 },
  delegation: '',
  rescheduler_threshold: 0,
  log_level: '',
  image: '',
  alpine: false,
  token: '',
  file_stage_in: false,
  input: null,
  output: null,
  script: '',
  // v4.1's Expose: api_port ([]int, omitempty) absent, nodePort a nil list.
  expose: {
    min_scale: 0,
    max_scale: 0,
    cpu_threshold: 0,
    rewrite_target: false,
    nodePort: null,
    default_command: false,
    set_auth: false,
    health_path: '',
  },
  environment: { variables: null, secrets: null },
  annotations: null,
  vo: '',
  labels: null,
  owner: '',
  interlink_node_name: '',
  visibility: '',
  allowed_users: null,
  isolation_level: '',
  bucket_list: null,
  mount: { storage_provider: '', path: '', suffix: null, prefix: null, options: '' },
  volume_status: { enabled: false },
  ...fdl,
});

describe('oscar-cli: apply, run, job, logs (Go net/http, no Content-Type)', () => {
  const NAME = 'cli-cowsay';
  const fdlService = goMarshal({
    name: NAME,
    // oscar-cli sets cluster_id from the FDL's key (pkg/service/service.go ReadFDL).
    cluster_id: 'oscar-cluster',
    memory: '128Mi',
    cpu: '0.5',
    image: 'ghcr.io/grycap/cowsay',
    script: '#!/bin/sh\necho "moo: $(cat "$INPUT_FILE_PATH")"\n',
    // As OSCAR's own FDLs write it (grycap/oscar-tests data/00-cowsay.yaml).
    input: [{ storage_provider: 'minio', path: `${NAME}/input`, suffix: null, prefix: null, options: '' }],
    environment: { variables: { MODE: 'cli' }, secrets: null },
  });
  let token: string;
  let jobId: string;

  it('apply: GET (absent) then POST the marshalled struct → 201, empty body', async () => {
    // cmd/apply.go serviceExists: a GET first, POST when it fails.
    const absent = await send(base, 'oscar-cli', 'GET', `/system/services/${NAME}`, { authorization: ADMIN });
    expect(absent.status).toBe(404);
    expectOscar('GET', '/system/services/{serviceName}', absent);
    const res = await send(base, 'oscar-cli', 'POST', '/system/services', {
      authorization: ADMIN,
      body: JSON.stringify(fdlService),
    });
    expect(res.status, res.text).toBe(201);
    expect(res.text).toBe('');
    expectOscar('POST', '/system/services', res);
  });

  it('reads the service back as OSCAR defines it (defaults, minio.default, its label)', async () => {
    const res = await send(base, 'oscar-cli', 'GET', `/system/services/${NAME}`, { authorization: ADMIN });
    expect(res.status).toBe(200);
    expectOscar('GET', '/system/services/{serviceName}', res);
    expect(res.json).toMatchObject({
      name: NAME,
      cluster_id: 'oscar-cluster',
      cpu: '0.5',
      memory: '128Mi',
      log_level: 'INFO',
      visibility: 'private',
      owner: 'cluster_admin',
      input: [{ storage_provider: 'minio.default', path: `${NAME}/input` }],
      environment: { variables: { MODE: 'cli' } },
      labels: { oscar_service: NAME },
      storage_providers: { minio: { default: expect.any(Object) } },
    });
    token = res.json.token;
    expect(token).toMatch(/^[0-9a-f]{64}$/);
  });

  it('apply again: the service exists, so PUT → 204', async () => {
    const res = await send(base, 'oscar-cli', 'PUT', '/system/services', {
      authorization: ADMIN,
      body: JSON.stringify({ ...fdlService, memory: '256Mi' }),
    });
    expect(res.status, res.text).toBe(204);
    expectOscar('PUT', '/system/services', res);
  });

  it('service run: a chunked base64 body with the service token → the script output', async () => {
    // cmd/service_run.go: base64.NewEncoder over an io.Pipe; RunService sets only Authorization.
    const res = await send(base, 'oscar-cli', 'POST', `/run/${NAME}`, {
      authorization: `Bearer ${token}`,
      body: Buffer.from('hello from go').toString('base64'),
      chunked: true,
    });
    expect(res.status, res.text).toBe(200);
    expectOscar('POST', '/run/{serviceName}', res);
    expect(res.text).toContain('moo: hello from go');
  });

  it('service job: 201 and the job named <service>-<uuid>, as OSCAR names its Kubernetes Jobs', async () => {
    const res = await send(base, 'oscar-cli', 'POST', `/job/${NAME}`, {
      authorization: `Bearer ${token}`,
      body: Buffer.from('async hello').toString('base64'),
      chunked: true,
    });
    expect(res.status, res.text).toBe(201);
    expectOscar('POST', '/job/{serviceName}', res, { extension: JOB_BODY_EXTENSION });
    jobId = res.json.job_id;
    expect(jobId).toMatch(JOB_NAME(NAME));
  });

  it('logs list: the keys are the job names; logs get: the output; logs remove: 204', async () => {
    expect(await waitForJob(base, NAME, jobId, ADMIN)).toBe('Succeeded');
    const list = await send(base, 'oscar-cli', 'GET', `/system/logs/${NAME}`, { authorization: ADMIN });
    expectOscar('GET', '/system/logs/{serviceName}', list);
    expect(Object.keys(list.json.jobs)).toEqual([jobId]);
    const log = await send(base, 'oscar-cli', 'GET', `/system/logs/${NAME}/${jobId}`, {
      authorization: ADMIN,
    });
    expectOscar('GET', '/system/logs/{serviceName}/{jobName}', log);
    expect(log.text).toContain('moo: async hello');
    const removed = await send(base, 'oscar-cli', 'DELETE', `/system/logs/${NAME}/${jobId}`, {
      authorization: ADMIN,
    });
    expect(removed.status).toBe(204);
    expectOscar('DELETE', '/system/logs/{serviceName}/{jobName}', removed);
  });

  it('service remove: DELETE without a body → 204', async () => {
    const res = await send(base, 'oscar-cli', 'DELETE', `/system/services/${NAME}`, { authorization: ADMIN });
    expect(res.status).toBe(204);
    expectOscar('DELETE', '/system/services/{serviceName}', res);
  });
});

describe('oscar_python: create, storage client, presign, run, jobs (requests, data=)', () => {
  const NAME = 'py-grayify';
  const BUCKET = 'py-grayify';
  // client.py _check_fdl_definition: yaml.safe_load of the FDL, cpu made a string, script read.
  // An FDL written for OSCAR before v3 spells `environment.Variables`.
  const svc = {
    name: NAME,
    image: 'ghcr.io/grycap/imagemagick',
    cpu: '0.5',
    memory: '128Mi',
    script: '#!/bin/sh\necho "gray: $(cat "$INPUT_FILE_PATH")"\n',
    input: [{ storage_provider: 'minio.default', path: `${BUCKET}/in` }],
    output: [{ storage_provider: 'minio.default', path: `${BUCKET}/out` }],
    environment: { Variables: { LEVEL: '2' }, Secrets: { API_KEY: 'py-secret-value' } },
  };

  it('create_service: GET (handle=False, 404), then POST data=json.dumps(svc) → 201', async () => {
    const absent = await send(base, 'oscar_python', 'GET', `/system/services/${NAME}`, {
      authorization: ADMIN,
    });
    expect(absent.status).toBe(404);
    const res = await send(base, 'oscar_python', 'POST', '/system/services', {
      authorization: ADMIN,
      body: JSON.stringify(svc),
    });
    expect(res.status, res.text).toBe(201);
    expectOscar('POST', '/system/services', res);
    const stored = await send(base, 'oscar_python', 'GET', `/system/services/${NAME}`, {
      authorization: ADMIN,
    });
    // Keys match as Go's decoder matches them: Variables is variables.
    expect(stored.json.environment).toEqual({ variables: { LEVEL: '2' }, secrets: { API_KEY: '***' } });
  });

  it("create_storage_client: the service's storage_providers has minio, /system/config/ its keys", async () => {
    // storage.py: svc["storage_providers"] unchecked, then _MINIO in it, then ["default"] = config.
    const got = await send(base, 'oscar_python', 'GET', `/system/services/${NAME}`, { authorization: ADMIN });
    expectOscar('GET', '/system/services/{serviceName}', got);
    const providers = got.json.storage_providers;
    expect(providers).toBeTypeOf('object');
    expect(providers.minio).toBeTypeOf('object');
    expect(providers.minio.default).toMatchObject({ secret_key: '***' });
    // _store_default_minio_provider: the trailing slash is oscar_python's.
    const config = await send(base, 'oscar_python', 'GET', '/system/config/', { authorization: ADMIN });
    expect(config.status).toBe(200);
    expectOscar('GET', '/system/config', config);
    const creds = config.json.minio_provider;
    for (const k of ['endpoint', 'verify', 'access_key', 'secret_key', 'region'])
      expect(creds).toHaveProperty(k);
    expect(config.json.config.name).toBe('oscar');

    // upload_file: boto3 against that endpoint with those keys (here the AWS SDK): the
    // object under the input path starts a job.
    const s3 = new S3Client({
      endpoint: creds.endpoint,
      region: creds.region || 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: creds.access_key, secretAccessKey: creds.secret_key },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'in/picture.txt', Body: 'pixels' }));
    s3.destroy();
    const deadline = Date.now() + 20_000;
    let jobs: Record<string, { status: string }> = {};
    while (Date.now() < deadline) {
      jobs = (await send(base, 'oscar_python', 'GET', `/system/logs/${NAME}`, { authorization: ADMIN })).json
        .jobs;
      if (Object.values(jobs).some((j) => j.status === 'Succeeded')) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const [name] = Object.keys(jobs);
    expect(name).toMatch(JOB_NAME(NAME));
    const log = await send(base, 'oscar_python', 'GET', `/system/logs/${NAME}/${name}`, {
      authorization: ADMIN,
    });
    expect(log.text).toContain('gray: pixels');
  });

  const ALLOWED_NULL =
    'OSCAR (Go) answers allowed_users: null for a bucket that is not restricted; its Swagger says a list';
  it('buckets: listed, their objects listed, presigned upload and download work', async () => {
    const list = await send(base, 'oscar_python', 'GET', '/system/buckets', { authorization: ADMIN });
    expect(list.status).toBe(200);
    expectOscar('GET', '/system/buckets', list, { extension: ALLOWED_NULL });
    expect(list.json.map((b: { bucket_name: string }) => b.bucket_name)).toContain(BUCKET);
    const objects = await send(base, 'oscar_python', 'GET', `/system/buckets/${BUCKET}`, {
      authorization: ADMIN,
    });
    expectOscar('GET', '/system/buckets/{bucket}', objects, { extension: ALLOWED_NULL });
    expect(objects.json.objects.map((o: { object_name: string }) => o.object_name)).toContain(
      'in/picture.txt',
    );
    const up = await send(base, 'oscar_python', 'POST', `/system/buckets/${BUCKET}/presign`, {
      authorization: ADMIN,
      body: JSON.stringify({ object_key: 'docs/note.txt', operation: 'upload' }),
    });
    expect(up.status, up.text).toBe(200);
    expectOscar('POST', '/system/buckets/{bucket}/presign', up);
    expect((await fetch(up.json.url, { method: up.json.method, body: 'signed upload' })).status).toBe(200);
    const down = await send(base, 'oscar_python', 'POST', `/system/buckets/${BUCKET}/presign`, {
      authorization: ADMIN,
      body: JSON.stringify({ object_key: 'docs/note.txt', operation: 'download' }),
    });
    expectOscar('POST', '/system/buckets/{bucket}/presign', down);
    expect(await (await fetch(down.json.url)).text()).toBe('signed upload');
  });

  it('run_service: data=base64 of the input with the token _get_token read → the output', async () => {
    const { token } = (
      await send(base, 'oscar_python', 'GET', `/system/services/${NAME}`, { authorization: ADMIN })
    ).json;
    const res = await send(base, 'oscar_python', 'POST', `/run/${NAME}`, {
      authorization: `Bearer ${token}`,
      body: Buffer.from('from python').toString('base64'),
    });
    expect(res.status, res.text).toBe(200);
    expect(res.text).toContain('gray: from python');
  });

  it('update_service without environment.secrets keeps the stored secrets (PUT → 204)', async () => {
    const { environment: _dropped, ...noSecrets } = svc;
    const res = await send(base, 'oscar_python', 'PUT', '/system/services', {
      authorization: ADMIN,
      body: JSON.stringify({ ...noSecrets, environment: { variables: { LEVEL: '3' } } }),
    });
    expect(res.status, res.text).toBe(204);
    const kept = await tm.store.getService(NAME);
    expect(kept?.environment).toEqual({ variables: { LEVEL: '3' }, secrets: { API_KEY: 'py-secret-value' } });
  });

  it('remove_job, remove_all_jobs, remove_service: body-less DELETEs with Content-Length: 0 → 204', async () => {
    const jobs = (await send(base, 'oscar_python', 'GET', `/system/logs/${NAME}`, { authorization: ADMIN }))
      .json.jobs;
    const [one] = Object.keys(jobs);
    const removeJob = await send(base, 'oscar_python', 'DELETE', `/system/logs/${NAME}/${one}`, {
      authorization: ADMIN,
    });
    expect(removeJob.status, removeJob.text).toBe(204);
    const removeAll = await send(base, 'oscar_python', 'DELETE', `/system/logs/${NAME}`, {
      authorization: ADMIN,
    });
    expect(removeAll.status, removeAll.text).toBe(204);
    expectOscar('DELETE', '/system/logs/{serviceName}', removeAll);
    const removeService = await send(base, 'oscar_python', 'DELETE', `/system/services/${NAME}`, {
      authorization: ADMIN,
    });
    expect(removeService.status, removeService.text).toBe(204);
  });
});

describe("OSCAR's Robot suite, local (text/json, Accept: application/json, Content-Length: 0)", () => {
  // tests/api/service-lifecycle.robot with HEADERS_OSCAR (Basic), as LOCAL_TESTING runs it.
  const NAME = 'robot-test-cowsay';
  let jobName: string;
  const robot = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: string) =>
    send(base, 'robot', method, path, { authorization: ADMIN, body });

  it('OSCAR API Health, System Config, System Info', async () => {
    const health = await robot('GET', '/health');
    expect(health.text).toBe('Ok');
    expectOscar('GET', '/health', health);
    const config = await robot('GET', '/system/config');
    expect(config.text).toContain('"name":"oscar"');
    expectOscar('GET', '/system/config', config);
    const info = await robot('GET', '/system/info');
    expect(info.text).toContain('"version":');
    expectOscar('GET', '/system/info', info);
    const status = await robot('GET', '/system/status');
    expectOscar('GET', '/system/status', status);
  });

  it('OSCAR Create Service, List Services ("oscar_service":), Read Service', async () => {
    // Prepare Service File: data/00-cowsay.yaml's service as JSON, its script inlined.
    const created = await robot(
      'POST',
      '/system/services',
      JSON.stringify({
        name: NAME,
        vo: 'vo.example.eu',
        memory: '1Gi',
        image: 'ghcr.io/grycap/cowsay',
        script: '#!/bin/sh\n\ncat "$INPUT_FILE_PATH" | sed "s/^/cow says /"\n',
        image_prefetch: true,
        input: [{ storage_provider: 'minio', path: 'robot-test/input' }],
      }),
    );
    expect(created.status, created.text).toBe(201);
    const list = await robot('GET', '/system/services');
    expect(list.status).toBe(200);
    expectOscar('GET', '/system/services', list);
    expect(list.text).toContain('"oscar_service":');
    const read = await robot('GET', `/system/services/${NAME}`);
    expect(read.text).toContain(`"name":"${NAME}"`);
  });

  it('OSCAR Invoke Synchronous Service, Update Service, Invoke Asynchronous Service', async () => {
    const run = await robot('POST', `/run/${NAME}`, JSON.stringify({ message: 'Hello' }));
    expect(run.status, run.text).toBe(200);
    expect(run.text).toContain('Hello');
    const update = await robot(
      'PUT',
      '/system/services',
      JSON.stringify({
        name: NAME,
        memory: '1Gi',
        image: 'ghcr.io/grycap/cowsay',
        script: 'echo "Hello again"',
      }),
    );
    expect([200, 204]).toContain(update.status);
    const job = await robot('POST', `/job/${NAME}`, JSON.stringify({ message: 'Hello' }));
    expect(job.status, job.text).toBe(201);
    expectOscar('POST', '/job/{serviceName}', job, { extension: JOB_BODY_EXTENSION });
  });

  it('OSCAR List Jobs (the first key starts with the service name), Get Logs, Delete Job, Delete All Jobs', async () => {
    const list = await robot('GET', `/system/logs/${NAME}`);
    jobName = Object.keys(list.json.jobs)[0];
    expect(jobName).toContain(`${NAME}-`);
    expect(await waitForJob(base, NAME, jobName, ADMIN)).toBe('Succeeded');
    const logs = await robot('GET', `/system/logs/${NAME}/${jobName}`);
    expect(logs.text).toContain('Hello');
    const delJob = await robot('DELETE', `/system/logs/${NAME}/${jobName}`);
    expect(delJob.status, delJob.text).toBe(204);
    const delAll = await robot('DELETE', `/system/logs/${NAME}`);
    expect(delAll.status, delAll.text).toBe(204);
  });

  it('deployment.robot: status and logs keep their contract; an unknown service is 403 or 404', async () => {
    const status = await robot('GET', `/system/services/${NAME}/deployment`);
    expect(status.status).toBe(200);
    expectOscar('GET', '/system/services/{serviceName}/deployment', status);
    expect(['pending', 'ready', 'degraded', 'failed', 'unavailable']).toContain(status.json.state);
    expect(status.json.active_instances).toBeGreaterThanOrEqual(0);
    const logs = await robot('GET', `/system/services/${NAME}/deployment/logs`);
    expectOscar('GET', '/system/services/{serviceName}/deployment/logs', logs);
    expect(logs.json).toMatchObject({ service_name: NAME, available: false, entries: [] });
    for (const path of ['deployment', 'deployment/logs']) {
      const missing = await robot('GET', `/system/services/nonexistent-service/${path}`);
      expect([403, 404]).toContain(missing.status);
      expectOscar('GET', `/system/services/{serviceName}/${path}`, missing);
    }
  });

  it('service auth: 200 for a caller who may use the service, 401 without credentials', async () => {
    const ok = await robot('GET', `/system/services/${NAME}/auth`);
    expect(ok.status).toBe(200);
    expectOscar('GET', '/system/services/{serviceName}/auth', ok);
    const token = (await robot('GET', `/system/services/${NAME}`)).json.token;
    const byToken = await send(base, 'robot', 'GET', `/system/services/${NAME}/auth`, {
      authorization: `Bearer ${token}`,
    });
    expect(byToken.status).toBe(200);
    const none = await send(base, 'robot', 'GET', `/system/services/${NAME}/auth`);
    expect(none.status).toBe(401);
    expectOscar('GET', '/system/services/{serviceName}/auth', none);
  });

  it('start/stop/restart: 400 for a service that is not exposed, 501 naming the executor for one that is', async () => {
    const plain = await robot('POST', `/system/services/${NAME}/stop`);
    expect(plain.status, plain.text).toBe(400);
    expect(plain.json.message).toContain('is not exposed');
    expectOscar('POST', '/system/services/{serviceName}/stop', plain);
    const exposed = await robot(
      'POST',
      '/system/services',
      JSON.stringify({ name: 'robot-exposed', image: 'nginx', script: 'nginx', expose: { api_port: 80 } }),
    );
    expect(exposed.status, exposed.text).toBe(201);
    for (const action of ['start', 'stop', 'restart']) {
      const res = await robot('POST', `/system/services/robot-exposed/${action}`);
      expect(res.status, res.text).toBe(501);
      expect(res.json.message).toMatch(/kubernetes executor.*process executor/);
      expectOscar('POST', `/system/services/{serviceName}/${action}`, res, {
        extension: 'DESIGN §3.1: what needs Kubernetes answers 501 naming the executor',
      });
    }
    expect((await robot('DELETE', '/system/services/robot-exposed')).status).toBe(204);
  });

  it('system-logs.robot: the manager log for the admin, with timestamps, and previous=true', async () => {
    const plain = await robot('GET', '/system/logs');
    expect(plain.status).toBe(200);
    expectOscar('GET', '/system/logs/', plain);
    const stamped = await robot('GET', '/system/logs?timestamps=true');
    expect(stamped.status).toBe(200);
    const previous = await robot('GET', '/system/logs?previous=true');
    expect([200, 400]).toContain(previous.status);
    const none = await send(base, 'robot', 'GET', '/system/logs/');
    expect(none.status).toBe(401);
  });

  it('OSCAR Delete Service', async () => {
    const res = await robot('DELETE', `/system/services/${NAME}`);
    expect(res.status, res.text).toBe(204);
    expectOscar('DELETE', '/system/services/{serviceName}', res);
  });
});

describe('metrics: summary, per service and breakdown from the stored jobs', () => {
  const NAME = 'metered';

  beforeAll(async () => {
    const created = await send(base, 'robot', 'POST', '/system/services', {
      authorization: ADMIN,
      body: JSON.stringify({ name: NAME, image: 'alpine', cpu: '1', script: 'sleep 0.2; echo done' }),
    });
    expect(created.status, created.text).toBe(201);
    const token = (await send(base, 'robot', 'GET', `/system/services/${NAME}`, { authorization: ADMIN }))
      .json.token;
    for (let i = 0; i < 2; i++) {
      const job = await send(base, 'oscar-cli', 'POST', `/job/${NAME}`, {
        authorization: `Bearer ${token}`,
        body: 'eA==',
      });
      expect(job.status).toBe(201);
      expect(await waitForJob(base, NAME, job.json.job_id, ADMIN)).toBe('Succeeded');
    }
  });

  it('GET /system/metrics: totals over the last 24 h (cpu-hours, async requests, users)', async () => {
    const res = await send(base, 'robot', 'GET', '/system/metrics', { authorization: ADMIN });
    expect(res.status, res.text).toBe(200);
    expectOscar('GET', '/system/metrics', res);
    expect(res.json.totals.requests_count_async).toBeGreaterThanOrEqual(2);
    expect(res.json.totals.cpu_hours_total).toBeGreaterThan(0);
    expect(res.json.totals.users).toContain('service-token:metered');
    expect(res.json.sources).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: 'sync-runs', status: 'missing' })]),
    );
  });

  it('GET /system/metrics/{service}: every per-service metric, or one with ?metric=', async () => {
    const all = await send(base, 'robot', 'GET', `/system/metrics/${NAME}`, { authorization: ADMIN });
    expect(all.status, all.text).toBe(200);
    expectOscar('GET', '/system/metrics/{serviceName}', all);
    const byKey = Object.fromEntries(
      all.json.metrics.map((m: { metric: string; value: number }) => [m.metric, m.value]),
    );
    expect(byKey['requests-async-per-service']).toBe(2);
    expect(byKey['users-per-service']).toBe(1);
    expect(byKey['cpu-hours']).toBeGreaterThan(0);
    const one = await send(base, 'robot', 'GET', `/system/metrics/${NAME}?metric=cpu-hours`, {
      authorization: ADMIN,
    });
    expect(one.json).toMatchObject({ service_id: NAME, metric: 'cpu-hours', unit: 'hours' });
    // A range before the jobs: nothing in it.
    const before = await send(
      base,
      'robot',
      'GET',
      `/system/metrics/${NAME}?metric=requests-async-per-service&start=2020-01-01T00:00:00Z&end=2020-01-02T00:00:00Z`,
      { authorization: ADMIN },
    );
    expect(before.json.value).toBe(0);
  });

  it('breakdown by service, user and country, as JSON and CSV', async () => {
    const byService = await send(
      base,
      'robot',
      'GET',
      '/system/metrics/breakdown?group_by=service&include_users=true',
      {
        authorization: ADMIN,
      },
    );
    expect(byService.status, byService.text).toBe(200);
    expectOscar('GET', '/system/metrics/breakdown', byService, {
      extension:
        "OSCAR's handler answers types.MetricsBreakdownResponse for format=json; its Swagger keeps only the CSV string",
    });
    expect(byService.json.items).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          key: NAME,
          requests_count_async: 2,
          unique_users_count: 1,
          users: ['service-token:metered'],
        }),
      ]),
    );
    const byUser = await send(base, 'robot', 'GET', '/system/metrics/breakdown?group_by=user', {
      authorization: ADMIN,
    });
    expect(byUser.json.items).toEqual(
      expect.arrayContaining([
        { key: 'service-token:metered', membership: 'external', executions_count: 2, countries: [] },
      ]),
    );
    const byCountry = await send(base, 'robot', 'GET', '/system/metrics/breakdown?group_by=country', {
      authorization: ADMIN,
    });
    expect(byCountry.json.items[0]).toMatchObject({ key: 'unknown' });
    const csv = await send(base, 'robot', 'GET', '/system/metrics/breakdown?group_by=service&format=csv', {
      authorization: ADMIN,
    });
    expect(csv.status).toBe(200);
    expect(String(csv.headers['content-type'])).toMatch(/^text\/csv/);
    expectOscar('GET', '/system/metrics/breakdown', csv);
    const [header, ...rows] = csv.text.trim().split('\n');
    expect(header).toBe(
      'key,membership,requests_count_total,requests_count_sync,requests_count_async,requests_count_exposed,unique_users_count,countries',
    );
    expect(rows).toContain(`${NAME},,2,0,2,0,1,`);
  });

  it('refuses bad parameters with 400 naming them', async () => {
    for (const [path, message] of [
      ['/system/metrics/breakdown', /group_by is required/],
      ['/system/metrics/breakdown?group_by=planet', /unsupported group_by/],
      ['/system/metrics/breakdown?group_by=service&format=xml', /invalid format/],
      [
        '/system/metrics/breakdown?group_by=service&format=csv&include_users=true',
        /include_users is not supported for csv/,
      ],
      ['/system/metrics?start=yesterday', /invalid start timestamp/],
      ['/system/metrics?start=2025-01-02T00:00:00Z&end=2025-01-01T00:00:00Z', /end must be after start/],
      [`/system/metrics/${NAME}?metric=speed`, /invalid metric key/],
      [`/system/metrics/${NAME}?metric=countries-list`, /unsupported metric for value query/],
    ] as const) {
      const res = await send(base, 'robot', 'GET', path, { authorization: ADMIN });
      expect(res.status, path).toBe(400);
      expect(res.json.message, path).toMatch(message);
      expectOscar('GET', path.split('?')[0].replace(`/${NAME}`, '/{serviceName}'), res);
    }
  });
});

describe('federation: members null, then added, updated and removed (OSCAR v4.1 shape)', () => {
  const NAME = 'fed-star';
  const member = { type: 'oscar', cluster_id: 'compat-b', service_name: 'fed-star-b', priority: 0 };
  const MEMBERS_NULL =
    'OSCAR (Go) answers a service without members with members: null; its Swagger says a list';
  const VIEW = 'Flotilla answers the resulting {topology, members} view; OSCAR answers a string';

  it('federation.robot: GET on a service without members → topology, members: null', async () => {
    const created = await send(base, 'robot', 'POST', '/system/services', {
      authorization: ADMIN,
      body: JSON.stringify({
        name: NAME,
        cluster_id: 'compat-a',
        cpu: '0.5',
        memory: '256Mi',
        image: 'ubuntu',
        script: '#!/bin/bash\nsleep 1',
        allowed_users: [],
        visibility: 'private',
        federation: { topology: 'star', delegation: 'topsis', members: [] },
        clusters: { 'compat-b': { endpoint: peerBase, auth_user: 'oscar', auth_password: ADMIN_PASSWORD } },
      }),
    });
    expect(created.status, created.text).toBe(201);
    const res = await send(base, 'robot', 'GET', `/system/federation/${NAME}`, { authorization: ADMIN });
    expect(res.status).toBe(200);
    expectOscar('GET', '/system/federation/{serviceName}', res, { extension: MEMBERS_NULL });
    expect(res.json).toMatchObject({ topology: 'star', members: null });
  });

  it('POST adds the member (its worker is created), PUT changes its priority, DELETE removes it', async () => {
    const added = await send(base, 'robot', 'POST', `/system/federation/${NAME}`, {
      authorization: ADMIN,
      body: JSON.stringify({ members: [member] }),
    });
    expect(added.status, added.text).toBe(200);
    expectOscar('POST', '/system/federation/{serviceName}', added, { extension: VIEW });
    expect((await peer.store.getService('fed-star-b'))?.federation?.delegation).toBe('topsis');
    const withMembers = await send(base, 'robot', 'GET', `/system/federation/${NAME}`, {
      authorization: ADMIN,
    });
    expectOscar('GET', '/system/federation/{serviceName}', withMembers);
    expect(withMembers.json.members.map((m: { service_name: string }) => m.service_name)).toEqual([
      'fed-star-b',
    ]);
    const updated = await send(base, 'robot', 'PUT', `/system/federation/${NAME}`, {
      authorization: ADMIN,
      body: JSON.stringify({ members: [member], update: [{ ...member, priority: 10 }] }),
    });
    expect(updated.status, updated.text).toBe(200);
    const after = await send(base, 'robot', 'GET', `/system/federation/${NAME}`, { authorization: ADMIN });
    expect(after.json.members[0].priority).toBe(10);
    // Robot's DELETE carries its JSON body (members, delete: false).
    const removed = await send(base, 'robot', 'DELETE', `/system/federation/${NAME}`, {
      authorization: ADMIN,
      body: JSON.stringify({ members: [member], delete: true }),
    });
    expect(removed.status, removed.text).toBe(200);
    const gone = await send(base, 'robot', 'GET', `/system/federation/${NAME}`, { authorization: ADMIN });
    expect(gone.json.members).toBeNull();
    expect(
      (await send(base, 'robot', 'DELETE', `/system/services/${NAME}`, { authorization: ADMIN })).status,
    ).toBe(204);
  });
});

describe('every other route of the contract answers (what needs Kubernetes: 501 naming the executor)', () => {
  const K8S = 'DESIGN §3.1: what needs Kubernetes answers 501 naming the executor';

  it('quotas: the admin is told they need the kubernetes executor; a PUT is checked first', async () => {
    const user = await send(base, 'robot', 'GET', '/system/quotas/user/alice', { authorization: ADMIN });
    expect(user.status, user.text).toBe(501);
    expect(user.json.message).toMatch(/kubernetes executor.*process executor/);
    expectOscar('GET', '/system/quotas/user/{userId}', user, { extension: K8S });
    const empty = await send(base, 'robot', 'PUT', '/system/quotas/user/alice', {
      authorization: ADMIN,
      body: '{}',
    });
    expect(empty.status).toBe(400);
    expect(empty.json.message).toMatch(/cpu, memory, ephemeral_storage, volumes or minio must be provided/);
    expectOscar('PUT', '/system/quotas/user/{userId}', empty);
    const typed = await send(base, 'robot', 'PUT', '/system/quotas/user/alice', {
      authorization: ADMIN,
      body: JSON.stringify({ cpu: 2 }),
    });
    expect(typed.status).toBe(400);
    const put = await send(base, 'robot', 'PUT', '/system/quotas/user/alice', {
      authorization: ADMIN,
      body: JSON.stringify({ cpu: '2000m' }),
    });
    expect(put.status).toBe(501);
    // Own quotas are a bearer user's; Basic has no user id (OSCAR: 401).
    const own = await send(base, 'robot', 'GET', '/system/quotas/user', { authorization: ADMIN });
    expect(own.status).toBe(401);
    expectOscar('GET', '/system/quotas/user', own);
  });

  it('volumes: bodies and names checked, then 501', async () => {
    const list = await send(base, 'robot', 'GET', '/system/volumes', { authorization: ADMIN });
    expect(list.status).toBe(501);
    expectOscar('GET', '/system/volumes', list, { extension: K8S });
    const bad = await send(base, 'robot', 'POST', '/system/volumes', {
      authorization: ADMIN,
      body: JSON.stringify({ name: 'Data_Vol', size: '1Gi' }),
    });
    expect(bad.status).toBe(400);
    expect(bad.json.message).toMatch(/^name: must be a DNS label/);
    expectOscar('POST', '/system/volumes', bad);
    const noSize = await send(base, 'robot', 'POST', '/system/volumes', {
      authorization: ADMIN,
      body: JSON.stringify({ name: 'data' }),
    });
    expect(noSize.json.message).toMatch(/^size: is required/);
    const good = await send(base, 'robot', 'POST', '/system/volumes', {
      authorization: ADMIN,
      body: JSON.stringify({ name: 'data', size: '1Gi' }),
    });
    expect(good.status).toBe(501);
    for (const method of ['GET', 'DELETE'] as const) {
      const res = await send(base, 'robot', method, '/system/volumes/data', { authorization: ADMIN });
      expect(res.status).toBe(501);
      expectOscar(method, '/system/volumes/{volumeName}', res, { extension: K8S });
    }
  });

  it('PUT /system/config: the configuration is the flags of `flotilla up` (501)', async () => {
    const res = await send(base, 'robot', 'PUT', '/system/config', { authorization: ADMIN, body: '{}' });
    expect(res.status).toBe(501);
    expect(res.json.message).toMatch(/flotilla up/);
    expectOscar('PUT', '/system/config', res, {
      extension: 'Flotilla reads its configuration from flags and environment',
    });
  });
});

describe("the manager's log", () => {
  it('holds what happened, and none of the secrets used above', async () => {
    const res = await send(base, 'robot', 'GET', '/system/logs?timestamps=true', { authorization: ADMIN });
    expect(res.status).toBe(200);
    expect(res.text).toMatch(/^\d{4}-\d{2}-\d{2}T[\d:.]+Z INFO this replica leads the background loops/m);
    expect(res.text).not.toContain(ADMIN_PASSWORD);
    expect(res.text).not.toContain('py-secret-value');
    expect(res.text).not.toMatch(/[0-9a-f]{64}/);
  });
});
