// The Pki and CertTools ports with @peculiar/x509: ECDSA P-256 keys, a CA per manager whose
// key is sealed through the SecretBox port and kept in settings.
import 'reflect-metadata';
import { randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { FlotillaError } from '../../core/errors.ts';
import type { SecretBox, SettingsStore } from '../../core/ports.ts';
import { encodeUtf8String, OID_GRANT_ID, OID_SUBJECT, readClaims } from '../../core/trust/claims.ts';
import type { CertTools, IssuedCert, Pki } from '../../core/trust/trust-ports.ts';

const crypto = webcrypto as unknown as Crypto;
x509.cryptoProvider.set(crypto);

const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;
const CA_SETTING = 'pki.ca';
const CA_LIFETIME_MS = 10 * 365 * 24 * 3600 * 1000;

// Positive, no leading zero byte: the hex serial reads the same in every tool.
const newSerial = (): string => {
  const b = randomBytes(16);
  b[0] = 0x10 + (b[0] % 0x70);
  return b.toString('hex');
};

const keyPair = () => crypto.subtle.generateKey(EC, true, ['sign', 'verify']) as Promise<CryptoKeyPair>;

const exportKeyPem = async (key: CryptoKey): Promise<string> =>
  x509.PemConverter.encode(await crypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');

const importKeyPem = (pem: string): Promise<CryptoKey> =>
  crypto.subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(pem), EC, false, ['sign']);

const claimExtensions = (c: { grantId: string; subject: string }) => [
  new x509.Extension(
    OID_GRANT_ID,
    false,
    Uint8Array.from(encodeUtf8String(c.grantId)) as Uint8Array<ArrayBuffer>,
  ),
  new x509.Extension(
    OID_SUBJECT,
    false,
    Uint8Array.from(encodeUtf8String(c.subject)) as Uint8Array<ArrayBuffer>,
  ),
];

export const certTools: CertTools = {
  read(cert) {
    const c = new x509.X509Certificate(typeof cert === 'string' ? cert : Uint8Array.from(cert));
    return {
      serial: c.serialNumber.toLowerCase(),
      notAfter: c.notAfter,
      extensions: c.extensions.map((e) => ({ oid: e.type, value: new Uint8Array(e.value) })),
    };
  },
  async createKeyAndCsr(commonName) {
    const keys = await keyPair();
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      name: [{ CN: [commonName] }],
      keys,
      signingAlgorithm: SIGN,
    });
    return { keyPem: await exportKeyPem(keys.privateKey), csrPem: csr.toString('pem') };
  },
  async revokedSerials(crlPem, caPem) {
    try {
      const crl = new x509.X509Crl(crlPem);
      const ca = new x509.X509Certificate(caPem);
      if (!(await crl.verify({ publicKey: ca }))) return undefined;
      return crl.entries.map((e) => e.serialNumber.toLowerCase());
    } catch {
      return undefined;
    }
  },
};

interface StoredCa {
  cert: string;
  keySealed: string;
}

/** Loads this manager's CA, creating it on first start (first writer wins across replicas). */
export const openPki = async (deps: {
  settings: SettingsStore;
  box: SecretBox;
  clusterId: string;
  now?: () => Date;
}): Promise<Pki> => {
  const now = deps.now ?? (() => new Date());
  let stored = deps.settings
    .getSetting(CA_SETTING)
    .then((s) => (s ? (JSON.parse(s) as StoredCa) : undefined));
  if (!(await stored)) {
    const keys = await keyPair();
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: newSerial(),
      name: [{ CN: [`Flotilla CA ${deps.clusterId}`] }],
      notBefore: new Date(now().getTime() - 60_000),
      notAfter: new Date(now().getTime() + CA_LIFETIME_MS),
      keys,
      signingAlgorithm: SIGN,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    const value: StoredCa = {
      cert: cert.toString('pem'),
      keySealed: deps.box.seal(await exportKeyPem(keys.privateKey)),
    };
    stored = Promise.resolve(
      JSON.parse(await deps.settings.setSettingIfAbsent(CA_SETTING, JSON.stringify(value))) as StoredCa,
    );
  }
  const ca = (await stored)!;
  const caCert = new x509.X509Certificate(ca.cert);
  const caKey = await importKeyPem(deps.box.open(ca.keySealed));
  const authorityKeyId = await x509.AuthorityKeyIdentifierExtension.create(caCert, false);

  const sign = async (
    publicKey: x509.PublicKey | CryptoKey,
    subject: string,
    lifetimeMs: number,
    extensions: x509.Extension[],
  ) =>
    x509.X509CertificateGenerator.create({
      serialNumber: newSerial(),
      subject: [{ CN: [subject] }],
      issuer: caCert.subject,
      notBefore: new Date(now().getTime() - 60_000),
      notAfter: new Date(now().getTime() + lifetimeMs),
      publicKey,
      signingKey: caKey,
      signingAlgorithm: SIGN,
      extensions: [new x509.BasicConstraintsExtension(false, undefined, true), authorityKeyId, ...extensions],
    });

  return {
    caCertificatePem: () => ca.cert,

    async signClientCsr(csrPem, claims, lifetimeMs): Promise<IssuedCert> {
      let csr: x509.Pkcs10CertificateRequest;
      try {
        csr = new x509.Pkcs10CertificateRequest(csrPem);
        if (!(await csr.verify())) throw new Error('signature');
      } catch {
        throw new FlotillaError('VALIDATION_FAILED', 'csr: not a valid, self-signed PKCS#10 request');
      }
      const alg = csr.publicKey.algorithm as EcKeyAlgorithm;
      if (alg.name !== 'ECDSA' || alg.namedCurve !== 'P-256')
        throw new FlotillaError('VALIDATION_FAILED', 'csr: the key must be ECDSA P-256');
      // Only the public key is taken from the CSR: its name and extensions are ignored.
      const cert = await sign(csr.publicKey, `peer ${claims.grantId}`, lifetimeMs, [
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
        ...claimExtensions(claims),
      ]);
      const pem = cert.toString('pem');
      // Checked strictly after issuance: what went out is exactly what was meant.
      const read = certTools.read(pem);
      const back = readClaims(read.extensions);
      if (!back.ok || back.claims.grantId !== claims.grantId || back.claims.subject !== claims.subject)
        throw new FlotillaError('INTERNAL', 'issued certificate failed its claims check');
      return { certificatePem: pem, serial: read.serial, notAfter: read.notAfter };
    },

    async issueServerCertificate(hosts, lifetimeMs) {
      const keys = await keyPair();
      const names = hosts.map((h) =>
        /^[\d.]+$/.test(h) || h.includes(':')
          ? { type: 'ip' as const, value: h }
          : { type: 'dns' as const, value: h },
      );
      const cert = await sign(keys.publicKey, hosts[0] ?? 'peer-channel', lifetimeMs, [
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension(names),
      ]);
      return { certPem: cert.toString('pem'), keyPem: await exportKeyPem(keys.privateKey) };
    },

    async crlPem(revoked) {
      const t = now();
      const crl = await x509.X509CrlGenerator.create({
        issuer: caCert.subject,
        thisUpdate: t,
        nextUpdate: new Date(t.getTime() + 24 * 3600 * 1000),
        entries: revoked.map((r) => ({ serialNumber: r.serial, revocationDate: r.revokedAt })),
        signingAlgorithm: SIGN,
        signingKey: caKey,
        extensions: [authorityKeyId],
      });
      // OpenSSL (node's TLS) accepts only this label.
      return x509.PemConverter.encode(crl.rawData, 'X509 CRL');
    },
  };
};
