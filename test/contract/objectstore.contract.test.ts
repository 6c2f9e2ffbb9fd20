// ObjectStore contract: one suite, run against the embedded S3 server and against a
// separately started S3 server process (how the other tiers reach their object store).
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createS3ObjectStore } from '../../src/adapters/objectstore-s3/s3-object-store.ts';
import { type EmbeddedS3, startEmbeddedS3 } from '../../src/adapters/s3-embedded/embedded-s3.ts';
import { FlotillaError } from '../../src/core/errors.ts';
import type { ObjectStore } from '../../src/core/ports.ts';
import { startS3ServerProcess } from '../support/s3-server.ts';

interface Server {
  endpoint: string;
  accessKey: string;
  secretKey: string;
  stop(): Promise<void>;
}

interface Fixture {
  server: Server;
  store: ObjectStore;
}

const MiB = 1024 * 1024;

let bucketCounter = 0;
const freshBucket = (): string => `ct-${process.pid}-${++bucketCounter}-${randomBytes(3).toString('hex')}`;

/** `total` random bytes in 1 MiB chunks, and a promise of their sha256 once consumed. */
function randomStream(total: number): { stream: AsyncIterable<Uint8Array>; sha256: Promise<string> } {
  const hash = createHash('sha256');
  let resolveDigest!: (d: string) => void;
  const sha256 = new Promise<string>((r) => {
    resolveDigest = r;
  });
  async function* generate() {
    for (let sent = 0; sent < total; sent += MiB) {
      const chunk = randomBytes(Math.min(MiB, total - sent));
      hash.update(chunk);
      yield new Uint8Array(chunk);
    }
    resolveDigest(hash.digest('hex'));
  }
  return { stream: generate(), sha256 };
}

async function sha256Of(stream: AsyncIterable<Uint8Array>): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) {
    hash.update(chunk);
    size += chunk.byteLength;
  }
  return { digest: hash.digest('hex'), size };
}

async function readAll(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function caught(promise: Promise<unknown>): Promise<FlotillaError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(FlotillaError);
    return err as FlotillaError;
  }
  throw new Error('expected a FlotillaError');
}

/** Everything an error exposes: message, stack, details, and its JSON form. */
const errorText = (err: FlotillaError): string =>
  [err.message, err.stack, JSON.stringify(err.details), JSON.stringify(err)].join('\n');

function objectStoreContract(name: string, start: () => Promise<Server>): void {
  describe(`ObjectStore contract: ${name}`, () => {
    let fx: Fixture;

    beforeAll(async () => {
      const server = await start();
      const store = createS3ObjectStore({
        endpoint: server.endpoint,
        accessKey: server.accessKey,
        secretKey: server.secretKey,
        forcePathStyle: true,
      });
      fx = { server, store };
    });

    afterAll(async () => {
      await fx?.store.close();
      await fx?.server.stop();
    });

    it('reports the credentials it was given', () => {
      expect(fx.store.credentials).toEqual({
        endpoint: fx.server.endpoint,
        verify: true,
        access_key: fx.server.accessKey,
        secret_key: fx.server.secretKey,
        region: 'us-east-1',
      });
    });

    it('creates (idempotently), lists, and deletes buckets', async () => {
      const bucket = freshBucket();
      expect(await fx.store.bucketExists(bucket)).toBe(false);
      await fx.store.ensureBucket(bucket);
      await fx.store.ensureBucket(bucket);
      expect(await fx.store.bucketExists(bucket)).toBe(true);
      const listed = (await fx.store.listBuckets()).find((b) => b.name === bucket);
      expect(listed).toBeDefined();
      await fx.store.deleteBucket(bucket, { force: false });
      expect(await fx.store.bucketExists(bucket)).toBe(false);
    });

    it('refuses to delete a non-empty bucket unless forced, then empties it', async () => {
      const bucket = freshBucket();
      await fx.store.ensureBucket(bucket);
      await Promise.all(
        Array.from({ length: 12 }, (_, i) => fx.store.putObject(bucket, `dir/${i}`, new Uint8Array([i]))),
      );
      await fx.store.putObject(bucket, '123', new Uint8Array([1]));
      const err = await caught(fx.store.deleteBucket(bucket, { force: false }));
      expect(err.code).toBe('CONFLICT');
      await fx.store.deleteBucket(bucket, { force: true });
      expect(await fx.store.bucketExists(bucket)).toBe(false);
    });

    it('deleting a missing bucket is BUCKET_NOT_FOUND', async () => {
      const err = await caught(fx.store.deleteBucket(freshBucket(), { force: true }));
      expect(err.code).toBe('BUCKET_NOT_FOUND');
    });

    describe('objects', () => {
      let bucket: string;
      beforeAll(async () => {
        bucket = freshBucket();
        await fx.store.ensureBucket(bucket);
      });

      it('round-trips bytes, heads and deletes them', async () => {
        const key = 'in/a file ü+&=.txt';
        const bytes = new Uint8Array(randomBytes(4096));
        await fx.store.putObject(bucket, key, bytes);
        expect(Buffer.compare(await readAll(await fx.store.getObject(bucket, key)), bytes)).toBe(0);
        const head = await fx.store.headObject(bucket, key);
        expect(head).toMatchObject({ key, size: 4096 });
        expect(head?.lastModified).toBeInstanceOf(Date);
        await fx.store.deleteObject(bucket, key);
        expect(await fx.store.headObject(bucket, key)).toBeUndefined();
      });

      it('round-trips an empty object', async () => {
        await fx.store.putObject(bucket, 'empty', new Uint8Array(0));
        expect((await readAll(await fx.store.getObject(bucket, 'empty'))).length).toBe(0);
      });

      it.each([
        ['of unknown size (multipart)', false],
        ['of known size (one streamed PUT)', true],
      ])('round-trips a 20 MiB stream %s', async (_label, sizeKnown) => {
        const size = 20 * MiB;
        const { stream, sha256 } = randomStream(size);
        const key = `big/${sizeKnown ? 'known' : 'unknown'}.bin`;
        await fx.store.putObject(bucket, key, stream, sizeKnown ? size : undefined);
        const got = await sha256Of(await fx.store.getObject(bucket, key));
        expect(got).toEqual({ digest: await sha256, size });
        expect((await fx.store.headObject(bucket, key))?.size).toBe(size);
      });

      it('lists by prefix, in pages, with a cursor', async () => {
        const keys = Array.from({ length: 25 }, (_, i) => `page/item-${String(i).padStart(2, '0')}`);
        await Promise.all(keys.map((k, i) => fx.store.putObject(bucket, k, new Uint8Array(i + 1))));
        await fx.store.putObject(bucket, 'pagination-not-me', new Uint8Array(1));

        const pages: string[][] = [];
        let cursor: string | null = null;
        do {
          const page = await fx.store.listObjects(bucket, { prefix: 'page/', cursor, limit: 10 });
          pages.push(page.objects.map((o) => o.key));
          cursor = page.next;
        } while (cursor && pages.length < 10);

        expect(pages.map((p) => p.length)).toEqual([10, 10, 5]);
        expect(pages.flat()).toEqual(keys);
        const first = await fx.store.listObjects(bucket, { prefix: 'page/item-0', limit: 1 });
        expect(first.objects).toEqual([{ key: 'page/item-00', size: 1, lastModified: expect.any(Date) }]);
        expect(first.next).not.toBeNull();
      });

      it('heads a missing object or bucket as undefined', async () => {
        expect(await fx.store.headObject(bucket, 'nope')).toBeUndefined();
        expect(await fx.store.headObject(freshBucket(), 'nope')).toBeUndefined();
      });

      it('gets a missing object as OBJECT_NOT_FOUND and a missing bucket as BUCKET_NOT_FOUND', async () => {
        const missingKey = await caught(fx.store.getObject(bucket, 'nope'));
        expect(missingKey.code).toBe('OBJECT_NOT_FOUND');
        expect(missingKey.status).toBe(404);
        const missingBucket = await caught(fx.store.getObject(freshBucket(), 'nope'));
        expect(missingBucket.code).toBe('BUCKET_NOT_FOUND');
        expect(missingBucket.status).toBe(404);
      });

      it('presigns a PUT and a GET that work with plain fetch', async () => {
        const key = 'presigned/x y.bin';
        const bytes = new Uint8Array(randomBytes(1000));
        const putUrl = await fx.store.presign(bucket, key, 'upload', 300);
        const put = await fetch(putUrl, { method: 'PUT', body: bytes });
        expect(put.status).toBe(200);

        const getUrl = await fx.store.presign(bucket, key, 'download', 300);
        const got = await fetch(getUrl);
        expect(got.status).toBe(200);
        expect(Buffer.compare(Buffer.from(await got.arrayBuffer()), bytes)).toBe(0);

        const missing = await fetch(await fx.store.presign(bucket, 'presigned/none', 'download', 300));
        expect(missing.status).toBe(404);
      });

      it('never puts the secret key in error text', async () => {
        const wrongKeyStore = createS3ObjectStore({
          endpoint: fx.server.endpoint,
          accessKey: 'NOSUCHKEY0000000000',
          secretKey: fx.server.secretKey,
          forcePathStyle: true,
        });
        const errors = [
          await caught(fx.store.getObject(bucket, 'nope')),
          await caught(fx.store.ensureBucket('Not_A_Valid_Bucket')),
          await caught(wrongKeyStore.putObject(bucket, 'k', new Uint8Array(1))),
          await caught(wrongKeyStore.listBuckets()),
        ];
        await wrongKeyStore.close();
        expect(errors[2].code).toBe('UNAVAILABLE');
        expect(errors[2].message).toContain('InvalidAccessKeyId');
        for (const err of errors) expect(errorText(err)).not.toContain(fx.server.secretKey);
      });
    });
  });
}

// ---------------------------------------------------------------- (a) the embedded server

objectStoreContract('embedded s3rver', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'flotilla-embedded-s3-'));
  const embedded = await startEmbeddedS3({ dataDir, host: '127.0.0.1', port: 0 });
  return {
    endpoint: embedded.endpoint,
    accessKey: embedded.accessKey,
    secretKey: embedded.secretKey,
    stop: async () => {
      await embedded.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
});

// ---------------------------------------------------------------- (b) a separate server process

objectStoreContract('separate s3rver process', startS3ServerProcess);

// ---------------------------------------------------------------- embedded server only

describe('embedded S3 server', () => {
  let server: EmbeddedS3;
  let store: ObjectStore;
  let dataDir: string;
  const bucket = 'incoming';

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'flotilla-embedded-s3-'));
    server = await startEmbeddedS3({
      dataDir,
      host: '127.0.0.1',
      port: 0,
      accessKey: 'GIVENACCESSKEY000000',
      secretKey: 'given-secret-key-0123456789abcdefghijklm',
    });
    store = createS3ObjectStore({
      endpoint: server.endpoint,
      accessKey: server.accessKey,
      secretKey: server.secretKey,
      forcePathStyle: true,
    });
    await store.ensureBucket(bucket);
  });

  afterAll(async () => {
    await store?.close();
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  const storeWith = (accessKey: string, secretKey: string) =>
    createS3ObjectStore({ endpoint: server.endpoint, accessKey, secretKey, forcePathStyle: true });

  it('uses the keys it was given', () => {
    expect(server).toMatchObject({
      accessKey: 'GIVENACCESSKEY000000',
      secretKey: 'given-secret-key-0123456789abcdefghijklm',
      region: 'us-east-1',
    });
    expect(server.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('generates random keys when none are given', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flotilla-embedded-s3-'));
    const [a, b] = await Promise.all([startEmbeddedS3({ dataDir: dir }), startEmbeddedS3({ dataDir: dir })]);
    await Promise.all([a.stop(), b.stop()]);
    await rm(dir, { recursive: true, force: true });
    expect(a.accessKey).toMatch(/^[0-9A-F]{20}$/);
    expect(a.secretKey).toHaveLength(40);
    expect(a.accessKey).not.toBe(b.accessKey);
    expect(a.secretKey).not.toBe(b.secretKey);
  });

  it('notifies object creation with bucket, key and size, until unsubscribed', async () => {
    const seen: { bucket: string; key: string; size: number }[] = [];
    const unsubscribe = server.onObjectCreated((e) => seen.push(e));
    await store.putObject(bucket, 'svc/in/photo 1.jpg', new Uint8Array(7));
    const { stream } = randomStream(9 * MiB);
    await store.putObject(bucket, 'svc/in/big.bin', stream);
    const putUrl = await store.presign(bucket, 'svc/in/presigned.txt', 'upload', 60);
    await fetch(putUrl, { method: 'PUT', body: 'hello' });
    await store.deleteObject(bucket, 'svc/in/photo 1.jpg');
    unsubscribe();
    await store.putObject(bucket, 'svc/in/after.txt', new Uint8Array(1));

    expect(seen).toEqual([
      { bucket, key: 'svc/in/photo 1.jpg', size: 7 },
      { bucket, key: 'svc/in/big.bin', size: 9 * MiB },
      { bucket, key: 'svc/in/presigned.txt', size: 5 },
    ]);
  });

  it('keeps serving when a listener throws', async () => {
    const unsubscribe = server.onObjectCreated(() => {
      throw new Error('listener bug');
    });
    await store.putObject(bucket, 'throwing-listener', new Uint8Array(1));
    unsubscribe();
    expect(await store.headObject(bucket, 'throwing-listener')).toMatchObject({ size: 1 });
  });

  it('rejects a wrong secret key, an unknown access key and s3rver’s default key', async () => {
    for (const [accessKey, secretKey, code] of [
      [server.accessKey, 'wrong-secret', 'SignatureDoesNotMatch'],
      ['UNKNOWNKEY0000000000', server.secretKey, 'InvalidAccessKeyId'],
      ['S3RVER', 'S3RVER', 'InvalidAccessKeyId'],
    ]) {
      const other = storeWith(accessKey, secretKey);
      const err = await caught(other.listObjects(bucket, {}));
      await other.close();
      expect(err.details?.s3Code).toBe(code);
      expect(err.details?.httpStatus).toBe(403);
      expect(errorText(err)).not.toContain(server.secretKey);
    }
    const wrong = storeWith(server.accessKey, 'wrong-secret');
    const putErr = await caught(wrong.putObject(bucket, 'forged', new Uint8Array(10)));
    await wrong.close();
    expect(putErr.details?.s3Code).toBe('SignatureDoesNotMatch');
    expect(await store.headObject(bucket, 'forged')).toBeUndefined();
  });

  it('rejects unsigned and tampered requests', async () => {
    await store.putObject(bucket, 'secret.txt', new TextEncoder().encode('s3cr3t'));
    expect((await fetch(`${server.endpoint}/${bucket}/secret.txt`)).status).toBe(403);
    expect((await fetch(`${server.endpoint}/${bucket}/x`, { method: 'PUT', body: 'x' })).status).toBe(403);
    expect((await fetch(`${server.endpoint}/`)).status).toBe(403);

    const url = await store.presign(bucket, 'secret.txt', 'download', 60);
    expect((await fetch(url.replace('secret.txt', 'secret.txu'))).status).toBe(403);
    const forged = new URL(url);
    forged.searchParams.set('X-Amz-Expires', '604800');
    expect((await fetch(forged)).status).toBe(403);
    expect((await fetch(url)).status).toBe(200);
  });

  it('accepts SigV2 presigned URLs (boto3’s default) only when signed with its own key', async () => {
    await store.putObject(bucket, 'v2.txt', new TextEncoder().encode('v2'));
    const presignV2 = (accessKey: string, secretKey: string) => {
      const expires = Math.floor(Date.now() / 1000) + 60;
      const signature = createHmac('sha1', secretKey)
        .update(`GET\n\n\n${expires}\n/${bucket}/v2.txt`)
        .digest('base64');
      const query = new URLSearchParams({
        AWSAccessKeyId: accessKey,
        Expires: String(expires),
        Signature: signature,
      });
      return `${server.endpoint}/${bucket}/v2.txt?${query}`;
    };
    const good = await fetch(presignV2(server.accessKey, server.secretKey));
    expect(await good.text()).toBe('v2');
    expect((await fetch(presignV2(server.accessKey, 'wrong-secret'))).status).toBe(403);
    expect((await fetch(presignV2('S3RVER', 'S3RVER'))).status).toBe(403);
  });

  it('rejects an expired presigned URL', async () => {
    const url = await store.presign(bucket, 'secret.txt', 'download', 1);
    await new Promise((r) => setTimeout(r, 2100));
    expect((await fetch(url)).status).toBe(403);
  });

  it('keeps objects across a restart on the same data dir and keys', async () => {
    await store.putObject(bucket, 'persisted', new TextEncoder().encode('still here'));
    await store.close();
    await server.stop();
    server = await startEmbeddedS3({ dataDir, accessKey: server.accessKey, secretKey: server.secretKey });
    store = storeWith(server.accessKey, server.secretKey);
    expect((await readAll(await store.getObject(bucket, 'persisted'))).toString()).toBe('still here');
  });
});
