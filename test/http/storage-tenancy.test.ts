// Bucket tenancy with two real OIDC users and the real embedded S3 store (DESIGN §3.2):
// a forged S3 event cannot make a job download someone else's object; naming someone
// else's bucket in a service is refused; read-only grants stay read-only through the S3
// keys from /system/config; an unsigned x-amz-copy-source or any x-amz-* header left out of
// SignedHeaders is refused.

import { createHash, randomBytes } from 'node:crypto';
import {
  CopyObjectCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ALICE,
  BOB,
  CAROL,
  eventually,
  rawRequest,
  type StorageKeys,
  s3Client,
  s3Event,
  signedRequest,
  startTenancy,
  type Tenancy,
} from '../support/tenants.ts';

const SECRET = 'alice private bytes 7f3a';

let t: Tenancy;
let aliceS3: S3Client;
let bobS3: S3Client;
let carolS3: S3Client;
let bobKeys: StorageKeys;
let bobToken: string;

const createBucket = async (who: string, body: Record<string, unknown>) => {
  const res = await t.call(who, { method: 'POST', url: '/system/buckets', payload: body });
  expect(res.statusCode, res.body).toBe(201);
};
const createService = (who: string, body: Record<string, unknown>) =>
  t.call(who, { method: 'POST', url: '/system/services', payload: { image: 'alpine', ...body } });
const text = async (s3: S3Client, bucket: string, key: string) =>
  (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToString();
const s3Status = async (p: Promise<unknown>): Promise<number> => {
  try {
    await p;
    return 200;
  } catch (e) {
    return (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? -1;
  }
};
const jobIds = async (service: string): Promise<string[]> => {
  const res = await t.call(BOB, { method: 'GET', url: `/system/logs/${service}` });
  expect(res.statusCode, res.body).toBe(200);
  return Object.keys(res.json().jobs ?? {});
};
const submit = (service: string, body: string, headers: Record<string, string> = {}) =>
  t.tm.manager.http.inject({
    method: 'POST',
    url: `/job/${service}`,
    payload: body,
    headers: { authorization: `Bearer ${bobToken}`, 'content-type': 'application/json', ...headers },
  });

beforeAll(async () => {
  t = await startTenancy([ALICE, BOB, CAROL]);
  bobToken = t.as(BOB).authorization.slice('Bearer '.length);
  [aliceS3, bobS3, carolS3] = await Promise.all([t.s3(ALICE), t.s3(BOB), t.s3(CAROL)]);
  bobKeys = await t.keys(BOB);

  await createBucket(ALICE, { bucket_name: 'alice-priv' });
  await createBucket(ALICE, { bucket_name: 'alice-shared', visibility: 'restricted', allowed_users: [BOB] });
  await createBucket(ALICE, { bucket_name: 'alice-pub', visibility: 'public' });
  await aliceS3.send(new PutObjectCommand({ Bucket: 'alice-priv', Key: 'secret.txt', Body: SECRET }));
  await aliceS3.send(new PutObjectCommand({ Bucket: 'alice-priv', Key: 'in/secret.txt', Body: SECRET }));
  await aliceS3.send(new PutObjectCommand({ Bucket: 'alice-shared', Key: 'doc.txt', Body: 'shared doc' }));
  await aliceS3.send(new PutObjectCommand({ Bucket: 'alice-pub', Key: 'pub.txt', Body: 'public doc' }));

  const svc = await createService(BOB, {
    name: 'bob-svc',
    image: 'alpine',
    script: 'cat "$INPUT_FILE_PATH"; cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/"',
    input: [{ storage_provider: 'minio.default', path: 'bob-in/in' }],
    output: [{ storage_provider: 'minio.default', path: 'bob-out/out' }],
  });
  expect(svc.statusCode, svc.body).toBe(201);
}, 120_000);

afterAll(async () => {
  await t?.close();
});

describe('item 1: a forged S3 event never downloads with the admin keys', () => {
  it('an event naming another user’s bucket is refused at intake (400), no job is stored', async () => {
    const res = await submit('bob-svc', s3Event('alice-priv', 'secret.txt'));
    expect(res.statusCode, res.body).toBe(400);
    expect(res.json().message).toContain('alice-priv');
    expect(res.body).not.toContain(SECRET);
    expect(await jobIds('bob-svc')).toEqual([]);
  });

  it('the same event on a synchronous run is 400 and the object is not returned', async () => {
    const res = await t.tm.manager.http.inject({
      method: 'POST',
      url: '/run/bob-svc',
      payload: s3Event('alice-priv', 'secret.txt'),
      headers: { authorization: `Bearer ${bobToken}`, 'content-type': 'application/json' },
    });
    expect(res.statusCode, res.body).toBe(400);
    expect(res.body).not.toContain(SECRET);
  });

  it('the delegated wrapper does not get around it, with or without delegation headers', async () => {
    const wrapped = JSON.stringify({
      storage_provider: `minio.${t.tm.config.clusterId}`,
      event: s3Event('alice-priv', 'secret.txt'),
    });
    expect((await submit('bob-svc', wrapped)).statusCode).toBe(400);
    const delegated = await submit('bob-svc', wrapped, {
      'x-delegated-job-id': 'forged-1',
      'x-delegated-from': 'elsewhere',
    });
    expect(delegated.statusCode, delegated.body).toBe(400);
    const otherOrigin = await submit(
      'bob-svc',
      JSON.stringify({ storage_provider: 'minio.elsewhere', event: s3Event('bob-in', 'in/x.txt') }),
      { 'x-delegated-job-id': 'forged-2', 'x-delegated-from': 'another' },
    );
    expect(otherOrigin.statusCode, otherOrigin.body).toBe(400);
    expect(await jobIds('bob-svc')).toEqual([]);
  });

  it('an event outside the service’s input path, or with a traversal key, is refused', async () => {
    const outside = await submit('bob-svc', s3Event('bob-in', 'elsewhere/x.txt'));
    expect(outside.statusCode, outside.body).toBe(400);
    const traversal = await submit('bob-svc', s3Event('bob-in', 'in/../../alice-priv/secret.txt'));
    expect(traversal.statusCode, traversal.body).toBe(400);
    const encoded = await submit('bob-svc', s3Event('bob-in', 'in/%2e%2e/%2e%2e/alice-priv/secret.txt'));
    expect(encoded.statusCode, encoded.body).toBe(400);
    expect(await jobIds('bob-svc')).toEqual([]);
  });

  it('a legitimate event naming an object under the input path still runs', async () => {
    await bobS3.send(new PutObjectCommand({ Bucket: 'bob-in', Key: 'in/ok.txt', Body: 'bob input' }));
    // The upload itself triggers a job; wait for it, then send one by hand.
    await eventually(async () => expect((await jobIds('bob-svc')).length).toBe(1), 'the triggered job');
    const res = await submit('bob-svc', s3Event('bob-in', 'in/ok.txt'));
    expect(res.statusCode, res.body).toBe(201);
    const id = res.json().job_id as string;
    await eventually(async () => {
      const jobs = (await t.call(BOB, { method: 'GET', url: '/system/logs/bob-svc' })).json().jobs;
      expect(jobs[id]?.status).toBe('Succeeded');
      const log = await t.call(BOB, { method: 'GET', url: `/system/logs/bob-svc/${id}` });
      expect(log.body).toContain('bob input');
    }, 'the job reading its input');
    expect(await text(bobS3, 'bob-out', 'out/ok.txt')).toBe('bob input');
  });

  it('a storage trigger does not run a job on a bucket its owner can no longer read', async () => {
    const svc = await createService(BOB, {
      name: 'bob-watch',
      image: 'alpine',
      script: 'cat "$INPUT_FILE_PATH"',
      input: [{ storage_provider: 'minio.default', path: 'alice-pub/in' }],
    });
    expect(svc.statusCode, svc.body).toBe(201);
    const narrowed = await t.call(ALICE, {
      method: 'PUT',
      url: '/system/buckets',
      payload: { bucket_name: 'alice-pub', visibility: 'private' },
    });
    expect(narrowed.statusCode, narrowed.body).toBe(204);
    // Alice watches the same path; the triggers go through the services by name, so once her
    // job is stored, Bob's service has been decided on.
    const mine = await createService(ALICE, {
      name: 'zz-alice-watch',
      image: 'alpine',
      script: 'true',
      input: [{ storage_provider: 'minio.default', path: 'alice-pub/in' }],
    });
    expect(mine.statusCode, mine.body).toBe(201);
    await aliceS3.send(
      new PutObjectCommand({ Bucket: 'alice-pub', Key: 'in/private-now.txt', Body: SECRET }),
    );
    await eventually(async () => {
      const res = await t.call(ALICE, { method: 'GET', url: '/system/logs/zz-alice-watch' });
      expect(Object.keys(res.json().jobs ?? {}).length).toBe(1);
    }, "Alice's own triggered job");
    expect(await jobIds('bob-watch')).toEqual([]);
    const forged = await submit('bob-watch', s3Event('alice-pub', 'in/private-now.txt'));
    expect(forged.statusCode, forged.body).toBe(400);
    await t.call(ALICE, {
      method: 'PUT',
      url: '/system/buckets',
      payload: { bucket_name: 'alice-pub', visibility: 'public' },
    });
  });
});

describe('item 1: delegated jobs read the origin with keys scoped to the service', () => {
  // What a cluster running one of bob-svc's delegated jobs gets from this (origin) cluster.
  let dlg: S3Client;
  beforeAll(async () => {
    const token = `dlg_${randomBytes(32).toString('hex')}`;
    const key = `delegation:${createHash('sha256').update(token).digest('hex')}`;
    await t.tm.store.setSetting(key, JSON.stringify({ service: 'bob-svc', expires: Date.now() + 3600_000 }));
    const config = await t.tm.manager.http.inject({
      method: 'GET',
      url: '/system/config',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(config.statusCode, config.body).toBe(200);
    dlg = s3Client(config.json().minio_provider as StorageKeys);
    const api = await t.tm.manager.http.inject({
      method: 'GET',
      url: '/system/buckets',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(api.statusCode).toBe(403);
  });
  afterAll(() => dlg?.destroy());

  it('reads under the inputs and writes under the outputs only', async () => {
    await bobS3.send(
      new PutObjectCommand({ Bucket: 'bob-in', Key: 'in/for-dlg.txt', Body: 'delegated input' }),
    );
    await bobS3.send(new PutObjectCommand({ Bucket: 'bob-in', Key: 'notes.txt', Body: 'not an input' }));
    expect(await text(dlg, 'bob-in', 'in/for-dlg.txt')).toBe('delegated input');
    expect(await s3Status(dlg.send(new GetObjectCommand({ Bucket: 'bob-in', Key: 'notes.txt' })))).toBe(403);
    expect(await s3Status(dlg.send(new GetObjectCommand({ Bucket: 'alice-priv', Key: 'secret.txt' })))).toBe(
      403,
    );
    expect(
      await s3Status(dlg.send(new PutObjectCommand({ Bucket: 'bob-out', Key: 'out/r.txt', Body: 'result' }))),
    ).toBe(200);
    for (const [bucket, key] of [
      ['bob-out', 'elsewhere.txt'],
      ['bob-in', 'in/overwrite.txt'],
      ['alice-pub', 'out/r.txt'],
    ]) {
      expect(
        await s3Status(dlg.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'x' }))),
        `${bucket}/${key}`,
      ).toBe(403);
    }
    expect(await s3Status(dlg.send(new DeleteBucketCommand({ Bucket: 'bob-out' })))).toBe(403);
  });
});

describe('item 2: naming someone else’s bucket grants nothing', () => {
  it('a service naming another user’s private bucket is 403 at create, as input or output', async () => {
    for (const io of [
      { input: [{ storage_provider: 'minio.default', path: 'alice-priv/in' }] },
      { output: [{ storage_provider: 'minio.default', path: 'alice-priv/out' }] },
    ]) {
      const res = await createService(BOB, { name: 'bob-grab', script: 'true', ...io });
      expect(res.statusCode, res.body).toBe(403);
      expect(res.json().message).toContain('alice-priv');
    }
    expect((await t.call(BOB, { method: 'GET', url: '/system/services/bob-grab' })).statusCode).toBe(404);
  });

  it('a read-only grant (restricted, public) cannot be named as an output', async () => {
    for (const bucket of ['alice-shared', 'alice-pub']) {
      const res = await createService(BOB, {
        name: 'bob-grab',
        image: 'alpine',
        script: 'true',
        output: [{ storage_provider: 'minio.default', path: `${bucket}/out` }],
      });
      expect(res.statusCode, `${bucket}: ${res.body}`).toBe(403);
    }
  });

  it('an update naming another user’s bucket is 403 and leaves the service as it was', async () => {
    const res = await t.call(BOB, {
      method: 'PUT',
      url: '/system/services',
      payload: {
        name: 'bob-svc',
        image: 'alpine',
        script: 'true',
        input: [{ storage_provider: 'minio.default', path: 'alice-priv/in' }],
      },
    });
    expect(res.statusCode, res.body).toBe(403);
    const svc = (await t.call(BOB, { method: 'GET', url: '/system/services/bob-svc' })).json();
    expect(svc.input[0].path).toBe('bob-in/in');
  });

  it('listing, presigning, visibility change and deletion of that bucket stay refused', async () => {
    expect((await t.call(BOB, { method: 'GET', url: '/system/buckets/alice-priv' })).statusCode).toBe(403);
    const presign = await t.call(BOB, {
      method: 'POST',
      url: '/system/buckets/alice-priv/presign',
      payload: { object_key: 'secret.txt', operation: 'download' },
    });
    expect(presign.statusCode).toBe(403);
    const vis = await t.call(BOB, {
      method: 'PUT',
      url: '/system/buckets',
      payload: { bucket_name: 'alice-priv', visibility: 'public' },
    });
    expect(vis.statusCode).toBe(403);
    expect((await t.call(BOB, { method: 'DELETE', url: '/system/buckets/alice-priv' })).statusCode).toBe(403);
    const listed = (await t.call(BOB, { method: 'GET', url: '/system/buckets' })).json() as Array<{
      bucket_name: string;
    }>;
    expect(listed.map((b) => b.bucket_name)).not.toContain('alice-priv');
    expect(
      await s3Status(bobS3.send(new GetObjectCommand({ Bucket: 'alice-priv', Key: 'secret.txt' }))),
    ).toBe(403);
    expect(await text(aliceS3, 'alice-priv', 'secret.txt')).toBe(SECRET);
  });

  it('a service may name a new bucket (its owner gets it) and the admin may name any', async () => {
    const own = await createService(BOB, {
      name: 'bob-fresh',
      image: 'alpine',
      script: 'true',
      output: [{ storage_provider: 'minio.default', path: 'bob-fresh-out/out' }],
    });
    expect(own.statusCode, own.body).toBe(201);
    const got = await t.call(BOB, { method: 'GET', url: '/system/buckets/bob-fresh-out' });
    expect(got.statusCode, got.body).toBe(200);
    expect(got.json().owner).toBe(BOB);
    const admin = await createService('admin', {
      name: 'admin-any',
      image: 'alpine',
      script: 'true',
      input: [{ storage_provider: 'minio.default', path: 'alice-priv/in' }],
    });
    expect(admin.statusCode, admin.body).toBe(201);
    expect((await t.call(ALICE, { method: 'GET', url: '/system/buckets/alice-priv' })).json().owner).toBe(
      ALICE,
    );
  });
});

describe('item 5: read-only grants stay read-only through the S3 keys', () => {
  it('a restricted or public bucket is readable by its grantees', async () => {
    expect(await text(bobS3, 'alice-shared', 'doc.txt')).toBe('shared doc');
    expect(await text(bobS3, 'alice-pub', 'pub.txt')).toBe('public doc');
    expect(await text(carolS3, 'alice-pub', 'pub.txt')).toBe('public doc');
    expect(
      await s3Status(carolS3.send(new GetObjectCommand({ Bucket: 'alice-shared', Key: 'doc.txt' }))),
    ).toBe(403);
  });

  it('PUT and DELETE of objects and DeleteBucket are refused on them', async () => {
    for (const bucket of ['alice-shared', 'alice-pub']) {
      expect(
        await s3Status(bobS3.send(new PutObjectCommand({ Bucket: bucket, Key: 'bob.txt', Body: 'x' }))),
        `PUT ${bucket}`,
      ).toBe(403);
      expect(
        await s3Status(bobS3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'doc.txt' }))),
        `DELETE ${bucket}`,
      ).toBe(403);
      expect(
        await s3Status(bobS3.send(new DeleteBucketCommand({ Bucket: bucket }))),
        `DeleteBucket ${bucket}`,
      ).toBe(403);
    }
    expect(await text(aliceS3, 'alice-shared', 'doc.txt')).toBe('shared doc');
    expect(await s3Status(aliceS3.send(new HeadObjectCommand({ Bucket: 'alice-pub', Key: 'bob.txt' })))).toBe(
      404,
    );
    expect(await t.tm.manager.storage.local.bucketExists('alice-pub')).toBe(true);
  });

  it('the bucket API agrees: no upload presign, visibility change or delete for a grantee', async () => {
    const up = await t.call(BOB, {
      method: 'POST',
      url: '/system/buckets/alice-shared/presign',
      payload: { object_key: 'x.txt', operation: 'upload' },
    });
    expect(up.statusCode).toBe(403);
    const down = await t.call(BOB, {
      method: 'POST',
      url: '/system/buckets/alice-shared/presign',
      payload: { object_key: 'doc.txt', operation: 'download' },
    });
    expect(down.statusCode, down.body).toBe(200);
    const vis = await t.call(BOB, {
      method: 'PUT',
      url: '/system/buckets',
      payload: { bucket_name: 'alice-shared', visibility: 'public' },
    });
    expect(vis.statusCode).toBe(403);
    expect((await t.call(BOB, { method: 'DELETE', url: '/system/buckets/alice-shared' })).statusCode).toBe(
      403,
    );
  });

  it('a signed copy from a bucket the caller may not read is refused', async () => {
    const status = await s3Status(
      bobS3.send(
        new CopyObjectCommand({
          Bucket: 'bob-in',
          Key: 'in/copied.txt',
          CopySource: 'alice-priv/secret.txt',
        }),
      ),
    );
    expect(status).toBe(403);
    expect(
      await s3Status(bobS3.send(new HeadObjectCommand({ Bucket: 'bob-in', Key: 'in/copied.txt' }))),
    ).toBe(404);
  });

  it('an unsigned x-amz-copy-source on a presigned upload is refused', async () => {
    const presign = await t.call(BOB, {
      method: 'POST',
      url: '/system/buckets/bob-in/presign',
      payload: { object_key: 'in/via-copy.txt', operation: 'upload' },
    });
    expect(presign.statusCode, presign.body).toBe(200);
    const res = await rawRequest(presign.json().url, 'PUT', {
      'x-amz-copy-source': '/alice-priv/secret.txt',
    });
    expect(res.status, res.body).toBe(403);
    expect(
      await s3Status(bobS3.send(new HeadObjectCommand({ Bucket: 'bob-in', Key: 'in/via-copy.txt' }))),
    ).toBe(404);
    // The same presigned URL without the extra header works.
    const plain = await rawRequest(presign.json().url, 'PUT', {}, 'plain upload');
    expect(plain.status, plain.body).toBe(200);
  });

  it('any x-amz-* header or host left out of SignedHeaders is refused; a fully signed request passes', async () => {
    const ok = await signedRequest(bobKeys, { method: 'PUT', path: '/bob-in/in/signed.txt', body: 'signed' });
    expect(ok.status, ok.body).toBe(200);
    const meta = await signedRequest(bobKeys, {
      method: 'PUT',
      path: '/bob-in/in/meta.txt',
      body: 'x',
      unsigned: { 'x-amz-meta-origin': 'not signed' },
    });
    expect(meta.status, meta.body).toBe(403);
    const copy = await signedRequest(bobKeys, {
      method: 'PUT',
      path: '/bob-in/in/copy2.txt',
      unsigned: { 'x-amz-copy-source': '/alice-priv/secret.txt' },
    });
    expect(copy.status, copy.body).toBe(403);
    const noHost = await signedRequest(bobKeys, {
      method: 'GET',
      path: '/bob-in/in/signed.txt',
      unsignable: ['host'],
    });
    expect(noHost.status, noHost.body).toBe(403);
    const presign = await t.call(BOB, {
      method: 'POST',
      url: '/system/buckets/bob-in/presign',
      payload: { object_key: 'in/signed.txt', operation: 'download' },
    });
    const extra = await rawRequest(presign.json().url, 'GET', { 'x-amz-request-payer': 'requester' });
    expect(extra.status, extra.body).toBe(403);
    for (const key of ['in/meta.txt', 'in/copy2.txt']) {
      expect(await s3Status(bobS3.send(new HeadObjectCommand({ Bucket: 'bob-in', Key: key }))), key).toBe(
        404,
      );
    }
  });
});

// The dashboard's object routes (PUT/GET/DELETE /system/buckets/{b}/object?key=) take the
// same grants and key rules as presign and the S3 API: a hostile user gets nothing through them.
describe('object routes: another user’s bucket and a key that climbs out', () => {
  const object = (
    who: string,
    method: 'PUT' | 'GET' | 'DELETE',
    bucket: string,
    key: string,
    body?: string,
  ) =>
    t.call(who, {
      method,
      url: `/system/buckets/${bucket}/object?key=${encodeURIComponent(key)}`,
      ...(body === undefined
        ? {}
        : {
            payload: body,
            headers: { 'content-type': 'application/octet-stream', 'content-length': String(body.length) },
          }),
    });

  it('bob can neither read, overwrite nor delete alice’s private object; restricted is read-only for him', async () => {
    await createBucket(ALICE, { bucket_name: 'alice-objroute' });
    expect((await object(ALICE, 'PUT', 'alice-objroute', 'k.txt', SECRET)).statusCode).toBe(201);
    for (const [method, body] of [['GET'], ['PUT', 'bob was here'], ['DELETE']] as const) {
      const res = await object(BOB, method, 'alice-objroute', 'k.txt', body);
      expect(res.statusCode, `${method}: ${res.body}`).toBe(403);
      expect(res.body).not.toContain(SECRET);
    }
    expect((await object(ALICE, 'GET', 'alice-objroute', 'k.txt')).body).toBe(SECRET);

    // alice-shared is restricted to bob (created above): he reads, he does not write.
    expect((await object(ALICE, 'PUT', 'alice-shared', 'r.txt', 'shared')).statusCode).toBe(201);
    expect((await object(BOB, 'GET', 'alice-shared', 'r.txt')).body).toBe('shared');
    expect((await object(BOB, 'PUT', 'alice-shared', 'r.txt', 'overwritten')).statusCode).toBe(403);
    expect((await object(BOB, 'DELETE', 'alice-shared', 'r.txt')).statusCode).toBe(403);
    expect((await object(ALICE, 'GET', 'alice-shared', 'r.txt')).body).toBe('shared');
  });

  it('a key that climbs out of bob’s own bucket is a 400 and reaches no other bucket', async () => {
    await createBucket(BOB, { bucket_name: 'bob-objroute' });
    for (const key of ['../alice-objroute/k.txt', 'a/../../alice-objroute/k.txt', '..', '/etc/passwd']) {
      const get = await object(BOB, 'GET', 'bob-objroute', key);
      expect(get.statusCode, `${key}: ${get.body}`).toBeGreaterThanOrEqual(400);
      expect(get.statusCode, key).toBeLessThan(500);
      expect(get.body).not.toContain(SECRET);
      const put = await object(BOB, 'PUT', 'bob-objroute', key, 'evil');
      expect(put.statusCode, key).toBeGreaterThanOrEqual(400);
      expect(put.statusCode, key).toBeLessThan(500);
    }
    expect((await object(ALICE, 'GET', 'alice-objroute', 'k.txt')).body).toBe(SECRET);
  });
});
