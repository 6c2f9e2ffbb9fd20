// Two (or more) real OIDC users against one in-process manager with the embedded S3 store:
// their bearer tokens, the storage keys each gets from /system/config, an S3 client on
// those keys, and raw SigV4-signed requests whose path, headers and signed-header list the
// test controls (what an attacker with their own keys can send).
import { createHash, createHmac } from 'node:crypto';
import { request } from 'node:http';
import { S3Client } from '@aws-sdk/client-s3';
import { SignatureV4 } from '@smithy/signature-v4';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { basic, startInProcess, type TestManager } from './in-process.ts';
import { type OidcProviderFixture, startOidcProvider } from './oidc-provider.ts';
import { waitFor } from './wait.ts';

/** Retries `check` (which throws until its expectations hold) up to 20 s. */
export const eventually = (check: () => Promise<void>, what: string): Promise<true> =>
  waitFor(
    async () => {
      await check();
      return true as const;
    },
    20_000,
    what,
    { tolerateErrors: true },
  );

/** EGI-style subjects (64 hex characters and the domain), as OSCAR's users have. */
export const ALICE = `${'a1ce'.repeat(16)}@egi.eu`;
export const BOB = `${'b0b5'.repeat(16)}@egi.eu`;
export const CAROL = `${'ca40'.repeat(16)}@egi.eu`;

export interface StorageKeys {
  endpoint: string;
  access_key: string;
  secret_key: string;
  region: string;
}

export interface Tenancy {
  tm: TestManager;
  idp: OidcProviderFixture;
  /** Authorization headers: a user's bearer token, or the admin's Basic. */
  as(who: string | 'admin'): Record<string, string>;
  call(who: string | 'admin', opts: InjectOptions): Promise<LightMyRequestResponse>;
  keys(who: string): Promise<StorageKeys>;
  s3(who: string): Promise<S3Client>;
  close(): Promise<void>;
}

export const startTenancy = async (users: string[]): Promise<Tenancy> => {
  const idp = await startOidcProvider({ accessTokenTtl: 3600 });
  const tm = await startInProcess({ oidcIssuers: idp.issuer, cpus: '2', memory: '2Gi' });
  const tokens = new Map<string, string>();
  for (const u of users) tokens.set(u, (await idp.mintTokens(u, { expiresIn: 3600 })).accessToken);
  const as = (who: string) =>
    who === 'admin' ? { authorization: basic() } : { authorization: `Bearer ${tokens.get(who)}` };
  const call = (who: string, opts: InjectOptions) =>
    tm.manager.http.inject({ ...opts, headers: { ...as(who), ...opts.headers } });
  const clients: S3Client[] = [];
  const keys = async (who: string): Promise<StorageKeys> => {
    const res = await call(who, { method: 'GET', url: '/system/config' });
    if (res.statusCode !== 200) throw new Error(`config for ${who}: ${res.statusCode} ${res.body}`);
    return res.json().minio_provider as StorageKeys;
  };
  return {
    tm,
    idp,
    as,
    call,
    keys,
    async s3(who) {
      const client = s3Client(await keys(who));
      clients.push(client);
      return client;
    },
    async close() {
      for (const c of clients) c.destroy();
      await tm.close();
      await idp.stop();
    },
  };
};

export const s3Client = (k: StorageKeys): S3Client =>
  new S3Client({
    endpoint: k.endpoint,
    region: k.region,
    forcePathStyle: true,
    credentials: { accessKeyId: k.access_key, secretAccessKey: k.secret_key },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 1,
  });

/** SHA-256 for the SDK's signer, from node:crypto. */
type Bytes = string | ArrayBuffer | ArrayBufferView;
const bytes = (d: Bytes): string | Uint8Array =>
  typeof d === 'string'
    ? d
    : d instanceof ArrayBuffer
      ? new Uint8Array(d)
      : new Uint8Array(d.buffer, d.byteOffset, d.byteLength);

class NodeSha256 {
  private readonly h;
  constructor(secret?: Bytes) {
    this.h = secret ? createHmac('sha256', bytes(secret)) : createHash('sha256');
  }
  update(data: Bytes): void {
    this.h.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.h.digest());
  }
}

export interface RawRequest {
  method: string;
  /** Sent as is: no normalisation of "..", encodings or backslashes. */
  path: string;
  query?: Record<string, string>;
  /** Signed headers (besides host, x-amz-date, x-amz-content-sha256). */
  headers?: Record<string, string>;
  /** Headers added after signing: absent from SignedHeaders. */
  unsigned?: Record<string, string>;
  /** Headers present in the request but left out of the signature (e.g. "host"). */
  unsignable?: string[];
  body?: string;
}

export interface RawResponse {
  status: number;
  body: string;
}

/** A request signed with SigV4 (header auth) by the SDK's own signer, sent byte for byte. */
export const signedRequest = async (k: StorageKeys, r: RawRequest): Promise<RawResponse> => {
  const url = new URL(k.endpoint);
  const body = r.body ?? '';
  const signer = new SignatureV4({
    service: 's3',
    region: k.region,
    credentials: { accessKeyId: k.access_key, secretAccessKey: k.secret_key },
    sha256: NodeSha256,
    // S3 signs the path as sent (no normalisation).
    uriEscapePath: false,
    applyChecksum: true,
  });
  const signed = await signer.sign(
    {
      method: r.method,
      protocol: url.protocol,
      hostname: url.hostname,
      port: Number(url.port),
      path: r.path,
      query: r.query ?? {},
      headers: {
        host: url.host,
        'x-amz-content-sha256': createHash('sha256').update(body).digest('hex'),
        ...(r.headers ?? {}),
      },
      body,
    },
    { unsignableHeaders: new Set(r.unsignable ?? []) },
  );
  const qs = new URLSearchParams(r.query ?? {}).toString();
  return send(
    url,
    r.method,
    qs ? `${r.path}?${qs}` : r.path,
    { ...signed.headers, ...(r.unsigned ?? {}) },
    body,
  );
};

/** A plain HTTP request to a URL whose path must not be normalised (fetch would). */
export const rawRequest = (
  urlText: string,
  method: string,
  headers: Record<string, string> = {},
  body = '',
): Promise<RawResponse> => {
  const url = new URL(urlText.replace(/^(https?:\/\/[^/]+).*$/, '$1'));
  const path = urlText.slice(url.origin.length) || '/';
  return send(url, method, path, headers, body);
};

const send = (
  url: URL,
  method: string,
  path: string,
  headers: Record<string, string>,
  body: string,
): Promise<RawResponse> =>
  new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: Number(url.port),
        method,
        path,
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });

/** An S3-style ObjectCreated event naming bucket/key, as a client would forge it. */
export const s3Event = (bucket: string, key: string): string =>
  JSON.stringify({
    Key: `${bucket}/${key}`,
    Records: [{ eventName: 's3:ObjectCreated:Put', s3: { bucket: { name: bucket }, object: { key } } }],
  });
