// The embedded S3 server of the local tier: s3rver storing under dataDir, served from our own
// http.Server so every request passes a SigV4 check first (s3rver never checks V4 signatures).
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve, sep } from 'node:path';
import type S3rver from 's3rver';
import type { S3rverEvent, S3rverStore } from 's3rver';
import type { AWSAccount } from 's3rver/lib/models/account.js';
import type S3Error from 's3rver/lib/models/error.js';
import { objectKeyProblem } from '../../core/storage/object-key.ts';
import { requestScope, type S3Access } from './request-scope.ts';
import { verifySigV4 } from './sigv4-verifier.ts';

export type { S3Access } from './request-scope.ts';

export interface EmbeddedS3Options {
  dataDir: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Generated when absent; the manager persists them and passes them back on restart. */
  accessKey?: string;
  secretKey?: string;
}

export interface ObjectCreatedEvent {
  bucket: string;
  key: string;
  size: number;
}

export type ObjectCreatedListener = (event: ObjectCreatedEvent) => void;

/** Whether a scoped key may make one access (bucket, key, read/write/manage). */
export type AccessPolicy = (access: S3Access) => boolean | Promise<boolean>;

export interface EmbeddedS3 {
  /** Adds (or replaces the policy of) a key pair limited to the accesses `allow` accepts. */
  addScopedKey(accessKey: string, secretKey: string, allow: AccessPolicy): void;
  endpoint: string;
  accessKey: string;
  secretKey: string;
  region: string;
  /** Called after an object is stored (PUT, browser POST, COPY, multipart complete). Returns an unsubscribe. */
  onObjectCreated(listener: ObjectCreatedListener): () => void;
  stop(): Promise<void>;
}

const REGION = 'us-east-1';

/** 20 upper-case hex characters, the shape of an AWS access key id. */
export const generateAccessKey = (): string => randomBytes(10).toString('hex').toUpperCase();
/** 40 characters, 240 bits. */
export const generateSecretKey = (): string => randomBytes(30).toString('base64url');

export async function startEmbeddedS3(options: EmbeddedS3Options): Promise<EmbeddedS3> {
  const host = options.host ?? '127.0.0.1';
  const accessKey = options.accessKey ?? generateAccessKey();
  const secretKey = options.secretKey ?? generateSecretKey();
  await mkdir(options.dataDir, { recursive: true, mode: 0o700 });

  const listeners = new Set<ObjectCreatedListener>();
  // Scoped keys: extra key pairs limited to some accesses (per-user and per-delegation keys).
  const scoped = new Map<string, { secretKey: string; allow: AccessPolicy }>();
  const secretFor = (key: string) => (key === accessKey ? secretKey : scoped.get(key)?.secretKey);

  // s3rver (Koa, an XML parser, its file store) loads at the first request that passes the
  // path and signature checks: ~250 ms of start and ~5 MB that a manager whose services never
  // touch storage does not pay.
  let s3rver: S3rver | undefined;
  let account: AWSAccount | undefined;
  let handler: Promise<(req: IncomingMessage, res: ServerResponse) => void> | undefined;
  const loadHandler = () => {
    handler ??= (async () => {
      const [{ default: S3rverClass }, { DUMMY_ACCOUNT }, { default: S3ErrorClass }] = await Promise.all([
        import('s3rver'),
        import('s3rver/lib/models/account.js'),
        import('s3rver/lib/models/error.js'),
      ]);
      const s = new S3rverClass({ directory: options.dataDir, silent: true, vhostBuckets: false });
      s.silent = true;
      guardStorePaths(s.store, S3ErrorClass);
      // s3rver refuses access key ids missing from its (process-wide) registry before routing.
      DUMMY_ACCOUNT.createKeyPair(accessKey, secretKey);
      for (const [key, k] of scoped) DUMMY_ACCOUNT.createKeyPair(key, k.secretKey);
      s.on('event', (event: S3rverEvent) => notifyCreated(listeners, event));
      s3rver = s;
      account = DUMMY_ACCOUNT;
      return s.callback();
    })().catch((err) => {
      // Not remembered: the next request tries again.
      handler = undefined;
      throw err;
    });
    return handler;
  };
  const handle = (req: IncomingMessage, res: ServerResponse): void =>
    void loadHandler().then(
      (h) => h(req, res),
      () => refuse(req, res, INTERNAL_ERROR),
    );
  const server = createServer((req, res) => {
    // The whole path first, for every key (the admin's too): s3rver must never see "..".
    const scope = requestScope(req.method ?? 'GET', req.url ?? '/', req.headers);
    if (!scope.ok) return refuse(req, res, { status: 400, code: scope.code, message: scope.message });
    const verdict = verifySigV4(req, secretFor);
    if (!verdict.ok) return refuse(req, res, verdict);
    const key = verdict.accessKey ? scoped.get(verdict.accessKey) : undefined;
    if (!key) return handle(req, res);
    const accesses = scope.accesses;
    if (accesses === null) return refuse(req, res, ACCESS_DENIED);
    Promise.all(accesses.map((a) => key.allow(a)))
      .then((all) => (all.every(Boolean) ? handle(req, res) : refuse(req, res, ACCESS_DENIED)))
      .catch(() => refuse(req, res, ACCESS_DENIED));
  });
  const port = await listen(server, options.port ?? 0, host);

  return {
    endpoint: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    accessKey,
    secretKey,
    region: REGION,
    addScopedKey(key, secret, allow) {
      // Before s3rver is loaded, the loader registers every scoped key.
      if (!scoped.has(key)) account?.createKeyPair(key, secret);
      scoped.set(key, { secretKey: secret, allow });
    },
    onObjectCreated(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async stop() {
      listeners.clear();
      await closeServer(server);
      await handler?.catch(() => {});
      s3rver?.logger.close();
    },
  };
}

interface Refusal {
  status: number;
  code: string;
  message: string;
}

const ACCESS_DENIED: Refusal = { status: 403, code: 'AccessDenied', message: 'Access Denied' };
const INTERNAL_ERROR: Refusal = {
  status: 500,
  code: 'InternalError',
  message: 'The storage server could not start',
};

/**
 * Defence in depth under the request checks: s3rver's file store joins bucket and key into a
 * path; any bucket or key that could leave its bucket's directory throws a 400 S3 error
 * instead (this covers keys in request bodies too, such as a multi-object delete's).
 */
function guardStorePaths(store: S3rverStore, S3ErrorClass: typeof S3Error): void {
  const root = resolve(store.rootDirectory);
  const bucketPath = store.getBucketPath.bind(store);
  const resourcePath = store.getResourcePath.bind(store);
  const below = (path: string, dir: string): string => {
    if (!resolve(path).startsWith(`${dir}${sep}`))
      throw new S3ErrorClass('InvalidArgument', 'The path is not valid.');
    return path;
  };
  const bucketDir = (bucket: string): string => {
    if (bucket === '' || bucket === '.' || bucket === '..' || /[/\\\u0000]/.test(bucket)) {
      throw new S3ErrorClass('InvalidBucketName', 'The specified bucket is not valid.');
    }
    return join(root, bucket);
  };
  store.getBucketPath = (bucket) => {
    bucketDir(bucket);
    return below(bucketPath(bucket), root);
  };
  store.getResourcePath = (bucket, key = '', resource) => {
    const dir = bucketDir(bucket);
    if (key !== '') {
      const problem = objectKeyProblem(key);
      if (problem) throw new S3ErrorClass('InvalidArgument', `Object key ${JSON.stringify(key)} ${problem}.`);
    }
    return below(resourcePath(bucket, key, resource), dir);
  };
}

/** s3rver emits one 'event' per object change; only creations are passed on. */
function notifyCreated(listeners: ReadonlySet<ObjectCreatedListener>, event: S3rverEvent): void {
  for (const record of event.Records) {
    if (!record.eventName.startsWith('ObjectCreated:')) continue;
    const created = {
      bucket: record.s3.bucket.name,
      key: record.s3.object.key,
      size: Number(record.s3.object.size ?? 0),
    };
    for (const listener of listeners) {
      // The emit runs inside s3rver's request handler: a throwing listener must not turn a
      // stored object into a 500 for the uploader.
      try {
        listener(created);
      } catch (err) {
        process.emitWarning(`embedded S3 object-created listener failed: ${String(err)}`);
      }
    }
  }
}

const xmlEscape = (s: string): string => s.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);

/** Answers like S3 does. Closes the connection: the unread request body is not drained. */
function refuse(req: IncomingMessage, res: ServerResponse, verdict: Refusal): void {
  const body =
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${verdict.code}</Code><Message>${xmlEscape(verdict.message)}</Message></Error>`;
  res.writeHead(verdict.status, {
    'content-type': 'application/xml',
    'content-length': req.method === 'HEAD' ? 0 : Buffer.byteLength(body),
    connection: 'close',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

const listen = (server: Server, port: number, host: string): Promise<number> =>
  new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });

const closeServer = (server: Server): Promise<void> =>
  new Promise((resolve, reject) => {
    server.close((err) => (err ? reject(err) : resolve()));
    // Keep-alive sockets of S3 clients would otherwise hold close() open.
    server.closeAllConnections();
  });
