// Path traversal through object keys (DESIGN §3.2): a presign, a SigV4 request signed with
// the caller's own keys, an x-amz-copy-source, a multi-object delete or a service's
// output path with "." / ".." segments, encoded dots or slashes, backslashes or NUL never
// reach another bucket or the disk outside the store's data dir — with user keys and with
// the admin's.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ALICE,
  BOB,
  rawRequest,
  type StorageKeys,
  signedRequest,
  startTenancy,
  type Tenancy,
} from '../support/tenants.ts';

const SECRET = 'victim bytes 51c9';

let t: Tenancy;
let aliceS3: S3Client;
let bobS3: S3Client;
let bobKeys: StorageKeys;
let adminKeys: StorageKeys;

const secretIntact = async () => {
  const got = await aliceS3.send(new GetObjectCommand({ Bucket: 'victim-b', Key: 'secret.txt' }));
  expect(await got.Body!.transformToString()).toBe(SECRET);
};
const s3Status = async (p: Promise<unknown>): Promise<number> => {
  try {
    await p;
    return 200;
  } catch (e) {
    return (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? -1;
  }
};

beforeAll(async () => {
  t = await startTenancy([ALICE, BOB]);
  [aliceS3, bobS3] = await Promise.all([t.s3(ALICE), t.s3(BOB)]);
  [bobKeys, adminKeys] = await Promise.all([t.keys(BOB), t.keys('admin')]);
  for (const [who, bucket] of [
    [ALICE, 'victim-b'],
    [BOB, 'own-b'],
  ]) {
    const res = await t.call(who, {
      method: 'POST',
      url: '/system/buckets',
      payload: { bucket_name: bucket },
    });
    expect(res.statusCode, res.body).toBe(201);
  }
  await aliceS3.send(new PutObjectCommand({ Bucket: 'victim-b', Key: 'secret.txt', Body: SECRET }));
}, 120_000);

afterAll(async () => {
  await t?.close();
});

describe('presign', () => {
  it.each([
    '../victim-b/secret.txt',
    'a/../../victim-b/secret.txt',
    '../../../../../../tmp/flotilla-presign-escape',
    './secret.txt',
    'a/./b',
    '/victim-b/secret.txt',
    'a\\..\\b',
    'a\u0000b',
  ])('refuses the key %j with 400 naming it', async (key) => {
    for (const operation of ['download', 'upload']) {
      const res = await t.call(BOB, {
        method: 'POST',
        url: '/system/buckets/own-b/presign',
        payload: { object_key: key, operation },
      });
      expect(res.statusCode, `${operation}: ${res.body}`).toBe(400);
      expect(res.json().message).toContain('object_key');
      expect(res.json().message).toContain(JSON.stringify(key).slice(1, -1).slice(0, 8));
    }
  });

  it('keys with dots inside a segment stay usable', async () => {
    const res = await t.call(BOB, {
      method: 'POST',
      url: '/system/buckets/own-b/presign',
      payload: { object_key: 'dir/..hidden/file.tar.gz', operation: 'upload' },
    });
    expect(res.statusCode, res.body).toBe(200);
    const put = await rawRequest(res.json().url, 'PUT', {}, 'dots');
    expect(put.status, put.body).toBe(200);
  });
});

describe('SigV4 requests with the caller’s own keys', () => {
  const paths = [
    '/own-b/../victim-b/secret.txt',
    '/own-b/%2e%2e/victim-b/secret.txt',
    '/own-b/%2E%2E/victim-b/secret.txt',
    '/own-b/..%2Fvictim-b%2Fsecret.txt',
    '/own-b/x/%2e%2e%2f%2e%2e%2fvictim-b/secret.txt',
    '/own-b/..\\victim-b\\secret.txt',
    '/own-b/..%5Cvictim-b%5Csecret.txt',
    '/own-b/./../victim-b/secret.txt',
    '/own-b/a%00b',
  ];

  it.each(paths)('GET %s is refused and returns nothing of the victim', async (path) => {
    const res = await signedRequest(bobKeys, { method: 'GET', path });
    expect(res.status, res.body).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(res.body).not.toContain(SECRET);
  });

  it.each(paths)('PUT and DELETE %s are refused; the victim object is intact', async (path) => {
    const put = await signedRequest(bobKeys, { method: 'PUT', path, body: 'overwritten' });
    expect(put.status, put.body).toBeGreaterThanOrEqual(400);
    expect(put.status).toBeLessThan(500);
    const del = await signedRequest(bobKeys, { method: 'DELETE', path });
    expect(del.status, del.body).toBeGreaterThanOrEqual(400);
    expect(del.status).toBeLessThan(500);
    await secretIntact();
  });

  it('the SDK with a ".." key cannot read, overwrite or delete the victim’s object', async () => {
    expect(
      await s3Status(bobS3.send(new GetObjectCommand({ Bucket: 'own-b', Key: '../victim-b/secret.txt' }))),
    ).toBe(400);
    expect(
      await s3Status(
        bobS3.send(new PutObjectCommand({ Bucket: 'own-b', Key: '../victim-b/secret.txt', Body: 'pwned' })),
      ),
    ).toBe(400);
    const multi = await s3Status(
      bobS3.send(
        new DeleteObjectsCommand({
          Bucket: 'own-b',
          Delete: { Objects: [{ Key: '../victim-b/secret.txt' }] },
        }),
      ),
    );
    expect(multi).toBeGreaterThanOrEqual(400);
    await secretIntact();
  });

  it('a signed x-amz-copy-source with a traversal path is refused', async () => {
    for (const source of ['/own-b/../victim-b/secret.txt', 'own-b/%2e%2e/victim-b/secret.txt']) {
      const res = await signedRequest(bobKeys, {
        method: 'PUT',
        path: '/own-b/copied.txt',
        headers: { 'x-amz-copy-source': source },
      });
      expect(res.status, `${source}: ${res.body}`).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
    }
    expect(await s3Status(bobS3.send(new HeadObjectCommand({ Bucket: 'own-b', Key: 'copied.txt' })))).toBe(
      404,
    );
  });
});

describe('nothing is written outside the data dir', () => {
  const escapes = (tag: string) => {
    const name = `flotilla-escape-${tag}-${process.pid}-${Date.now()}`;
    return { key: `${'../'.repeat(16)}tmp/${name}`, name };
  };
  const landedAt = (key: string, name: string) => [
    `${resolve(t.tm.dataDir, 's3', 'own-b', key)}._S3rver_object`,
    `/tmp/${name}._S3rver_object`,
    `/tmp/${name}`,
  ];

  it.each([
    ['user', () => bobKeys],
    ['admin', () => adminKeys],
  ] as const)(
    'a PUT with %s keys to /own-b/../../…/tmp/x is refused and creates no file',
    async (who, keys) => {
      const { key, name } = escapes(who);
      for (const path of [`/own-b/${key}`, `/own-b/${key.replaceAll('..', '%2e%2e')}`]) {
        const res = await signedRequest(keys(), { method: 'PUT', path, body: 'escaped' });
        expect(res.status, res.body).toBeGreaterThanOrEqual(400);
        expect(res.status).toBeLessThan(500);
      }
      for (const p of landedAt(key, name)) expect(existsSync(p), p).toBe(false);
    },
  );

  it('a service whose output path climbs out of its bucket is refused at create (400)', async () => {
    for (const io of [
      { output: [{ storage_provider: 'minio.default', path: 'own-b/../victim-b' }] },
      { output: [{ storage_provider: 'minio.default', path: 'bob-out-b/x/../../victim-b/y' }] },
      { input: [{ storage_provider: 'minio.default', path: 'bob-in-b/./in' }] },
    ]) {
      const res = await t.call(BOB, {
        method: 'POST',
        url: '/system/services',
        payload: { name: 'bob-climb', image: 'alpine', script: 'echo x > "$TMP_OUTPUT_DIR/f.txt"', ...io },
      });
      expect(res.statusCode, res.body).toBe(400);
      expect(res.json().message).toMatch(/path/);
    }
    await secretIntact();
  });
});
