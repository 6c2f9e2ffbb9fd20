// Helpers for peering tests: sign certificates with a manager's own CA (to forge bad ones)
// and make raw mTLS calls to a peer channel.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { Agent, request } from 'undici';
import { createSecretBox, loadSecretKey } from '../../src/adapters/secret-box/aes-gcm-box.ts';
import type { SettingsStore } from '../../src/core/ports.ts';
import { encodeUtf8String } from '../../src/core/trust/claims.ts';

const crypto = webcrypto as unknown as Crypto;
const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;

export const utf8Ext = (oid: string, text: string) =>
  new x509.Extension(oid, false, Uint8Array.from(encodeUtf8String(text)) as Uint8Array<ArrayBuffer>);

export interface Forged {
  certPem: string;
  keyPem: string;
}

/** A client certificate signed by the CA whose cert and private key are given. */
export const forgeClient = async (
  ca: { certPem: string; key: CryptoKey },
  extensions: x509.Extension[],
): Promise<Forged> => {
  const keys = (await crypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
  const caCert = new x509.X509Certificate(ca.certPem);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: `7${Date.now().toString(16)}`,
    subject: [{ CN: ['forged'] }],
    issuer: caCert.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    publicKey: keys.publicKey,
    signingKey: ca.key,
    signingAlgorithm: SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
      ...extensions,
    ],
  });
  const pkcs8 = await crypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { certPem: cert.toString('pem'), keyPem: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY') };
};

/** The manager's CA as stored: certificate and the opened key (tests only). */
export const managerCa = async (settings: SettingsStore, dataDir: string) => {
  const stored = JSON.parse((await settings.getSetting('pki.ca'))!) as { cert: string; keySealed: string };
  const box = createSecretBox(await loadSecretKey(undefined, dataDir));
  const pem = box.open(stored.keySealed);
  const key = await crypto.subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(pem), EC, false, ['sign']);
  return { certPem: stored.cert, key, keySealed: stored.keySealed, keyPem: pem };
};

/** A self-made CA that is not the manager's. */
export const strangerCa = async () => {
  const keys = (await crypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: [{ CN: ['stranger CA'] }],
    keys,
    signingAlgorithm: SIGN,
    extensions: [new x509.BasicConstraintsExtension(true, 0, true)],
  });
  return { certPem: cert.toString('pem'), key: keys.privateKey };
};

/** One mTLS request on a fresh connection: {status, body} or {error} when no HTTP answer came. */
export const mtlsGet = async (
  url: string,
  tls: { ca: string; cert?: string; key?: string },
): Promise<{ status?: number; body?: unknown; error?: string }> => {
  const agent = new Agent({ connect: { ...tls, rejectUnauthorized: true } });
  try {
    const res = await request(url, { dispatcher: agent });
    const text = await res.body.text();
    return { status: res.statusCode, body: text ? JSON.parse(text) : undefined };
  } catch (e) {
    return { error: (e as { code?: string }).code ?? (e as Error).message };
  } finally {
    await agent.destroy();
  }
};

/** A JSON POST over mTLS on a fresh connection. */
export const mtlsPost = async (
  url: string,
  tls: { ca: string; cert: string; key: string },
  body: unknown,
): Promise<{ status?: number; body?: any; error?: string }> => {
  const agent = new Agent({ connect: { ...tls, rejectUnauthorized: true } });
  try {
    const res = await request(url, {
      dispatcher: agent,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await res.body.text();
    return { status: res.statusCode, body: text ? JSON.parse(text) : undefined };
  } catch (e) {
    return { error: (e as { code?: string }).code ?? (e as Error).message };
  } finally {
    await agent.destroy();
  }
};

/** Any request over mTLS on a fresh connection: {status, text, headers} or {error} when no HTTP answer came. */
export const mtlsCall = async (
  url: string,
  tls: { ca: string; cert: string; key: string },
  init: { method?: string; body?: unknown; raw?: Uint8Array; headers?: Record<string, string> } = {},
): Promise<{
  status?: number;
  text?: string;
  json?: any;
  headers?: Record<string, unknown>;
  error?: string;
}> => {
  const agent = new Agent({ connect: { ...tls, rejectUnauthorized: true } });
  try {
    const headers: Record<string, string> = { ...(init.headers ?? {}) };
    let body: string | Uint8Array | undefined;
    if (init.raw) {
      body = init.raw;
      headers['content-type'] ??= 'application/octet-stream';
    } else if (init.body !== undefined) {
      body = JSON.stringify(init.body);
      headers['content-type'] = 'application/json';
    }
    const res = await request(url, {
      dispatcher: agent,
      method: (init.method ?? 'GET') as 'GET',
      headers,
      body,
    });
    const text = await res.body.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.statusCode, text, json, headers: res.headers };
  } catch (e) {
    return { error: (e as { code?: string }).code ?? (e as Error).message };
  } finally {
    await agent.destroy();
  }
};
