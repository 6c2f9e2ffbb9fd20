// Buckets a service names (DESIGN §3.1, issue #10): they take the service's owner,
// visibility and allowed users; deleting the service deletes the ones it created and
// leaves the ones that existed before it. isolation_level USER gives each allowed user a
// private bucket "<bucket>-<first 10 chars of the uid>" per input bucket, as OSCAR does;
// SERVICE (the default) one bucket for the service.
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALICE, BOB, CAROL, eventually, startTenancy, type Tenancy } from '../support/tenants.ts';

let t: Tenancy;
let aliceS3: S3Client;
let bobS3: S3Client;

const uid10 = (sub: string) => sub.slice(0, 10);
const createService = async (who: string, body: Record<string, unknown>, status = 201) => {
  const res = await t.call(who, {
    method: 'POST',
    url: '/system/services',
    payload: { image: 'alpine', ...body },
  });
  expect(res.statusCode, res.body).toBe(status);
  return res;
};
const updateService = async (who: string, body: Record<string, unknown>) => {
  const res = await t.call(who, {
    method: 'PUT',
    url: '/system/services',
    payload: { image: 'alpine', ...body },
  });
  expect(res.statusCode, res.body).toBe(204);
};
const deleteService = async (who: string, name: string) => {
  const res = await t.call(who, { method: 'DELETE', url: `/system/services/${name}` });
  expect(res.statusCode, res.body).toBe(204);
};
const bucketAs = (who: string, name: string) =>
  t.call(who, { method: 'GET', url: `/system/buckets/${name}` });
const exists = (name: string) => t.tm.manager.storage.local.bucketExists(name);
const io = (path: string) => [{ storage_provider: 'minio.default', path }];

beforeAll(async () => {
  t = await startTenancy([ALICE, BOB, CAROL]);
  [aliceS3, bobS3] = await Promise.all([t.s3(ALICE), t.s3(BOB)]);
}, 120_000);

afterAll(async () => {
  await t?.close();
});

describe('buckets named by a service', () => {
  it('take the service’s owner, visibility and allowed users', async () => {
    await createService(ALICE, {
      name: 'vis-svc',
      image: 'alpine',
      script: 'true',
      visibility: 'restricted',
      allowed_users: [BOB],
      input: io('vis-in/in'),
      output: io('vis-out/out'),
    });
    for (const b of ['vis-in', 'vis-out']) {
      const res = await bucketAs(ALICE, b);
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toMatchObject({ owner: ALICE, visibility: 'restricted', allowed_users: [BOB] });
    }
    expect((await bucketAs(BOB, 'vis-in')).statusCode).toBe(200);
    expect((await bucketAs(CAROL, 'vis-in')).statusCode).toBe(403);

    await createService(BOB, {
      name: 'pub-svc',
      image: 'alpine',
      script: 'true',
      visibility: 'public',
      output: io('pub-out/o'),
    });
    expect((await bucketAs(CAROL, 'pub-out')).json()).toMatchObject({ owner: BOB, visibility: 'public' });
  });

  it('follow the service when its visibility changes', async () => {
    await updateService(ALICE, {
      name: 'vis-svc',
      image: 'alpine',
      script: 'true',
      visibility: 'private',
      input: io('vis-in/in'),
      output: io('vis-out/out'),
    });
    expect((await bucketAs(ALICE, 'vis-in')).json()).toMatchObject({ owner: ALICE, visibility: 'private' });
    expect((await bucketAs(BOB, 'vis-in')).statusCode).toBe(403);
  });

  it('go with the service when it created them; buckets that existed before it stay', async () => {
    const made = await t.call(ALICE, {
      method: 'POST',
      url: '/system/buckets',
      payload: { bucket_name: 'pre-made' },
    });
    expect(made.statusCode, made.body).toBe(201);
    await aliceS3.send(new PutObjectCommand({ Bucket: 'pre-made', Key: 'keep.txt', Body: 'kept' }));
    await createService(ALICE, {
      name: 'del-svc',
      image: 'alpine',
      script: 'true',
      input: io('pre-made/in'),
      output: io('fresh-made/out'),
    });
    expect(await exists('fresh-made')).toBe(true);
    await deleteService(ALICE, 'del-svc');
    expect(await exists('fresh-made')).toBe(false);
    expect(await exists('pre-made')).toBe(true);
    const kept = await aliceS3.send(new GetObjectCommand({ Bucket: 'pre-made', Key: 'keep.txt' }));
    expect(await kept.Body!.transformToString()).toBe('kept');
    expect((await bucketAs(ALICE, 'pre-made')).json().owner).toBe(ALICE);
  });

  it('a bucket another service created is not deleted with a service that only named it', async () => {
    await createService(ALICE, {
      name: 'maker',
      image: 'alpine',
      script: 'true',
      output: io('shared-made/out'),
    });
    await createService(ALICE, { name: 'user-of', script: 'true', input: io('shared-made/out') });
    await deleteService(ALICE, 'user-of');
    expect(await exists('shared-made')).toBe(true);
    await deleteService(ALICE, 'maker');
    expect(await exists('shared-made')).toBe(false);
  });
});

describe('isolation_level', () => {
  const bobBucket = `iso-in-${uid10(BOB)}`;
  const carolBucket = `iso-in-${uid10(CAROL)}`;

  it('USER: one private bucket per allowed user and input bucket, owned by that user', async () => {
    await createService(ALICE, {
      name: 'iso-svc',
      image: 'alpine',
      script: 'cat "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/seen.txt"',
      isolation_level: 'USER',
      visibility: 'restricted',
      allowed_users: [BOB, CAROL],
      input: io('iso-in/in'),
      output: io('iso-out/out'),
    });
    expect(bobBucket).toBe('iso-in-b0b5b0b5b0');
    for (const [user, bucket] of [
      [BOB, bobBucket],
      [CAROL, carolBucket],
    ]) {
      const res = await bucketAs(user, bucket);
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toMatchObject({ owner: user, visibility: 'private', allowed_users: null });
    }
    expect((await bucketAs(CAROL, bobBucket)).statusCode).toBe(403);
    expect((await bucketAs(BOB, carolBucket)).statusCode).toBe(403);
    // As OSCAR: the owner joins allowed_users; a bucket only for users listed.
    expect(await exists(`iso-in-${uid10(ALICE)}`)).toBe(false);
    const svc = (await t.call(ALICE, { method: 'GET', url: '/system/services/iso-svc' })).json();
    expect(svc.allowed_users).toEqual([BOB, CAROL, ALICE]);
    expect(svc.bucket_list).toEqual([bobBucket, carolBucket]);
    // The service's own buckets are there too.
    expect(await exists('iso-in')).toBe(true);
    expect(await exists('iso-out')).toBe(true);
  });

  it('USER: an upload into a user’s bucket under the input path runs the service, outputs stay in that bucket', async () => {
    await bobS3.send(new PutObjectCommand({ Bucket: bobBucket, Key: 'in/mine.txt', Body: 'bob data' }));
    await eventually(async () => {
      const res = await t.call(BOB, { method: 'GET', url: '/system/logs/iso-svc' });
      expect(res.statusCode, res.body).toBe(200);
      const jobs = Object.values(res.json().jobs ?? {}) as Array<{ status: string }>;
      expect(jobs.map((j) => j.status)).toEqual(['Succeeded']);
    }, "the job of Bob's upload");
    // Its outputs land in Bob's own bucket (OSCAR makes the output folders there), not in
    // the shared output bucket other allowed users can read.
    const out = await bobS3.send(new GetObjectCommand({ Bucket: bobBucket, Key: 'out/seen.txt' }));
    expect(await out.Body!.transformToString()).toBe('bob data');
    const shared = await t.call(ALICE, { method: 'GET', url: '/system/buckets/iso-out' });
    expect(shared.json().objects).toEqual([]);
  });

  it('USER: a user left out on update loses the bucket; deleting the service removes the rest', async () => {
    await updateService(ALICE, {
      name: 'iso-svc',
      image: 'alpine',
      script: 'true',
      isolation_level: 'USER',
      visibility: 'restricted',
      allowed_users: [BOB],
      input: io('iso-in/in'),
      output: io('iso-out/out'),
    });
    expect(await exists(carolBucket)).toBe(false);
    expect(await exists(bobBucket)).toBe(true);
    await deleteService(ALICE, 'iso-svc');
    for (const b of [bobBucket, 'iso-in', 'iso-out']) expect(await exists(b), b).toBe(false);
  });

  it('USER: a user bucket name someone else already holds is refused (403)', async () => {
    const squat = `clash-in-${uid10(BOB)}`;
    const made = await t.call(CAROL, {
      method: 'POST',
      url: '/system/buckets',
      payload: { bucket_name: squat },
    });
    expect(made.statusCode, made.body).toBe(201);
    const res = await createService(
      ALICE,
      {
        name: 'clash-svc',
        image: 'alpine',
        script: 'true',
        isolation_level: 'user',
        allowed_users: [BOB],
        input: io('clash-in/in'),
      },
      403,
    );
    expect(res.json().message).toContain(squat);
    expect((await bucketAs(CAROL, squat)).json().owner).toBe(CAROL);
    expect(await exists('clash-in')).toBe(false);
  });

  it('SERVICE (the default): one bucket for the service, none per user', async () => {
    await createService(ALICE, {
      name: 'svc-iso',
      image: 'alpine',
      script: 'true',
      isolation_level: 'SERVICE',
      visibility: 'restricted',
      allowed_users: [BOB],
      input: io('svciso-in/in'),
    });
    expect((await bucketAs(BOB, 'svciso-in')).json()).toMatchObject({
      owner: ALICE,
      visibility: 'restricted',
    });
    expect(await exists(`svciso-in-${uid10(BOB)}`)).toBe(false);
    const svc = (await t.call(ALICE, { method: 'GET', url: '/system/services/svc-iso' })).json();
    expect(svc.bucket_list ?? []).toEqual([]);
  });
});
