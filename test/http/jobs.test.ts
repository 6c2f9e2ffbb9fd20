// Asynchronous jobs over HTTP, in process, with the real process executor (bubblewrap when
// present) and the embedded S3 store: POST /job, the job lifecycle, inputs and outputs,
// storage triggers, failures (exit code, timeout, huge output, deleted service, missing
// object, oversized request), capacity, delegated ids and /system/logs.
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basic, startInProcess, type TestManager } from '../support/in-process.ts';
import { sleep, waitFor } from '../support/wait.ts';

let tm: TestManager;
let small: TestManager;

const ADMIN = { authorization: basic() };
const FINISHED = ['Succeeded', 'Failed'];

const call = (m: TestManager, opts: InjectOptions): Promise<LightMyRequestResponse> =>
  m.manager.http.inject({ ...opts, headers: { ...ADMIN, ...opts.headers } });

/** Creates a service (admin) and returns its token. */
const createService = async (m: TestManager, body: Record<string, unknown>): Promise<string> => {
  const res = await call(m, {
    method: 'POST',
    url: '/system/services',
    payload: { memory: '64Mi', cpu: '0.1', ...body },
  });
  expect(res.statusCode, res.body).toBe(201);
  const got = await call(m, { method: 'GET', url: `/system/services/${body.name}` });
  expect(got.statusCode, got.body).toBe(200);
  const token = got.json().token as string;
  expect(token).toMatch(/^[0-9a-f]{64}$/);
  return token;
};

const submitRaw = (
  m: TestManager,
  svc: string,
  token: string,
  payload: string | Buffer,
  headers: Record<string, string> = {},
) =>
  m.manager.http.inject({
    method: 'POST',
    url: `/job/${svc}`,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', ...headers },
    payload,
  });

const submit = async (
  m: TestManager,
  svc: string,
  token: string,
  payload: string | Buffer = '',
  headers: Record<string, string> = {},
) => {
  const res = await submitRaw(m, svc, token, payload, headers);
  expect(res.statusCode, res.body).toBe(201);
  return res.json().job_id as string;
};

interface JobInfo {
  status: string;
  creation_time: string;
  start_time: string | null;
  finish_time: string | null;
  reason?: string | null;
  exit_code?: number | null;
}

const listJobs = async (m: TestManager, svc: string, page?: string) => {
  const res = await call(m, {
    method: 'GET',
    url: `/system/logs/${svc}${page ? `?page=${encodeURIComponent(page)}` : ''}`,
  });
  expect(res.statusCode, res.body).toBe(200);
  return res.json() as { jobs: Record<string, JobInfo>; next_page: string; remaining_jobs: number };
};

const jobInfo = async (m: TestManager, svc: string, id: string): Promise<JobInfo | undefined> =>
  (await listJobs(m, svc)).jobs[id];

const waitJob = (m: TestManager, svc: string, id: string, statuses = FINISHED, timeoutMs = 15_000) =>
  waitFor(
    async () => {
      const j = await jobInfo(m, svc, id);
      return j && statuses.includes(j.status) ? j : undefined;
    },
    timeoutMs,
    `job ${id} of ${svc} to be ${statuses.join('|')}`,
  );

const jobLog = async (m: TestManager, svc: string, id: string): Promise<string> => {
  const res = await call(m, { method: 'GET', url: `/system/logs/${svc}/${id}` });
  expect(res.statusCode, res.body).toBe(200);
  return res.body;
};

const readObject = async (m: TestManager, bucket: string, key: string): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  for await (const c of await m.manager.storage.local.getObject(bucket, key)) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
};

const objectKeys = async (m: TestManager, bucket: string, prefix?: string): Promise<string[]> =>
  (await m.manager.storage.local.listObjects(bucket, { prefix, limit: 1000 })).objects
    .map((o) => o.key)
    .sort();

const nodeCpu = async (m: TestManager) => {
  const res = await call(m, { method: 'GET', url: '/system/status' });
  expect(res.statusCode, res.body).toBe(200);
  return res.json().cluster.nodes[0].cpu as { capacity_cores: number; request_cores: number };
};

const health = async (m: TestManager) =>
  (await m.manager.http.inject({ method: 'GET', url: '/health' })).statusCode;

beforeAll(async () => {
  [tm, small] = await Promise.all([
    startInProcess({ cpus: '4', memory: '4Gi', nodes: '1', jobTimeout: '20', bodyLimit: '64Ki' }),
    startInProcess({ cpus: '1', memory: '1Gi', nodes: '1', jobTimeout: '20' }),
  ]);
});
afterAll(async () => {
  await Promise.all([tm?.close(), small?.close()]);
});

describe('POST /job', () => {
  it('answers 201 {job_id, cluster_id, delegated_to:null} and the job is stored at once', async () => {
    const token = await createService(tm, { name: 'accept', image: 'alpine', script: 'echo accepted' });
    const res = await submitRaw(tm, 'accept', token, 'aGk=');
    expect(res.statusCode, res.body).toBe(201);
    const body = res.json();
    expect(Object.keys(body).sort()).toEqual(['cluster_id', 'delegated_to', 'job_id']);
    // OSCAR's Kubernetes Job name: <service>-<uuid> (its clients and tests expect it).
    expect(body.job_id).toMatch(/^accept-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(body.cluster_id).toBe('local');
    expect(body.delegated_to).toBeNull();
    // Accepted means stored: the listing shows it right away, whatever state it reached.
    const info = await jobInfo(tm, 'accept', body.job_id);
    expect(info, 'job listed right after 201').toBeDefined();
    expect(['Pending', 'Running', 'Succeeded']).toContain(info?.status);
    expect(Number.isNaN(Date.parse(info?.creation_time ?? ''))).toBe(false);
    await waitJob(tm, 'accept', body.job_id);
  });

  it('decodes a base64 payload into the input file, byte for byte', async () => {
    const token = await createService(tm, {
      name: 'b64',
      image: 'alpine',
      script:
        'printf "<<"; cat "$INPUT_FILE_PATH"; printf ">>\\n"; printf "hex="; od -An -tx1 -v "$INPUT_FILE_PATH" | tr -d " \\n"; echo',
    });
    const text = await submit(tm, 'b64', token, Buffer.from('hello world').toString('base64'));
    const bytes = Buffer.from([0, 1, 2, 0xfe, 0xff, 0x80, 10, 13]);
    const bin = await submit(tm, 'b64', token, bytes.toString('base64'));
    expect((await waitJob(tm, 'b64', text)).status).toBe('Succeeded');
    expect(await jobLog(tm, 'b64', text)).toContain('<<hello world>>');
    expect((await waitJob(tm, 'b64', bin)).status).toBe('Succeeded');
    expect(await jobLog(tm, 'b64', bin)).toContain(`hex=${bytes.toString('hex')}`);
  });

  it('writes a JSON payload as is, and EVENT carries it', async () => {
    const token = await createService(tm, {
      name: 'jsonin',
      image: 'alpine',
      script: 'printf "<<"; cat "$INPUT_FILE_PATH"; printf ">>\\n"; echo "event=$EVENT"',
    });
    const payload = '{"greeting": "hi", "n": [1,2,3]}';
    const id = await submit(tm, 'jsonin', token, payload, { 'content-type': 'application/json' });
    expect((await waitJob(tm, 'jsonin', id)).status).toBe('Succeeded');
    const log = await jobLog(tm, 'jsonin', id);
    expect(log).toContain(`<<${payload}>>`);
    expect(log).toContain(`event=${payload}`);
  });

  it('gives the script the faas-supervisor environment, variables and secrets, never refresh_token', async () => {
    const token = await createService(tm, {
      name: 'envsvc',
      image: 'alpine',
      script: 'env | sort',
      environment: {
        variables: { GREETING: 'hello-var' },
        secrets: { API_KEY: 'sekret-value-1', refresh_token: 'rt-must-not-leak-42' },
      },
    });
    const id = await submit(tm, 'envsvc', token, 'eA==');
    expect((await waitJob(tm, 'envsvc', id)).status).toBe('Succeeded');
    const log = await jobLog(tm, 'envsvc', id);
    expect(log).toContain('GREETING=hello-var');
    expect(log).toContain('API_KEY=sekret-value-1');
    expect(log).toContain(`JOB_UUID=${id}`);
    expect(log).toContain('OSCAR_SERVICE_NAME=envsvc');
    for (const v of ['EVENT', 'INPUT_FILE_PATH', 'TMP_INPUT_DIR', 'TMP_OUTPUT_DIR'])
      expect(log).toMatch(new RegExp(`^${v}=.+`, 'm'));
    expect(log).not.toContain('rt-must-not-leak-42');
    expect(log).not.toMatch(/refresh_token/i);
    // Nor does the API return it.
    const got = await call(tm, { method: 'GET', url: '/system/services/envsvc' });
    expect(got.body).not.toContain('rt-must-not-leak-42');
  });

  it('goes Pending/Running → Succeeded with ordered creation, start and finish times', async () => {
    const token = await createService(tm, {
      name: 'lifecycle',
      image: 'alpine',
      script: 'echo early-line; sleep 1.5; echo finished-ok',
    });
    const id = await submit(tm, 'lifecycle', token, 'eA==');
    const first = await jobInfo(tm, 'lifecycle', id);
    expect(['Pending', 'Running']).toContain(first?.status);
    const running = await waitJob(tm, 'lifecycle', id, ['Running'], 5000);
    expect(running.start_time).not.toBeNull();
    expect(running.finish_time).toBeNull();
    // While it runs, its log so far is readable.
    const live = await waitFor(
      async () => {
        const res = await call(tm, { method: 'GET', url: `/system/logs/lifecycle/${id}` });
        return res.body.includes('early-line') ? res : undefined;
      },
      3000,
      'the live log',
    );
    expect(live.headers['x-job-status']).toBe('Running');
    expect(live.body).not.toContain('finished-ok');
    const done = await waitJob(tm, 'lifecycle', id);
    expect(done.status).toBe('Succeeded');
    expect(done.exit_code).toBe(0);
    const [c, s, f] = [done.creation_time, done.start_time, done.finish_time].map((t) => Date.parse(t ?? ''));
    expect(c).toBeLessThanOrEqual(s);
    expect(f - s).toBeGreaterThanOrEqual(900);
    expect(await jobLog(tm, 'lifecycle', id)).toContain('finished-ok');
  });

  it('uploads every output file to each output path, honouring prefix and suffix filters', async () => {
    const token = await createService(tm, {
      name: 'outs',
      image: 'alpine',
      script: [
        'cd "$TMP_OUTPUT_DIR"',
        'echo a > a.txt',
        'echo b > b.bin',
        'echo c > keep-c.dat',
        'mkdir sub && echo d > sub/d.txt',
      ].join('\n'),
      output: [
        { storage_provider: 'minio.default', path: 'outs-bkt/all' },
        { storage_provider: 'minio.default', path: 'outs-bkt/txt', suffix: ['.txt'] },
        { storage_provider: 'minio.default', path: 'outs-bkt/keep', prefix: ['keep'] },
      ],
    });
    const id = await submit(tm, 'outs', token, 'eA==');
    expect((await waitJob(tm, 'outs', id)).status).toBe('Succeeded');
    expect(await objectKeys(tm, 'outs-bkt', 'all/')).toEqual([
      'all/a.txt',
      'all/b.bin',
      'all/keep-c.dat',
      'all/sub/d.txt',
    ]);
    expect(await objectKeys(tm, 'outs-bkt', 'txt/')).toEqual(['txt/a.txt', 'txt/sub/d.txt']);
    expect(await objectKeys(tm, 'outs-bkt', 'keep/')).toEqual(['keep/keep-c.dat']);
    expect((await readObject(tm, 'outs-bkt', 'all/sub/d.txt')).toString()).toBe('d\n');
  });
});

describe('failures', () => {
  it('a script printing NUL bytes still ends and is recorded (not left Running)', async () => {
    const token = await createService(tm, {
      name: 'nul-out',
      image: 'alpine',
      script: 'printf "before\\000after\\n"; printf "err\\000\\n" >&2',
    });
    const id = await submit(tm, 'nul-out', token, 'eA==');
    const done = await waitJob(tm, 'nul-out', id, FINISHED, 5000);
    expect(done.status).toBe('Succeeded');
    const log = await jobLog(tm, 'nul-out', id);
    expect(log).toMatch(/before.after/);
    expect(log).toMatch(/err/);
  });

  it('a script exiting 3 ends Failed, with the exit code in the listing and the log', async () => {
    const token = await createService(tm, {
      name: 'exit3',
      image: 'alpine',
      script: 'echo before-exit; echo oops >&2; exit 3',
    });
    const id = await submit(tm, 'exit3', token, 'eA==');
    const done = await waitJob(tm, 'exit3', id);
    expect(done.status).toBe('Failed');
    expect(done.exit_code).toBe(3);
    expect(done.reason).toMatch(/exit code 3/);
    const log = await jobLog(tm, 'exit3', id);
    expect(log).toContain('before-exit');
    expect(log).toContain('oops');
    expect(log).toMatch(/exit code 3/);
  });

  it('a script that hangs past the service timeout is killed in time and Failed with the reason', async () => {
    const token = await createService(tm, {
      name: 'hang',
      image: 'alpine',
      script: 'echo started; sleep 100',
      timeout: 1,
    });
    const id = await submit(tm, 'hang', token, 'eA==');
    const t0 = Date.now();
    const done = await waitJob(tm, 'hang', id, FINISHED, 10_000);
    expect(Date.now() - t0).toBeLessThan(8000);
    expect(done.status).toBe('Failed');
    expect(done.reason).toMatch(/timed out|timeout/i);
    const ran = Date.parse(done.finish_time ?? '') - Date.parse(done.start_time ?? '');
    expect(ran).toBeGreaterThanOrEqual(900);
    expect(ran).toBeLessThan(6000);
    const log = await jobLog(tm, 'hang', id);
    expect(log).toContain('started');
    expect(log).toMatch(/timed out|timeout/i);
    // Its capacity came back.
    await waitFor(async () => (await nodeCpu(tm)).request_cores === 0, 5000, 'capacity to be released');
  });

  it('a script writing 100 MB to stdout ends, its log is truncated, and the manager keeps serving', async () => {
    const token = await createService(tm, {
      name: 'flood',
      image: 'alpine',
      script: 'yes flotilla-flood-line | head -c 100000000; echo tail-marker >&2',
    });
    const id = await submit(tm, 'flood', token, 'eA==');
    const done = await waitJob(tm, 'flood', id, FINISHED, 25_000);
    expect(done.status).toBe('Succeeded');
    const log = await jobLog(tm, 'flood', id);
    expect(log.length).toBeGreaterThan(100_000);
    expect(log.length).toBeLessThan(5 * 1024 * 1024);
    expect(log).toMatch(/truncated/);
    expect(log).toContain('flotilla-flood-line');
    expect(log).toContain('tail-marker');
    expect(await health(tm)).toBe(200);
  }, 30_000);

  it('a service deleted while its job runs: the job ends, other jobs and the manager are unaffected', async () => {
    const doomedToken = await createService(tm, {
      name: 'doomed',
      image: 'alpine',
      script: 'echo doomed-start; sleep 30',
    });
    const otherToken = await createService(tm, {
      name: 'survivor',
      image: 'alpine',
      script: 'sleep 1; echo survivor-ok',
    });
    const doomed = await submit(tm, 'doomed', doomedToken, 'eA==');
    const other = await submit(tm, 'survivor', otherToken, 'eA==');
    await waitJob(tm, 'doomed', doomed, ['Running'], 5000);
    const del = await call(tm, { method: 'DELETE', url: '/system/services/doomed' });
    expect(del.statusCode, del.body).toBe(204);
    const t0 = Date.now();
    const ended = await waitFor(
      async () => {
        const j = await tm.store.getJob(doomed);
        return !j || FINISHED.includes(j.status) ? (j ?? 'gone') : undefined;
      },
      8000,
      'the deleted service job to end',
    );
    expect(Date.now() - t0).toBeLessThan(8000);
    if (ended !== 'gone') {
      expect(ended.status).toBe('Failed');
      expect(ended.reason).toMatch(/deleted/);
    }
    await waitFor(
      async () => tm.manager.runner.liveLog(doomed) === undefined,
      5000,
      'the runner to let the job go',
    );
    const survived = await waitJob(tm, 'survivor', other);
    expect(survived.status).toBe('Succeeded');
    expect(await jobLog(tm, 'survivor', other)).toContain('survivor-ok');
    // The manager still answers and runs new work.
    expect(await health(tm)).toBe(200);
    const again = await submit(tm, 'survivor', otherToken, 'eA==');
    expect((await waitJob(tm, 'survivor', again)).status).toBe('Succeeded');
    // The deleted service's job routes answer 404, not 500.
    const gone = await submitRaw(tm, 'doomed', doomedToken, 'eA==');
    expect(gone.statusCode).toBe(404);
  });

  it('an output upload that fails (bucket deleted) ends Failed, naming the bucket in the log', async () => {
    const token = await createService(tm, {
      name: 'lost-out',
      image: 'alpine',
      script: 'echo r > "$TMP_OUTPUT_DIR/r.txt"',
      output: [{ storage_provider: 'minio.default', path: 'lost-out-bkt/res' }],
    });
    const del = await call(tm, { method: 'DELETE', url: '/system/buckets/lost-out-bkt' });
    expect(del.statusCode, del.body).toBe(204);
    const id = await submit(tm, 'lost-out', token, 'eA==');
    const done = await waitJob(tm, 'lost-out', id);
    expect(done.status).toBe('Failed');
    expect(done.reason).toMatch(/upload/);
    expect(await jobLog(tm, 'lost-out', id)).toContain('lost-out-bkt/res/r.txt');
  });

  it('a storage event for an object that is gone ends Failed with a reason naming the object', async () => {
    const token = await createService(tm, {
      name: 'missing-in',
      image: 'alpine',
      script: 'cat "$INPUT_FILE_PATH"',
      input: [{ storage_provider: 'minio.default', path: 'missing-bkt/in' }],
    });
    const event = JSON.stringify({
      Key: 'missing-bkt/in/vanished.txt',
      Records: [{ s3: { bucket: { name: 'missing-bkt' }, object: { key: 'in/vanished.txt' } } }],
    });
    const id = await submit(tm, 'missing-in', token, event, { 'content-type': 'application/json' });
    const done = await waitJob(tm, 'missing-in', id);
    expect(done.status).toBe('Failed');
    expect(done.reason).toContain('missing-bkt/in/vanished.txt');
    expect(await jobLog(tm, 'missing-in', id)).toContain('vanished.txt');
  });

  it('a job whose cpu no node can hold ends Failed with a clear reason', async () => {
    const token = await createService(tm, {
      name: 'toobig',
      image: 'alpine',
      script: 'echo never',
      cpu: '8',
    });
    const id = await submit(tm, 'toobig', token, 'eA==');
    const done = await waitJob(tm, 'toobig', id, FINISHED, 5000);
    expect(done.status).toBe('Failed');
    expect(done.reason).toMatch(/8000m cpu/);
    expect(done.reason).toMatch(/no node/);
    expect(await jobLog(tm, 'toobig', id)).toMatch(/no node/);
  });
});

describe('storage triggers', () => {
  it('an object put under the input path starts a job with an S3 event; its output lands in the output path', async () => {
    await createService(tm, {
      name: 'trig',
      image: 'alpine',
      script: [
        'echo "key=$STORAGE_OBJECT_KEY"',
        'echo "input=$INPUT_FILE_PATH"',
        'echo "event=$EVENT"',
        'tr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/upper.txt"',
      ].join('\n'),
      input: [{ storage_provider: 'minio.default', path: 'trig-bkt/in' }],
      output: [{ storage_provider: 'minio.default', path: 'trig-bkt/out' }],
    });
    await tm.manager.storage.local.putObject(
      'trig-bkt',
      'in/x.txt',
      new TextEncoder().encode('shout this\n'),
    );
    const [id, info] = await waitFor(
      async () => {
        const jobs = Object.entries((await listJobs(tm, 'trig')).jobs);
        return jobs.length > 0 && FINISHED.includes(jobs[0][1].status) ? jobs[0] : undefined;
      },
      15_000,
      'a triggered job to finish',
    );
    expect(info.status).toBe('Succeeded');
    const log = await jobLog(tm, 'trig', id);
    expect(log).toMatch(/^key=\S*x\.txt$/m);
    expect(log).toMatch(/^input=\S*x\.txt$/m);
    expect(log).toContain('ObjectCreated');
    expect((await readObject(tm, 'trig-bkt', 'out/upper.txt')).toString()).toBe('SHOUT THIS\n');
    // Its output did not trigger anything more (out/ is not under in/).
    await sleep(300);
    expect(Object.keys((await listJobs(tm, 'trig')).jobs)).toHaveLength(1);
  });

  it('prefix and suffix input filters, and keys outside the input path, start no job', async () => {
    await createService(tm, {
      name: 'filt',
      image: 'alpine',
      script: 'echo "got $STORAGE_OBJECT_KEY"',
      input: [{ storage_provider: 'minio.default', path: 'filt-bkt/in', prefix: ['keep'], suffix: ['.csv'] }],
    });
    const put = (key: string) =>
      tm.manager.storage.local.putObject('filt-bkt', key, new TextEncoder().encode('1,2\n'));
    await put('in/other.csv'); // prefix fails
    await put('in/keep.txt'); // suffix fails
    await put('elsewhere/keep.csv'); // outside the input path
    await put('inside-not/keep.csv'); // shares the path's leading letters only
    await put('in/keep-1.csv'); // matches
    const [id] = await waitFor(
      async () =>
        Object.entries((await listJobs(tm, 'filt')).jobs).find(([, j]) => FINISHED.includes(j.status)),
      15_000,
      'the matching object to trigger a job',
    );
    await sleep(500);
    const jobs = (await listJobs(tm, 'filt')).jobs;
    expect(Object.keys(jobs)).toEqual([id]);
    expect(await jobLog(tm, 'filt', id)).toContain('keep-1.csv');
  });
});

describe('auth and request checks', () => {
  let token: string;
  let otherToken: string;
  beforeAll(async () => {
    token = await createService(tm, { name: 'guarded', image: 'alpine', script: 'echo guarded' });
    otherToken = await createService(tm, { name: 'guarded-other', image: 'alpine', script: 'echo other' });
  });

  it('unknown service → 404 JSON', async () => {
    const res = await submitRaw(tm, 'no-such-service', token, 'eA==');
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ code: 'SERVICE_NOT_FOUND', statusCode: 404 });
    expect(res.json().message).toContain('no-such-service');
  });

  it('a wrong token, another service token, or none → 401, and no job is stored', async () => {
    const wrong = await submitRaw(tm, 'guarded', 'f'.repeat(64), 'eA==');
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json()).toMatchObject({ code: 'UNAUTHORIZED' });
    const other = await submitRaw(tm, 'guarded', otherToken, 'eA==');
    expect(other.statusCode).toBe(401);
    const none = await tm.manager.http.inject({
      method: 'POST',
      url: '/job/guarded',
      payload: 'eA==',
      headers: { 'content-type': 'text/plain' },
    });
    expect(none.statusCode).toBe(401);
    const badBasic = await tm.manager.http.inject({
      method: 'POST',
      url: '/job/guarded',
      payload: 'eA==',
      headers: { authorization: basic('wrong-password'), 'content-type': 'text/plain' },
    });
    expect(badBasic.statusCode).toBe(401);
    expect(Object.keys((await listJobs(tm, 'guarded')).jobs)).toHaveLength(0);
  });

  it('admin Basic may submit too', async () => {
    const res = await call(tm, {
      method: 'POST',
      url: '/job/guarded',
      payload: 'eA==',
      headers: { 'content-type': 'text/plain' },
    });
    expect(res.statusCode, res.body).toBe(201);
    expect((await waitJob(tm, 'guarded', res.json().job_id)).status).toBe('Succeeded');
  });

  it('a body over the body limit → 413 JSON, nothing stored', async () => {
    const before = Object.keys((await listJobs(tm, 'guarded')).jobs).length;
    const res = await submitRaw(tm, 'guarded', token, Buffer.alloc(65 * 1024, 0x41));
    expect(res.statusCode).toBe(413);
    expect(res.json()).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
    expect(Object.keys((await listJobs(tm, 'guarded')).jobs)).toHaveLength(before);
  });

  it('the service token reads its own logs, but not another service', async () => {
    const id = await submit(tm, 'guarded', token, 'eA==');
    await waitJob(tm, 'guarded', id);
    const bearer = { authorization: `Bearer ${token}` };
    const list = await tm.manager.http.inject({
      method: 'GET',
      url: '/system/logs/guarded',
      headers: bearer,
    });
    expect(list.statusCode, list.body).toBe(200);
    expect(list.json().jobs[id]).toBeDefined();
    const log = await tm.manager.http.inject({
      method: 'GET',
      url: `/system/logs/guarded/${id}`,
      headers: bearer,
    });
    expect(log.statusCode).toBe(200);
    expect(log.body).toContain('guarded');
    const foreign = await tm.manager.http.inject({
      method: 'GET',
      url: '/system/logs/guarded-other',
      headers: bearer,
    });
    expect(foreign.statusCode).toBe(401);
  });
});

describe('capacity', () => {
  it('with 1 cpu, two 1-cpu jobs run one after the other; status shows 1000m requested, then 0', async () => {
    const token = await createService(small, {
      name: 'serial',
      image: 'alpine',
      script: 'sleep 1.5',
      cpu: '1',
      memory: '128Mi',
    });
    const a = await submit(small, 'serial', token, 'eA==');
    const b = await submit(small, 'serial', token, 'eA==');
    await waitJob(small, 'serial', a, ['Running'], 5000);
    const cpu = await nodeCpu(small);
    expect(cpu.capacity_cores).toBe(1000);
    expect(cpu.request_cores).toBe(1000);
    expect((await jobInfo(small, 'serial', b))?.status).toBe('Pending');
    const doneA = await waitJob(small, 'serial', a);
    const doneB = await waitJob(small, 'serial', b);
    expect(doneA.status).toBe('Succeeded');
    expect(doneB.status).toBe('Succeeded');
    expect(Date.parse(doneB.start_time ?? '')).toBeGreaterThanOrEqual(Date.parse(doneA.finish_time ?? ''));
    await waitFor(async () => (await nodeCpu(small)).request_cores === 0, 3000, 'capacity to be free');
  });

  it('a job that needs more cpu than any node fails at once instead of blocking the queue', async () => {
    const big = await createService(small, { name: 'huge', image: 'alpine', script: 'echo never', cpu: '2' });
    const fine = await createService(small, {
      name: 'tiny',
      image: 'alpine',
      script: 'echo tiny-ok',
      cpu: '0.5',
    });
    const stuck = await submit(small, 'huge', big, 'eA==');
    const ok = await submit(small, 'tiny', fine, 'eA==');
    expect((await waitJob(small, 'huge', stuck)).reason).toMatch(/no node/);
    expect((await waitJob(small, 'tiny', ok)).status).toBe('Succeeded');
  });
});

describe('delegated ids', () => {
  it('the same X-Delegated-Job-ID sent twice gives the same job, stored once', async () => {
    const token = await createService(tm, { name: 'dedupe', image: 'alpine', script: 'echo once' });
    const h = { 'x-delegated-job-id': 'origin-cluster:job-0001' };
    const first = await submit(tm, 'dedupe', token, 'eA==', h);
    const second = await submit(tm, 'dedupe', token, 'eA==', h);
    expect(second).toBe(first);
    // Concurrent duplicates land in one group commit: still one job.
    const h2 = { 'x-delegated-job-id': 'origin-cluster:job-0002' };
    const [c1, c2, c3] = await Promise.all([1, 2, 3].map(() => submit(tm, 'dedupe', token, 'eA==', h2)));
    expect(new Set([c1, c2, c3]).size).toBe(1);
    expect(c1).not.toBe(first);
    const jobs = (await listJobs(tm, 'dedupe')).jobs;
    expect(Object.keys(jobs).sort()).toEqual([first, c1].sort());
    await waitJob(tm, 'dedupe', first);
    await waitJob(tm, 'dedupe', c1);
  });

  it('an X-Delegated-Job-ID already held by another service job → 409, that job is not revealed', async () => {
    const a = await createService(tm, { name: 'dd-a', image: 'alpine', script: 'echo a' });
    const b = await createService(tm, { name: 'dd-b', image: 'alpine', script: 'echo b' });
    const h = { 'x-delegated-job-id': 'shared-id-1' };
    const ja = await submit(tm, 'dd-a', a, 'eA==', h);
    const res = await submitRaw(tm, 'dd-b', b, 'eA==', h);
    expect(res.statusCode, res.body).toBe(409);
    expect(res.json()).toMatchObject({ code: 'CONFLICT' });
    expect(res.body).not.toContain(ja);
    expect(Object.keys((await listJobs(tm, 'dd-b')).jobs)).toEqual([]);
    await waitJob(tm, 'dd-a', ja);
  });

  it('a malformed X-Delegated-Job-ID → 400', async () => {
    const token = await createService(tm, { name: 'dedupe-bad', image: 'alpine', script: 'echo x' });
    const res = await submitRaw(tm, 'dedupe-bad', token, 'eA==', {
      'x-delegated-job-id': 'has spaces/and slashes',
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toMatch(/X-Delegated-Job-ID/);
  });
});

describe('/system/logs', () => {
  it('DELETE one job → 204, then 404 for its log and a second DELETE', async () => {
    const token = await createService(tm, { name: 'del-one', image: 'alpine', script: 'echo bye' });
    const id = await submit(tm, 'del-one', token, 'eA==');
    await waitJob(tm, 'del-one', id);
    const del = await call(tm, { method: 'DELETE', url: `/system/logs/del-one/${id}` });
    expect(del.statusCode, del.body).toBe(204);
    const log = await call(tm, { method: 'GET', url: `/system/logs/del-one/${id}` });
    expect(log.statusCode).toBe(404);
    expect(log.json()).toMatchObject({ code: 'JOB_NOT_FOUND' });
    expect((await call(tm, { method: 'DELETE', url: `/system/logs/del-one/${id}` })).statusCode).toBe(404);
    expect((await listJobs(tm, 'del-one')).jobs[id]).toBeUndefined();
  });

  it('a job id of another service → 404', async () => {
    const a = await createService(tm, { name: 'logs-a', image: 'alpine', script: 'echo a' });
    await createService(tm, { name: 'logs-b', image: 'alpine', script: 'echo b' });
    const id = await submit(tm, 'logs-a', a, 'eA==');
    await waitJob(tm, 'logs-a', id);
    expect((await call(tm, { method: 'GET', url: `/system/logs/logs-b/${id}` })).statusCode).toBe(404);
    expect((await call(tm, { method: 'DELETE', url: `/system/logs/logs-b/${id}` })).statusCode).toBe(404);
    expect((await call(tm, { method: 'GET', url: `/system/logs/logs-a/${id}` })).statusCode).toBe(200);
    expect((await call(tm, { method: 'GET', url: '/system/logs/no-such-svc' })).statusCode).toBe(404);
  });

  it('DELETE /system/logs/{svc} removes finished jobs only; ?all=true removes (and stops) every job', async () => {
    const token = await createService(tm, {
      name: 'del-many',
      image: 'alpine',
      script: 'case "$EVENT" in *slow*) sleep 30;; esac; echo done',
    });
    const fast = await submit(tm, 'del-many', token, '{"mode":"fast"}', {
      'content-type': 'application/json',
    });
    await waitJob(tm, 'del-many', fast);
    const slow = await submit(tm, 'del-many', token, '{"mode":"slow"}', {
      'content-type': 'application/json',
    });
    await waitJob(tm, 'del-many', slow, ['Running'], 5000);

    const some = await call(tm, { method: 'DELETE', url: '/system/logs/del-many' });
    expect(some.statusCode, some.body).toBe(204);
    expect(Object.keys((await listJobs(tm, 'del-many')).jobs)).toEqual([slow]);

    const all = await call(tm, { method: 'DELETE', url: '/system/logs/del-many?all=true' });
    expect(all.statusCode, all.body).toBe(204);
    expect(Object.keys((await listJobs(tm, 'del-many')).jobs)).toEqual([]);
    // The running job was stopped, not left holding capacity.
    await waitFor(async () => tm.manager.runner.liveLog(slow) === undefined, 5000, 'the deleted job to stop');
    await waitFor(async () => (await nodeCpu(tm)).request_cores === 0, 5000, 'capacity to be released');
  });

  it('pages with next_page past 100 jobs, and no job is lost', async () => {
    const token = await createService(tm, {
      name: 'many',
      image: 'alpine',
      script: 'true',
      cpu: '0.1',
      memory: '16Mi',
    });
    const ids: string[] = [];
    for (let batch = 0; batch < 5; batch++) {
      ids.push(...(await Promise.all(Array.from({ length: 21 }, () => submit(tm, 'many', token, 'eA==')))));
    }
    expect(new Set(ids).size).toBe(105);
    const p1 = await listJobs(tm, 'many');
    expect(Object.keys(p1.jobs)).toHaveLength(100);
    expect(p1.next_page).not.toBe('');
    expect(p1.remaining_jobs).toBe(5);
    const p2 = await listJobs(tm, 'many', p1.next_page);
    expect(Object.keys(p2.jobs)).toHaveLength(5);
    expect(p2.next_page).toBe('');
    expect(p2.remaining_jobs).toBe(0);
    expect([...Object.keys(p1.jobs), ...Object.keys(p2.jobs)].sort()).toEqual([...ids].sort());
    // Newest first: the last job submitted is on the first page.
    expect(p1.jobs[ids[104]]).toBeDefined();

    await waitFor(
      async () => {
        const a = await listJobs(tm, 'many');
        const b = await listJobs(tm, 'many', a.next_page);
        const all = [...Object.values(a.jobs), ...Object.values(b.jobs)];
        return all.length === 105 && all.every((j) => FINISHED.includes(j.status)) ? all : undefined;
      },
      25_000,
      'all 105 jobs to finish',
    ).then((all) => expect(all.every((j) => j.status === 'Succeeded')).toBe(true));
  }, 30_000);

  it('a few jobs: next_page is empty and remaining_jobs 0; a junk page is a 4xx, not a 500', async () => {
    const token = await createService(tm, { name: 'few', image: 'alpine', script: 'true' });
    await submit(tm, 'few', token, 'eA==');
    const list = await listJobs(tm, 'few');
    expect(Object.keys(list.jobs)).toHaveLength(1);
    expect(list.next_page).toBe('');
    expect(list.remaining_jobs).toBe(0);
    const junk = await call(tm, { method: 'GET', url: '/system/logs/few?page=not-a-cursor' });
    expect(junk.statusCode).toBeLessThan(500);
  });
});
