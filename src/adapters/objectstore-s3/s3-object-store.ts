// ObjectStore over the S3 API (@aws-sdk/client-s3): MinIO, s3rver, AWS and the embedded server.
import { Agent as HttpsAgent } from 'node:https';
import { Readable } from 'node:stream';
import {
  type BucketLocationConstraint,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { ObjectInfo, ObjectStore, StorageCredentials } from '../../core/ports.ts';
import { uploadChunked } from './chunked-upload.ts';
import { type S3ErrorContext, s3ErrorCode, s3HttpStatus, toFlotillaError } from './s3-errors.ts';

export interface S3ObjectStoreOptions {
  endpoint: string;
  accessKey: string;
  secretKey: string;
  /** Default us-east-1. */
  region?: string;
  /** Verify the server's TLS certificate (default true). */
  verify?: boolean;
  /** Path-style URLs (endpoint/bucket/key); needed by MinIO and s3rver. Default true. */
  forcePathStyle?: boolean;
}

const DEFAULT_REGION = 'us-east-1';
/** S3's limit for one PutObject; larger streams of known size go multipart. */
const MAX_SINGLE_PUT = 5 * 1024 ** 3;
const MAX_LIST_PAGE = 1000;
const DELETE_CONCURRENCY = 8;
const ALREADY_MINE = new Set(['BucketAlreadyOwnedByYou', 'BucketAlreadyExists']);

export function createS3ObjectStore(options: S3ObjectStoreOptions): ObjectStore {
  return new S3ObjectStore(options);
}

class S3ObjectStore implements ObjectStore {
  readonly credentials: StorageCredentials;
  private readonly client: S3Client;
  private readonly secrets: readonly string[];

  constructor(options: S3ObjectStoreOptions) {
    const region = options.region ?? DEFAULT_REGION;
    const verify = options.verify ?? true;
    this.credentials = {
      endpoint: options.endpoint,
      verify,
      access_key: options.accessKey,
      secret_key: options.secretKey,
      region,
    };
    this.secrets = [options.secretKey];
    this.client = new S3Client({
      endpoint: options.endpoint,
      region,
      forcePathStyle: options.forcePathStyle ?? true,
      credentials: { accessKeyId: options.accessKey, secretAccessKey: options.secretKey },
      // The default (WHEN_SUPPORTED) sends aws-chunked bodies with trailing checksums, which
      // simple S3 servers store verbatim: objects come back corrupted.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: {
        connectionTimeout: 5_000,
        ...(verify ? {} : { httpsAgent: new HttpsAgent({ keepAlive: true, rejectUnauthorized: false }) }),
      },
    });
  }

  async ensureBucket(bucket: string): Promise<void> {
    try {
      await this.client.send(new CreateBucketCommand({ Bucket: bucket, ...this.locationConstraint() }));
    } catch (err) {
      if (ALREADY_MINE.has(s3ErrorCode(err))) return;
      throw this.mapError(err, { op: 'create', bucket });
    }
  }

  async bucketExists(bucket: string): Promise<boolean> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: bucket }));
      return true;
    } catch (err) {
      if (s3HttpStatus(err) === 404) return false;
      throw this.mapError(err, { op: 'head', bucket });
    }
  }

  async deleteBucket(bucket: string, opts: { force: boolean }): Promise<void> {
    if (opts.force) await this.emptyBucket(bucket);
    await this.call({ op: 'delete', bucket }, () =>
      this.client.send(new DeleteBucketCommand({ Bucket: bucket })),
    );
  }

  async listBuckets(): Promise<{ name: string; createdAt: Date | null }[]> {
    const res = await this.call({ op: 'list' }, () => this.client.send(new ListBucketsCommand({})));
    return (res.Buckets ?? []).map((b) => ({ name: b.Name ?? '', createdAt: b.CreationDate ?? null }));
  }

  /**
   * Pages with ListObjects (v1) and the last key as marker, not v2 continuation tokens:
   * s3rver 3.7.1 makes those with DES, which OpenSSL 3 (Node >= 17) refuses, so any
   * truncated v2 listing fails there. Every S3 server accepts a marker.
   */
  async listObjects(
    bucket: string,
    opts: { prefix?: string; cursor?: string | null; limit?: number },
  ): Promise<{ objects: ObjectInfo[]; next: string | null }> {
    const limit = Math.min(Math.max(opts.limit ?? MAX_LIST_PAGE, 1), MAX_LIST_PAGE);
    const res = await this.call({ op: 'list', bucket }, () =>
      this.client.send(
        new ListObjectsCommand({
          Bucket: bucket,
          Prefix: opts.prefix || undefined,
          Marker: opts.cursor ? decodeCursor(opts.cursor) : undefined,
          MaxKeys: limit,
        }),
      ),
    );
    const objects = (res.Contents ?? []).map((o) => ({
      key: o.Key ?? '',
      size: o.Size ?? 0,
      lastModified: o.LastModified ?? new Date(0),
    }));
    const last = objects.at(-1);
    return { objects, next: res.IsTruncated && last ? encodeCursor(last.key) : null };
  }

  async putObject(
    bucket: string,
    key: string,
    body: Uint8Array | AsyncIterable<Uint8Array>,
    size?: number,
  ): Promise<void> {
    const ctx = { op: 'put', bucket, key };
    if (body instanceof Uint8Array) {
      await this.call(ctx, () => this.putWhole(bucket, key, body, body.byteLength));
    } else if (size !== undefined && size <= MAX_SINGLE_PUT) {
      // Known length: one streamed request, nothing buffered.
      await this.call(ctx, () =>
        this.putWhole(bucket, key, Readable.from(body, { objectMode: false }), size),
      );
    } else {
      await this.call(ctx, () => uploadChunked({ client: this.client, bucket, key }, body));
    }
  }

  /** The stream holds an HTTP connection until it is read to the end or abandoned with break. */
  async getObject(bucket: string, key: string): Promise<AsyncIterable<Uint8Array>> {
    const ctx = { op: 'get', bucket, key };
    const res = await this.call(ctx, () =>
      this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key })),
    );
    return this.mapStreamErrors(res.Body as AsyncIterable<Uint8Array>, ctx);
  }

  async headObject(bucket: string, key: string): Promise<ObjectInfo | undefined> {
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return { key, size: res.ContentLength ?? 0, lastModified: res.LastModified ?? new Date(0) };
    } catch (err) {
      // HEAD has no body, so a missing bucket and a missing key look the same (404).
      if (s3HttpStatus(err) === 404) return undefined;
      throw this.mapError(err, { op: 'head', bucket, key });
    }
  }

  async deleteObject(bucket: string, key: string): Promise<void> {
    await this.call({ op: 'delete', bucket, key }, () =>
      this.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })),
    );
  }

  async presign(
    bucket: string,
    key: string,
    op: 'upload' | 'download',
    expiresInSeconds: number,
  ): Promise<string> {
    const command =
      op === 'upload'
        ? new PutObjectCommand({ Bucket: bucket, Key: key })
        : new GetObjectCommand({ Bucket: bucket, Key: key });
    return this.call({ op: 'presign', bucket, key }, () =>
      getSignedUrl(this.client, command, { expiresIn: expiresInSeconds }),
    );
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  // ------------------------------------------------------------ helpers

  private putWhole(bucket: string, key: string, body: Uint8Array | Readable, size: number) {
    return this.client.send(
      new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: size }),
    );
  }

  /**
   * Deletes page by page. One DELETE per object rather than DeleteObjects: the batch call
   * needs checksum headers some servers reject, and s3rver parses numeric-looking keys in its
   * XML body as numbers and fails.
   */
  private async emptyBucket(bucket: string): Promise<void> {
    let cursor: string | null = null;
    do {
      const page = await this.listObjects(bucket, { cursor, limit: MAX_LIST_PAGE });
      await forEachLimit(page.objects, DELETE_CONCURRENCY, (o) => this.deleteObject(bucket, o.key));
      cursor = page.next;
    } while (cursor);
  }

  private locationConstraint() {
    const region = this.credentials.region;
    // us-east-1 is the one region S3 rejects as an explicit LocationConstraint.
    return region === DEFAULT_REGION
      ? {}
      : { CreateBucketConfiguration: { LocationConstraint: region as BucketLocationConstraint } };
  }

  private async call<T>(ctx: S3ErrorContext, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.mapError(err, ctx);
    }
  }

  private mapError(err: unknown, ctx: S3ErrorContext) {
    return toFlotillaError(err, ctx, this.secrets);
  }

  private async *mapStreamErrors(
    body: AsyncIterable<Uint8Array>,
    ctx: S3ErrorContext,
  ): AsyncGenerator<Uint8Array> {
    try {
      yield* body;
    } catch (err) {
      throw this.mapError(err, ctx);
    }
  }
}

/** The cursor is the page's last key, kept opaque and URL-safe for callers. */
const encodeCursor = (key: string): string => Buffer.from(key, 'utf8').toString('base64url');
const decodeCursor = (cursor: string): string => Buffer.from(cursor, 'base64url').toString('utf8');

async function forEachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
