// /system/buckets in process over the embedded S3 store: service buckets, create, conflicts,
// names, object listings, presigned upload and download through real HTTP, delete, auth.
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basic, startInProcess, type TestManager } from '../support/in-process.ts';

let tm: TestManager;
const ADMIN = { authorization: basic() };

const call = (opts: InjectOptions): Promise<LightMyRequestResponse> =>
  tm.manager.http.inject({ ...opts, headers: { ...ADMIN, ...opts.headers } });

const bucketNames = async (): Promise<string[]> => {
  const res = await call({ method: 'GET', url: '/system/buckets' });
  expect(res.statusCode, res.body).toBe(200);
  return (res.json() as Array<{ bucket_name: string }>).map((b) => b.bucket_name);
};

const createBucket = (body: unknown) =>
  call({ method: 'POST', url: '/system/buckets', payload: body as object });

const presign = (bucket: string, body: unknown) =>
  call({ method: 'POST', url: `/system/buckets/${bucket}/presign`, payload: body as object });

beforeAll(async () => {
  tm = await startInProcess({ cpus: '1', memory: '1Gi' });
  const res = await call({
    method: 'POST',
    url: '/system/services',
    payload: {
      name: 'bucket-svc',
      image: 'alpine',
      script: 'echo',
      input: [{ storage_provider: 'minio.default', path: 'bsvc-in/inputs' }],
      output: [{ storage_provider: 'minio.default', path: 'bsvc-out/results' }],
    },
  });
  expect(res.statusCode, res.body).toBe(201);
});
afterAll(async () => {
  await tm?.close();
});

describe('listing and creating', () => {
  it('lists the buckets created with a service', async () => {
    const res = await call({ method: 'GET', url: '/system/buckets' });
    expect(res.statusCode).toBe(200);
    const list = res.json() as Array<Record<string, unknown>>;
    const names = list.map((b) => b.bucket_name);
    expect(names).toEqual(expect.arrayContaining(['bsvc-in', 'bsvc-out']));
    const one = list.find((b) => b.bucket_name === 'bsvc-in');
    // As OSCAR (Go's nil slice): allowed_users is null unless the bucket is restricted.
    expect(one).toMatchObject({
      visibility: 'private',
      allowed_users: null,
      owner: expect.any(String),
      bucket_path: 'bsvc-in',
    });
    expect(await tm.manager.storage.local.bucketExists('bsvc-out')).toBe(true);
  });

  it('POST creates (201), a duplicate is 409, an invalid name 400', async () => {
    const res = await createBucket({ bucket_name: 'made-by-test', visibility: 'private' });
    expect(res.statusCode, res.body).toBe(201);
    expect(await bucketNames()).toContain('made-by-test');
    expect(await tm.manager.storage.local.bucketExists('made-by-test')).toBe(true);

    const dup = await createBucket({ bucket_name: 'made-by-test' });
    expect(dup.statusCode).toBe(409);
    expect(dup.json()).toMatchObject({ code: 'CONFLICT' });
    // A service's bucket is taken too.
    expect((await createBucket({ bucket_name: 'bsvc-in' })).statusCode).toBe(409);

    for (const bad of ['Upper_Case', 'ab', 'x'.repeat(64), '-starts-with-dash', 'has space']) {
      const r = await createBucket({ bucket_name: bad });
      expect(r.statusCode, bad).toBe(400);
      expect(r.json().message, bad).toMatch(/bucket_name/);
    }
    const noName = await createBucket({ visibility: 'public' });
    expect(noName.statusCode).toBe(400);
    const badVis = await createBucket({ bucket_name: 'vis-bad', visibility: 'everyone' });
    expect(badVis.statusCode).toBe(400);
    expect(badVis.json().message).toMatch(/visibility/);
    expect(await bucketNames()).not.toContain('vis-bad');
  });

  it('PUT changes a bucket visibility', async () => {
    expect((await createBucket({ bucket_name: 'vis-change' })).statusCode).toBe(201);
    const put = await call({
      method: 'PUT',
      url: '/system/buckets',
      payload: { bucket_name: 'vis-change', visibility: 'public' },
    });
    expect(put.statusCode, put.body).toBe(204);
    const got = await call({ method: 'GET', url: '/system/buckets/vis-change' });
    expect(got.json().visibility).toBe('public');
    const missing = await call({
      method: 'PUT',
      url: '/system/buckets',
      payload: { bucket_name: 'never-made', visibility: 'public' },
    });
    expect(missing.statusCode).toBe(404);
  });
});

describe('objects', () => {
  it('GET /system/buckets/{b} lists its objects with paging fields', async () => {
    expect((await createBucket({ bucket_name: 'with-objects' })).statusCode).toBe(201);
    const empty = await call({ method: 'GET', url: '/system/buckets/with-objects' });
    expect(empty.statusCode).toBe(200);
    expect(empty.json()).toMatchObject({
      bucket_name: 'with-objects',
      objects: [],
      is_truncated: false,
      next_page: '',
      returned_items: 0,
    });

    const store = tm.manager.storage.local;
    await store.putObject('with-objects', 'a.txt', new TextEncoder().encode('aaa'));
    await store.putObject('with-objects', 'dir/b.bin', new Uint8Array(1234));
    const res = await call({ method: 'GET', url: '/system/buckets/with-objects' });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({
      bucket_name: 'with-objects',
      is_truncated: false,
      next_page: '',
      returned_items: 2,
    });
    const objects = (
      body.objects as Array<{ object_name: string; size_bytes: number; last_modified: string }>
    ).sort((x, y) => x.object_name.localeCompare(y.object_name));
    expect(objects.map((o) => [o.object_name, o.size_bytes])).toEqual([
      ['a.txt', 3],
      ['dir/b.bin', 1234],
    ]);
    expect(Number.isNaN(Date.parse(objects[0].last_modified))).toBe(false);
  });

  it('pages past 1000 objects with next_page', async () => {
    expect((await createBucket({ bucket_name: 'many-objects' })).statusCode).toBe(201);
    const store = tm.manager.storage.local;
    const keys = Array.from({ length: 1003 }, (_, i) => `obj-${String(i).padStart(4, '0')}`);
    const failures: string[] = [];
    for (let i = 0; i < keys.length; i += 100) {
      const settled = await Promise.allSettled(
        keys.slice(i, i + 100).map((k) => store.putObject('many-objects', k, new Uint8Array(1))),
      );
      for (const r of settled)
        if (r.status === 'rejected') failures.push(String(r.reason?.message ?? r.reason));
    }
    expect(failures, 'every put succeeds').toEqual([]);
    const r1 = await call({ method: 'GET', url: '/system/buckets/many-objects' });
    expect(r1.statusCode, r1.body.slice(0, 300)).toBe(200);
    const p1 = r1.json();
    expect(p1.returned_items).toBe(1000);
    expect(p1.is_truncated).toBe(true);
    expect(p1.next_page).not.toBe('');
    const r2 = await call({
      method: 'GET',
      url: `/system/buckets/many-objects?page=${encodeURIComponent(p1.next_page)}`,
    });
    expect(r2.statusCode, r2.body).toBe(200);
    const p2 = r2.json();
    expect(p2.returned_items).toBe(3);
    expect(p2.is_truncated).toBe(false);
    expect(p2.next_page).toBe('');
    const seen = [...p1.objects, ...p2.objects].map((o: { object_name: string }) => o.object_name).sort();
    expect(seen).toEqual(keys);
  }, 30_000);

  it('presigned upload then presigned download move the same bytes over real HTTP', async () => {
    const bytes = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7) % 256));
    const up = await presign('bsvc-in', { object_key: 'inputs/via-presign.bin', operation: 'upload' });
    expect(up.statusCode, up.body).toBe(200);
    const upBody = up.json();
    expect(upBody).toMatchObject({
      method: 'PUT',
      url: expect.stringMatching(/^https?:\/\//),
      headers: expect.any(Object),
    });
    expect(Date.parse(upBody.expires_at)).toBeGreaterThan(Date.now());
    const put = await fetch(upBody.url, { method: 'PUT', body: bytes, headers: upBody.headers });
    expect(put.status, await put.clone().text()).toBeLessThan(300);
    expect((await tm.manager.storage.local.headObject('bsvc-in', 'inputs/via-presign.bin'))?.size).toBe(4096);

    const down = await presign('bsvc-in', {
      object_key: 'inputs/via-presign.bin',
      operation: 'download',
      expires_in: 60,
    });
    expect(down.statusCode, down.body).toBe(200);
    expect(down.json().method).toBe('GET');
    const got = await fetch(down.json().url);
    expect(got.status).toBe(200);
    expect(Buffer.from(await got.arrayBuffer()).equals(bytes)).toBe(true);
  });

  it('presign with a bad operation, key or expiry → 400 naming the field', async () => {
    const op = await presign('bsvc-in', { object_key: 'k', operation: 'delete' });
    expect(op.statusCode).toBe(400);
    expect(op.json().message).toMatch(/operation/);
    const key = await presign('bsvc-in', { operation: 'upload' });
    expect(key.statusCode).toBe(400);
    expect(key.json().message).toMatch(/object_key/);
    const exp = await presign('bsvc-in', { object_key: 'k', operation: 'upload', expires_in: -5 });
    expect(exp.statusCode).toBe(400);
    expect(exp.json().message).toMatch(/expires_in/);
    const notJson = await call({
      method: 'POST',
      url: '/system/buckets/bsvc-in/presign',
      payload: '[1,2]',
      headers: { 'content-type': 'application/json' },
    });
    expect(notJson.statusCode).toBe(400);
  });
});

describe('deleting and errors', () => {
  it('DELETE a bucket (with objects) → 204, then 404', async () => {
    expect((await createBucket({ bucket_name: 'to-delete' })).statusCode).toBe(201);
    await tm.manager.storage.local.putObject('to-delete', 'x', new TextEncoder().encode('x'));
    const del = await call({ method: 'DELETE', url: '/system/buckets/to-delete' });
    expect(del.statusCode, del.body).toBe(204);
    expect(await tm.manager.storage.local.bucketExists('to-delete')).toBe(false);
    expect(await bucketNames()).not.toContain('to-delete');
    expect((await call({ method: 'GET', url: '/system/buckets/to-delete' })).statusCode).toBe(404);
    expect((await call({ method: 'DELETE', url: '/system/buckets/to-delete' })).statusCode).toBe(404);
    // The name can be used again.
    expect((await createBucket({ bucket_name: 'to-delete' })).statusCode).toBe(201);
  });

  it('an unknown bucket → 404 JSON on every route; a malformed name → 400', async () => {
    for (const req of [
      { method: 'GET', url: '/system/buckets/no-such-bucket' },
      { method: 'DELETE', url: '/system/buckets/no-such-bucket' },
      {
        method: 'POST',
        url: '/system/buckets/no-such-bucket/presign',
        payload: { object_key: 'k', operation: 'download' },
      },
    ] as InjectOptions[]) {
      const res = await call(req);
      expect(res.statusCode, `${req.method} ${req.url}`).toBe(404);
      expect(res.json()).toMatchObject({ code: 'BUCKET_NOT_FOUND' });
    }
    const bad = await call({ method: 'GET', url: '/system/buckets/Not_A_Bucket' });
    expect(bad.statusCode).toBe(400);
  });

  it('no credentials → 401; a service token or wrong password cannot manage buckets', async () => {
    for (const req of [
      { method: 'GET', url: '/system/buckets' },
      { method: 'POST', url: '/system/buckets', payload: { bucket_name: 'anon-bucket' } },
      { method: 'GET', url: '/system/buckets/bsvc-in' },
      { method: 'DELETE', url: '/system/buckets/bsvc-in' },
      {
        method: 'POST',
        url: '/system/buckets/bsvc-in/presign',
        payload: { object_key: 'k', operation: 'download' },
      },
    ] as InjectOptions[]) {
      const res = await tm.manager.http.inject(req);
      expect(res.statusCode, `${req.method} ${req.url}`).toBe(401);
      expect(res.json()).toMatchObject({ code: 'UNAUTHORIZED' });
    }
    const token = (await call({ method: 'GET', url: '/system/services/bucket-svc' })).json().token as string;
    const bearer = await tm.manager.http.inject({
      method: 'DELETE',
      url: '/system/buckets/bsvc-in',
      headers: { authorization: `Bearer ${token}` },
    });
    expect([401, 403]).toContain(bearer.statusCode);
    const wrong = await tm.manager.http.inject({
      method: 'GET',
      url: '/system/buckets',
      headers: { authorization: basic('nope') },
    });
    expect(wrong.statusCode).toBe(401);
    expect(await bucketNames()).not.toContain('anon-bucket');
    expect(await tm.manager.storage.local.bucketExists('bsvc-in')).toBe(true);
  });
});

describe('the dashboard object routes (PUT/GET/DELETE /system/buckets/{b}/object?key=)', () => {
  it('upload stores the bytes, download answers them as an attachment, delete removes them', async () => {
    expect((await createBucket({ bucket_name: 'obj-routes' })).statusCode).toBe(201);
    const bytes = Buffer.alloc(300_000, 7);
    bytes.write('first bytes');
    const up = await call({
      method: 'PUT',
      url: '/system/buckets/obj-routes/object?key=dir/data.bin',
      headers: { 'content-type': 'application/octet-stream' },
      payload: bytes,
    });
    expect(up.statusCode, up.body).toBe(201);
    expect(up.json()).toEqual({ object_key: 'dir/data.bin', size_bytes: bytes.length });
    const down = await call({ method: 'GET', url: '/system/buckets/obj-routes/object?key=dir/data.bin' });
    expect(down.statusCode).toBe(200);
    expect(down.headers['content-disposition']).toContain('filename="data.bin"');
    expect(down.headers['content-type']).toBe('application/octet-stream');
    expect(Buffer.compare(down.rawPayload, bytes)).toBe(0);
    const del = await call({ method: 'DELETE', url: '/system/buckets/obj-routes/object?key=dir/data.bin' });
    expect(del.statusCode).toBe(204);
    const gone = await call({ method: 'GET', url: '/system/buckets/obj-routes/object?key=dir/data.bin' });
    expect(gone.statusCode).toBe(404);
    expect(gone.json()).toMatchObject({ code: 'OBJECT_NOT_FOUND' });
  });

  it('refuses a key with ".." or a leading "/" (400 naming key), an unknown bucket (404), no credentials (401)', async () => {
    for (const key of ['../x', '/abs', 'a/../b', '']) {
      const res = await call({
        method: 'PUT',
        url: `/system/buckets/obj-routes/object?key=${encodeURIComponent(key)}`,
        payload: 'x',
      });
      expect(res.statusCode, key).toBe(400);
      expect(res.json().message, key).toMatch(/^key:/);
    }
    const unknown = await call({ method: 'GET', url: '/system/buckets/never-there/object?key=a' });
    expect(unknown.statusCode).toBe(404);
    const anon = await tm.manager.http.inject({
      method: 'GET',
      url: '/system/buckets/obj-routes/object?key=a',
    });
    expect(anon.statusCode).toBe(401);
  });
});
