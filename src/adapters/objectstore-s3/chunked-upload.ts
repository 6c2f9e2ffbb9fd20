// Uploads a stream of unknown length with bounded memory: one part is buffered at a time.
// A stream that fits in one part becomes a plain PutObject (no multipart overhead).
import {
  AbortMultipartUploadCommand,
  type CompletedPart,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';

/** 8 MiB: above S3's 5 MiB minimum for non-final parts; ~1,250 parts for 10 GB. */
export const PART_SIZE = 8 * 1024 * 1024;

/** Yields buffers of at least partSize bytes (the last one may be smaller). */
async function* rechunk(source: AsyncIterable<Uint8Array>, partSize: number): AsyncGenerator<Buffer> {
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  for await (const chunk of source) {
    pending.push(chunk);
    pendingBytes += chunk.byteLength;
    if (pendingBytes >= partSize) {
      yield Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
    }
  }
  if (pendingBytes > 0) yield Buffer.concat(pending, pendingBytes);
}

interface Target {
  client: S3Client;
  bucket: string;
  key: string;
}

export async function uploadChunked(target: Target, source: AsyncIterable<Uint8Array>): Promise<void> {
  const parts = rechunk(source, PART_SIZE)[Symbol.asyncIterator]();
  const first = await parts.next();
  const firstBody = first.done ? Buffer.alloc(0) : first.value;
  const second = first.done ? first : await parts.next();
  if (second.done) {
    await putSingle(target, firstBody);
    return;
  }
  await uploadMultipart(target, firstBody, second.value, parts);
}

const putSingle = async ({ client, bucket, key }: Target, body: Buffer): Promise<void> => {
  await client.send(
    new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: body.length }),
  );
};

async function uploadMultipart(
  target: Target,
  first: Buffer,
  second: Buffer,
  rest: AsyncIterator<Buffer>,
): Promise<void> {
  const { client, bucket, key } = target;
  const created = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  const uploadId = created.UploadId!;
  const completed: CompletedPart[] = [];
  const sendPart = async (body: Buffer): Promise<void> => {
    const partNumber = completed.length + 1;
    const res = await client.send(
      new UploadPartCommand({
        Bucket: bucket,
        Key: key,
        UploadId: uploadId,
        PartNumber: partNumber,
        Body: body,
        ContentLength: body.length,
      }),
    );
    completed.push({ PartNumber: partNumber, ETag: res.ETag });
  };
  try {
    await sendPart(first);
    await sendPart(second);
    for (let next = await rest.next(); !next.done; next = await rest.next()) await sendPart(next.value);
    await client.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId: uploadId,
        MultipartUpload: { Parts: completed },
      }),
    );
  } catch (err) {
    await abortQuietly(target, uploadId);
    throw err;
  }
}

// Best effort: some servers (s3rver) do not implement abort; the original error matters more.
const abortQuietly = async ({ client, bucket, key }: Target, uploadId: string): Promise<void> => {
  try {
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }));
  } catch {
    // ignored on purpose
  }
};
