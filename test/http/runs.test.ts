// Synchronous runs (POST /run/{service}) in process with the real process executor: the
// body answers as faas-supervisor does (stdout, one file base64, several files base64 zip),
// payload decoding, failures as JSON errors, timeouts, and a caller that goes away.
import { execFileSync } from 'node:child_process';
import { inflateRawSync } from 'node:zlib';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basic, startInProcess, type TestManager } from '../support/in-process.ts';
import { waitFor } from '../support/wait.ts';

let tm: TestManager;
const ADMIN = { authorization: basic() };

const call = (opts: InjectOptions): Promise<LightMyRequestResponse> =>
  tm.manager.http.inject({ ...opts, headers: { ...ADMIN, ...opts.headers } });

const createService = async (body: Record<string, unknown>): Promise<string> => {
  const res = await call({
    method: 'POST',
    url: '/system/services',
    payload: { cpu: '0.1', memory: '64Mi', ...body },
  });
  expect(res.statusCode, res.body).toBe(201);
  const got = await call({ method: 'GET', url: `/system/services/${body.name}` });
  return got.json().token as string;
};

const run = (
  svc: string,
  token: string,
  payload: string | Buffer = '',
  contentType = 'application/octet-stream',
) =>
  tm.manager.http.inject({
    method: 'POST',
    url: `/run/${svc}`,
    headers: { authorization: `Bearer ${token}`, 'content-type': contentType },
    payload,
  });

const requestedCpu = async (): Promise<number> => {
  const res = await call({ method: 'GET', url: '/system/status' });
  expect(res.statusCode).toBe(200);
  return res
    .json()
    .cluster.nodes.reduce((a: number, n: { cpu: { request_cores: number } }) => a + n.cpu.request_cores, 0);
};

/** The process table's command lines (to see whether a script is still alive). */
const processArgs = (): string => execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });

/** Entries of a zip archive: name → content, read through the central directory. */
const unzip = (zip: Buffer): Map<string, Buffer> => {
  let eocd = -1;
  for (let i = zip.length - 22; i >= 0; i--) {
    if (zip.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('no end of central directory');
  const count = zip.readUInt16LE(eocd + 10);
  let p = zip.readUInt32LE(eocd + 16);
  const out = new Map<string, Buffer>();
  for (let n = 0; n < count; n++) {
    if (zip.readUInt32LE(p) !== 0x02014b50) throw new Error('bad central directory entry');
    const method = zip.readUInt16LE(p + 10);
    const compressed = zip.readUInt32LE(p + 20);
    const nameLen = zip.readUInt16LE(p + 28);
    const extraLen = zip.readUInt16LE(p + 30);
    const commentLen = zip.readUInt16LE(p + 32);
    const local = zip.readUInt32LE(p + 42);
    const name = zip.subarray(p + 46, p + 46 + nameLen).toString('utf8');
    const dataAt = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    const raw = zip.subarray(dataAt, dataAt + compressed);
    out.set(name, method === 8 ? inflateRawSync(raw) : Buffer.from(raw));
    p += 46 + nameLen + extraLen + commentLen;
  }
  return out;
};

beforeAll(async () => {
  tm = await startInProcess({ cpus: '2', memory: '2Gi', nodes: '1', jobTimeout: '20', port: '0' });
});
afterAll(async () => {
  await tm?.close();
});

describe('POST /run answers as faas-supervisor', () => {
  it('no output file: the body is the script stdout', async () => {
    const token = await createService({
      name: 'run-stdout',
      image: 'alpine',
      script: 'echo "hello from $OSCAR_SERVICE_NAME"; echo noise >&2',
    });
    const res = await run('run-stdout', token, 'eA==');
    expect(res.statusCode, res.body).toBe(200);
    expect(res.body).toBe('hello from run-stdout\n');
  });

  it('one output file: the body is that file base64-encoded, byte for byte', async () => {
    const token = await createService({
      name: 'run-one',
      image: 'alpine',
      script: 'echo ignored-stdout; cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/copy.bin"',
    });
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const res = await run('run-one', token, bytes.toString('base64'));
    expect(res.statusCode, res.body).toBe(200);
    expect(res.body).not.toContain('ignored-stdout');
    expect(Buffer.from(res.body, 'base64').equals(bytes)).toBe(true);
  });

  it('several output files: the body is a base64 zip holding each file', async () => {
    const token = await createService({
      name: 'run-many',
      image: 'alpine',
      script:
        'cd "$TMP_OUTPUT_DIR"; echo alpha > a.txt; mkdir -p sub; echo beta > sub/b.txt; printf gamma > c.dat',
    });
    const res = await run('run-many', token, 'eA==');
    expect(res.statusCode, res.body).toBe(200);
    const zip = Buffer.from(res.body, 'base64');
    expect(zip.subarray(0, 4).toString('latin1')).toBe('PK\x03\x04');
    const entries = unzip(zip);
    expect([...entries.keys()].sort()).toEqual(['a.txt', 'c.dat', 'sub/b.txt']);
    expect(entries.get('a.txt')?.toString()).toBe('alpha\n');
    expect(entries.get('sub/b.txt')?.toString()).toBe('beta\n');
    expect(entries.get('c.dat')?.toString()).toBe('gamma');
  });

  it('a non-JSON payload is base64-decoded into the input file; a JSON one is written as is', async () => {
    const token = await createService({
      name: 'run-input',
      image: 'alpine',
      script: 'printf "<<"; cat "$INPUT_FILE_PATH"; printf ">>"',
    });
    const b64 = await run(
      'run-input',
      token,
      Buffer.from('plain text payload').toString('base64'),
      'text/plain',
    );
    expect(b64.statusCode, b64.body).toBe(200);
    expect(b64.body).toBe('<<plain text payload>>');
    const json = '{"x": [1, 2], "y": "z"}';
    const js = await run('run-input', token, json, 'application/json');
    expect(js.statusCode, js.body).toBe(200);
    expect(js.body).toBe(`<<${json}>>`);
  });

  it('outputs are also uploaded to the service output path', async () => {
    const token = await createService({
      name: 'run-upload',
      image: 'alpine',
      script: 'echo stored > "$TMP_OUTPUT_DIR/r.txt"',
      output: [{ storage_provider: 'minio.default', path: 'run-upload-bkt/results' }],
    });
    const res = await run('run-upload', token, 'eA==');
    expect(res.statusCode, res.body).toBe(200);
    expect(Buffer.from(res.body, 'base64').toString()).toBe('stored\n');
    const listed = await tm.manager.storage.local.listObjects('run-upload-bkt', { limit: 100 });
    expect(listed.objects.map((o) => o.key)).toEqual(['results/r.txt']);
  });

  it('admin Basic may run too', async () => {
    await createService({ name: 'run-admin', image: 'alpine', script: 'echo admin-ran' });
    const res = await call({
      method: 'POST',
      url: '/run/run-admin',
      payload: 'eA==',
      headers: { 'content-type': 'text/plain' },
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.body).toBe('admin-ran\n');
  });
});

describe('POST /run errors', () => {
  it('a failing script → a JSON error with the exit code and the tail of its output', async () => {
    const token = await createService({
      name: 'run-fail',
      image: 'alpine',
      script: 'echo partial-out; echo broken-input >&2; exit 5',
    });
    const res = await run('run-fail', token, 'eA==');
    expect(res.statusCode).toBeGreaterThanOrEqual(400);
    expect(res.headers['content-type']).toMatch(/application\/json/);
    const body = res.json();
    expect(body).toMatchObject({ code: 'JOB_FAILED', statusCode: res.statusCode });
    expect(body.message).toMatch(/exit code 5/);
    expect(body.details).toMatchObject({ exit_code: 5 });
    expect(body.details.stderr).toContain('broken-input');
    expect(body.details.stdout).toContain('partial-out');
    // The capacity it took is free again.
    expect(await requestedCpu()).toBe(0);
  });

  it('a run past its timeout → 504 TIMEOUT, killed in time', async () => {
    const token = await createService({ name: 'run-slow', image: 'alpine', script: 'sleep 30', timeout: 1 });
    const t0 = Date.now();
    const res = await run('run-slow', token, 'eA==');
    expect(Date.now() - t0).toBeLessThan(6000);
    expect(res.statusCode).toBe(504);
    expect(res.json()).toMatchObject({ code: 'TIMEOUT' });
    expect(res.json().message).toMatch(/timed out/);
    expect(await requestedCpu()).toBe(0);
  });

  it('an S3 event naming a missing object → 400 naming the object', async () => {
    const token = await createService({
      name: 'run-missing',
      image: 'alpine',
      script: 'cat "$INPUT_FILE_PATH"',
      input: [{ storage_provider: 'minio.default', path: 'run-missing-bkt/in' }],
    });
    const event = JSON.stringify({
      Records: [{ s3: { bucket: { name: 'run-missing-bkt' }, object: { key: 'in/nope.bin' } } }],
    });
    const res = await run('run-missing', token, event, 'application/json');
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toContain('run-missing-bkt/in/nope.bin');
  });

  it('an S3 event naming an existing object: the script reads it', async () => {
    const token = await createService({
      name: 'run-object',
      image: 'alpine',
      script: 'echo "key=$STORAGE_OBJECT_KEY"; cat "$INPUT_FILE_PATH"',
      input: [{ storage_provider: 'minio.default', path: 'run-object-bkt/in' }],
    });
    await tm.manager.storage.local.putObject(
      'run-object-bkt',
      'in/obj.txt',
      new TextEncoder().encode('object body\n'),
    );
    const event = JSON.stringify({
      // Under the input path: an event naming any other object is refused (DESIGN §3.2).
      Records: [{ s3: { bucket: { name: 'run-object-bkt' }, object: { key: 'in/obj.txt' } } }],
    });
    const res = await run('run-object', token, event, 'application/json');
    expect(res.statusCode, res.body).toBe(200);
    expect(res.body).toMatch(/key=\S*obj\.txt\n/);
    expect(res.body).toContain('object body\n');
  });

  it('unknown service → 404, wrong or missing token → 401', async () => {
    const token = await createService({ name: 'run-auth', image: 'alpine', script: 'echo x' });
    const unknown = await run('no-such-run', token, 'eA==');
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ code: 'SERVICE_NOT_FOUND' });
    expect((await run('run-auth', 'a'.repeat(64), 'eA==')).statusCode).toBe(401);
    const other = await createService({ name: 'run-auth-other', image: 'alpine', script: 'echo y' });
    expect((await run('run-auth', other, 'eA==')).statusCode).toBe(401);
    const none = await tm.manager.http.inject({
      method: 'POST',
      url: '/run/run-auth',
      payload: 'eA==',
      headers: { 'content-type': 'text/plain' },
    });
    expect(none.statusCode).toBe(401);
  });

  it('a service too large for any node → an error, not a hang', async () => {
    const token = await createService({ name: 'run-huge', image: 'alpine', script: 'echo never', cpu: '16' });
    const res = await run('run-huge', token, 'eA==');
    expect(res.statusCode).toBeGreaterThanOrEqual(400);
    expect(res.statusCode).not.toBe(500);
    expect(res.json().message).toMatch(/no node/);
  });
});

describe('capacity and disconnects', () => {
  it('runs reserve capacity: two 2-cpu runs on 2 cpus go one after the other', async () => {
    const token = await createService({
      name: 'run-serial',
      image: 'alpine',
      script: 'sleep 1; echo done',
      cpu: '2',
    });
    const t0 = Date.now();
    const first = run('run-serial', token, 'eA==');
    await waitFor(async () => (await requestedCpu()) === 2000, 3000, 'the first run to hold the cpus');
    const [a, b] = await Promise.all([first, run('run-serial', token, 'eA==')]);
    expect(a.statusCode).toBe(200);
    expect(b.statusCode).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(2000);
    expect(await requestedCpu()).toBe(0);
  });

  it('a caller that disconnects mid-run: the script is killed and capacity comes back', async () => {
    const marker = 'sleep 29.517';
    const token = await createService({ name: 'run-gone', image: 'alpine', script: marker, cpu: '2' });
    const base = await tm.manager.listen();
    const abort = new AbortController();
    const pending = fetch(`${base}/run/run-gone`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain' },
      body: 'eA==',
      signal: abort.signal,
    });
    await waitFor(async () => processArgs().includes(marker), 5000, 'the script to start');
    expect(await requestedCpu()).toBe(2000);
    setTimeout(() => abort.abort(), 300);
    await expect(pending).rejects.toThrow();
    await waitFor(async () => !processArgs().includes(marker), 6000, 'the script to be killed');
    await waitFor(async () => (await requestedCpu()) === 0, 6000, 'capacity to be free');
    // The manager still answers, over the socket and in process.
    const health = await fetch(`${base}/health`);
    expect(health.status).toBe(200);
    const again = await createService({ name: 'run-after', image: 'alpine', script: 'echo still-here' });
    const res = await fetch(`${base}/run/run-after`, {
      method: 'POST',
      headers: { authorization: `Bearer ${again}`, 'content-type': 'text/plain' },
      body: 'eA==',
    });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('still-here\n');
  });
});
