// Contract of the Pki and CertTools ports (adapter: pki/x509-pki.ts): the CA made once and
// kept sealed, CSRs signed into certificates with exactly the two claims, CRLs that verify
// only against their own CA.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certTools, openPki } from '../../src/adapters/pki/x509-pki.ts';
import { createSecretBox } from '../../src/adapters/secret-box/aes-gcm-box.ts';
import { PgliteStore } from '../../src/adapters/store-pglite/pglite-store.ts';
import { readClaims } from '../../src/core/trust/claims.ts';

const box = createSecretBox(Buffer.alloc(32, 7));
const claims = { grantId: `grt_${'1'.repeat(24)}`, subject: 'alice@example.org' };
let store: PgliteStore;

beforeAll(async () => {
  store = await PgliteStore.open(undefined);
});
afterAll(async () => {
  await store?.close();
});

describe('Pki contract: @peculiar/x509', () => {
  it('creates the CA once, key sealed, and loads the same CA afterwards', async () => {
    const p1 = await openPki({ settings: store, box, clusterId: 'b' });
    const p2 = await openPki({ settings: store, box, clusterId: 'b' });
    expect(p2.caCertificatePem()).toBe(p1.caCertificatePem());
    const stored = (await store.getSetting('pki.ca'))!;
    expect(stored).not.toContain('PRIVATE KEY');
    expect(box.open(JSON.parse(stored).keySealed)).toContain('BEGIN PRIVATE KEY');
    const ca = new x509.X509Certificate(p1.caCertificatePem());
    expect(ca.getExtension(x509.BasicConstraintsExtension)?.ca).toBe(true);
  });

  it('signs a CSR into a short-lived client certificate with exactly the two claims, chained to the CA', async () => {
    const pki = await openPki({ settings: store, box, clusterId: 'b' });
    const { csrPem } = await certTools.createKeyAndCsr('a');
    const issued = await pki.signClientCsr(csrPem, claims, 3_600_000);
    const read = certTools.read(issued.certificatePem);
    expect(read.serial).toBe(issued.serial);
    expect(readClaims(read.extensions)).toEqual({ ok: true, claims });
    expect(issued.notAfter.getTime() - Date.now()).toBeLessThanOrEqual(3_600_000);
    const cert = new x509.X509Certificate(issued.certificatePem);
    const ca = new x509.X509Certificate(pki.caCertificatePem());
    expect(await cert.verify({ publicKey: ca.publicKey, signatureOnly: true })).toBe(true);
  });

  it('refuses a CSR that is not one, has a broken signature, or is not P-256', async () => {
    const pki = await openPki({ settings: store, box, clusterId: 'b' });
    await expect(pki.signClientCsr('nonsense', claims, 1000)).rejects.toMatchObject({ status: 400 });
    const { csrPem } = await certTools.createKeyAndCsr('a');
    const der = new Uint8Array(x509.PemConverter.decodeFirst(csrPem));
    der[der.length - 5] ^= 0xff; // inside the signature
    const tampered = x509.PemConverter.encode(der, 'CERTIFICATE REQUEST');
    await expect(pki.signClientCsr(tampered, claims, 1000)).rejects.toMatchObject({ status: 400 });
    const crypto = webcrypto as unknown as Crypto;
    const p384 = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, true, [
      'sign',
      'verify',
    ])) as CryptoKeyPair;
    const other = await x509.Pkcs10CertificateRequestGenerator.create({
      name: 'CN=x',
      keys: p384,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-384' },
    });
    await expect(pki.signClientCsr(other.toString('pem'), claims, 1000)).rejects.toMatchObject({
      status: 400,
    });
  });

  it('writes a CRL (label X509 CRL) that verifies only against its own CA', async () => {
    const pki = await openPki({ settings: store, box, clusterId: 'b' });
    const crl = await pki.crlPem([{ serial: '1a2b3c', revokedAt: new Date() }]);
    expect(crl).toMatch(/^-----BEGIN X509 CRL-----/);
    expect(await certTools.revokedSerials(crl, pki.caCertificatePem())).toEqual(['1a2b3c']);
    const elsewhere = await PgliteStore.open(undefined);
    try {
      const stranger = await openPki({ settings: elsewhere, box, clusterId: 'c' });
      expect(await certTools.revokedSerials(crl, stranger.caCertificatePem())).toBeUndefined();
    } finally {
      await elsewhere.close();
    }
    expect(await certTools.revokedSerials('garbage', pki.caCertificatePem())).toBeUndefined();
  });
});
