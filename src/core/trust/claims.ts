// The two certificate extensions that bind a client certificate to a grant, read strictly:
// exactly one of each, a DER UTF8String of sane length, nothing trailing. Pure; the PKI
// adapter hands over the raw extension values.
import { GRANT_ID_RE } from './grant.ts';

export const OID_GRANT_ID = '1.3.6.1.4.1.99999.1';
export const OID_SUBJECT = '1.3.6.1.4.1.99999.2';
export const MAX_CLAIM_BYTES = 256;

export interface RawExtension {
  oid: string;
  /** The extension's extnValue contents (DER of the inner value). */
  value: Uint8Array;
}

export interface CertClaims {
  grantId: string;
  subject: string;
}

export type ClaimsResult = { ok: true; claims: CertClaims } | { ok: false; reason: string };

const UTF8_STRING = 0x0c;
const SUBJECT_RE = /^[^\u0000-\u001f\u007f]{1,255}$/u;

/** DER UTF8String → text, or undefined for any other shape (long form only when needed). */
export const decodeUtf8String = (der: Uint8Array): string | undefined => {
  if (der.length < 2 || der[0] !== UTF8_STRING) return undefined;
  let len = der[1];
  let off = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n !== 1 || der.length < 3 || der[2] < 0x80) return undefined; // DER: minimal length
    len = der[2];
    off = 3;
  }
  if (len < 1 || len > MAX_CLAIM_BYTES || off + len !== der.length) return undefined;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(der.subarray(off));
  } catch {
    return undefined;
  }
};

export const encodeUtf8String = (text: string): Uint8Array => {
  const body = new TextEncoder().encode(text);
  if (body.length < 1 || body.length > MAX_CLAIM_BYTES) throw new Error('claim length out of range');
  const head = body.length < 0x80 ? [UTF8_STRING, body.length] : [UTF8_STRING, 0x81, body.length];
  return Uint8Array.from([...head, ...body]);
};

export const readClaims = (extensions: RawExtension[]): ClaimsResult => {
  const grants = extensions.filter((e) => e.oid === OID_GRANT_ID);
  const subjects = extensions.filter((e) => e.oid === OID_SUBJECT);
  if (grants.length !== 1 || subjects.length !== 1) return { ok: false, reason: 'claims-count' };
  const grantId = decodeUtf8String(grants[0].value);
  const subject = decodeUtf8String(subjects[0].value);
  if (grantId === undefined || subject === undefined) return { ok: false, reason: 'claims-encoding' };
  if (!GRANT_ID_RE.test(grantId) || !SUBJECT_RE.test(subject)) return { ok: false, reason: 'claims-value' };
  return { ok: true, claims: { grantId, subject } };
};
