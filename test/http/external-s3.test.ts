// The standalone/federated tiers use a configured S3/MinIO endpoint instead of the embedded
// store: here a separately started S3-compatible server process. Buckets are made there with
// the service; a MinIO-style notification POSTed to /job (what a MinIO webhook sends) runs
// the job on the object in that store, and the outputs land there too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createS3ObjectStore } from '../../src/adapters/objectstore-s3/s3-object-store.ts';
import { objectCreatedEvent } from '../../src/core/jobs/event.ts';
import type { ObjectStore } from '../../src/core/ports.ts';
import { basic, startInProcess, type TestManager } from '../support/in-process.ts';
import { type ExternalS3, startS3ServerProcess } from '../support/s3-server.ts';

const waitFor = async <T>(fn: () => Promise<T | undefined>, ms: number): Promise<T> => {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 100));
  }
};

describe('manager on an external S3-compatible server', () => {
  let s3: ExternalS3;
  let tm: TestManager;
  let direct: ObjectStore;

  beforeAll(async () => {
    s3 = await startS3ServerProcess();
    tm = await startInProcess({
      s3Endpoint: s3.endpoint,
      s3AccessKey: s3.accessKey,
      s3SecretKey: s3.secretKey,
    });
    direct = createS3ObjectStore({ endpoint: s3.endpoint, accessKey: s3.accessKey, secretKey: s3.secretKey });
  }, 60_000);

  afterAll(async () => {
    await tm?.close();
    await direct?.close();
    await s3?.stop();
  });

  it('hands out the external endpoint, creates buckets there, and runs a notified job against it', async () => {
    const config = await tm.manager.http.inject({
      method: 'GET',
      url: '/system/config',
      headers: { authorization: basic() },
    });
    expect(config.json().minio_provider.endpoint).toBe(s3.endpoint);
    expect(tm.manager.storage.embedded).toBeUndefined();

    const created = await tm.manager.http.inject({
      method: 'POST',
      url: '/system/services',
      headers: { authorization: basic() },
      payload: {
        name: 'ext',
        image: 'alpine',
        script: 'tr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/$STORAGE_OBJECT_KEY.up"',
        input: [{ path: 'ext-bucket/in' }],
        output: [{ path: 'ext-bucket/out' }],
      },
    });
    expect(created.statusCode).toBe(201);
    expect(await direct.bucketExists('ext-bucket')).toBe(true);

    await direct.putObject('ext-bucket', 'in/hello.txt', new TextEncoder().encode('hello external\n'));
    const token = (
      await tm.manager.http.inject({
        method: 'GET',
        url: '/system/services/ext',
        headers: { authorization: basic() },
      })
    ).json().token as string;
    // What MinIO's webhook target would POST for the upload.
    const job = await tm.manager.http.inject({
      method: 'POST',
      url: '/job/ext',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      payload: objectCreatedEvent('ext-bucket', 'in/hello.txt', 15),
    });
    expect(job.statusCode).toBe(201);
    const { job_id } = job.json() as { job_id: string };
    const done = await waitFor(async () => {
      const j = await tm.store.getJob(job_id);
      return j && (j.status === 'Succeeded' || j.status === 'Failed') ? j : undefined;
    }, 20_000);
    expect(done.status).toBe('Succeeded');

    const chunks: Uint8Array[] = [];
    for await (const c of await direct.getObject('ext-bucket', 'out/hello.txt.up')) chunks.push(c);
    expect(Buffer.concat(chunks).toString()).toBe('HELLO EXTERNAL\n');
  }, 60_000);
});
