// The audit trail's rows and their hash chain (DESIGN §6), pure: each row's hash is
// sha256(prev_hash || canonical(row)), so changing, removing or reordering a stored row breaks
// every hash from it on. Canonical form: a JSON array of the fields in a fixed order.
import { createHash } from 'node:crypto';

export const AUDIT_OUTCOMES = ['ok', 'denied', 'rate_limited', 'error'] as const;
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];

/** What is recorded about one peer request or federation change. Never a body or a secret:
 * the request appears only as `queryHash`. */
export interface AuditEntry {
  at: Date;
  grantId: string | null;
  peer: string | null;
  subject: string | null;
  verb: string;
  resource: string;
  /** SHA-256 (hex) of the canonical request. */
  queryHash: string;
  outcome: AuditOutcome;
  bytesOut: number;
  latencyMs: number;
  traceId: string | null;
}

/** A stored row: its place in the chain and its hash. */
export interface AuditRow extends AuditEntry {
  seq: number;
  hash: string;
}

const MAX_TEXT = 256;
// PostgreSQL text holds no NUL; other control characters have no place in a row either.
const CONTROL = /[\u0000-\u001f\u007f]/g;
// Half of a surrogate pair (cut, or never whole) is not text the database's JSON reads.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const text = (v: string | null): string | null =>
  v === null ? null : v.replace(CONTROL, '\ufffd').slice(0, MAX_TEXT).replace(LONE_SURROGATE, '\ufffd');

/** An entry as it can be stored: text fields well-formed, without control characters and
 * at most 256 UTF-16 units (a claimed subject comes from a certificate), numbers finite and not negative.
 * A row the database would refuse would hold back every row queued after it. */
export const storableEntry = (e: AuditEntry): AuditEntry => ({
  ...e,
  grantId: text(e.grantId),
  peer: text(e.peer),
  subject: text(e.subject),
  verb: text(e.verb) ?? '',
  resource: text(e.resource) ?? '',
  traceId: text(e.traceId),
  bytesOut: Number.isSafeInteger(e.bytesOut) && e.bytesOut > 0 ? e.bytesOut : 0,
  latencyMs: Number.isFinite(e.latencyMs) && e.latencyMs > 0 ? e.latencyMs : 0,
});

/** The hash before the first row. */
export const GENESIS_HASH = '0'.repeat(64);

const sha256 = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');

export const canonicalAuditRow = (seq: number, e: AuditEntry): string =>
  JSON.stringify([
    seq,
    e.at.toISOString(),
    e.grantId,
    e.peer,
    e.subject,
    e.verb,
    e.resource,
    e.queryHash,
    e.outcome,
    e.bytesOut,
    e.latencyMs,
    e.traceId,
  ]);

/** The hash of row `seq` given the previous row's hash. */
export const linkHash = (prevHash: string, seq: number, e: AuditEntry): string =>
  sha256(prevHash + canonicalAuditRow(seq, e));

/** Links new entries after the chain's tip (`prev` undefined: an empty chain). */
export const linkRows = (
  prev: { seq: number; hash: string } | undefined,
  entries: readonly AuditEntry[],
): AuditRow[] => {
  let seq = prev?.seq ?? 0;
  let hash = prev?.hash ?? GENESIS_HASH;
  return entries.map((e) => {
    seq += 1;
    hash = linkHash(hash, seq, e);
    return { ...e, seq, hash };
  });
};

export type ChainBreak = { seq: number; at: Date; reason: 'hash-mismatch' | 'sequence-gap' };

/** Checks rows in order, page by page: feed each row; the first break is kept. */
export class ChainVerifier {
  private prevHash = GENESIS_HASH;
  private prevSeq = 0;
  private count = 0;
  private broken: ChainBreak | undefined;

  /** false once a break was found (later rows are not checked). */
  feed(row: AuditRow): boolean {
    if (this.broken) return false;
    if (row.seq !== this.prevSeq + 1) {
      this.broken = { seq: row.seq, at: row.at, reason: 'sequence-gap' };
      return false;
    }
    if (linkHash(this.prevHash, row.seq, row) !== row.hash) {
      this.broken = { seq: row.seq, at: row.at, reason: 'hash-mismatch' };
      return false;
    }
    this.prevHash = row.hash;
    this.prevSeq = row.seq;
    this.count += 1;
    return true;
  }

  result(): { ok: true; rows: number; lastSeq: number } | { ok: false; rows: number; broken: ChainBreak } {
    return this.broken
      ? { ok: false, rows: this.count, broken: this.broken }
      : { ok: true, rows: this.count, lastSeq: this.prevSeq };
  }
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The trace id of a W3C `traceparent` header, or null for anything else (never echoed raw). */
export const traceIdOf = (header: unknown): string | null => {
  if (typeof header !== 'string' || header.length > 128) return null;
  const m = TRACEPARENT.exec(header.trim());
  if (!m || m[1] === 'ff' || /^0+$/.test(m[2]) || /^0+$/.test(m[3])) return null;
  return m[2];
};

/**
 * JSON.stringify's replacer for the canonical form: object keys sorted at every level, bytes
 * (nested) as base64. `this[key]` is the value before its toJSON (a Buffer's would hide its
 * bytes). A null-prototype copy keeps a "__proto__" key as an ordinary key.
 */
function sortedKeys(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const raw = this[key];
  if (raw instanceof Uint8Array) return { $bytes: Buffer.from(raw).toString('base64') };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const sorted: Record<string, unknown> = Object.create(null);
  for (const k of Object.keys(value).sort()) sorted[k] = (value as Record<string, unknown>)[k];
  return sorted;
}

/** JSON with object keys sorted at every level (integer-like keys first, in numeric order, as
 * JavaScript orders an object's keys), undefined members left out as JSON leaves them out. */
export const canonicalJson = (v: unknown): string => JSON.stringify(v ?? null, sortedKeys) ?? 'null';

/**
 * SHA-256 of the canonical request: method, URL (path and query) and body, and the body's
 * size in UTF-8 bytes (the canonical form differs from the sent JSON in key order only, so
 * its size is the body's). The row keeps the hash only, so equal requests can be matched
 * without the request being stored.
 */
export const requestDigest = (req: {
  method: string;
  url: string;
  body?: unknown;
}): { queryHash: string; bodyBytes: number } => {
  const h = createHash('sha256').update(`${req.method.toUpperCase()} ${req.url}\n`, 'utf8');
  // A raw body (a job's event) is hashed as its bytes, tagged so it never equals a JSON body.
  if (req.body instanceof Uint8Array) {
    return { queryHash: h.update('bytes:').update(req.body).digest('hex'), bodyBytes: req.body.byteLength };
  }
  const body = canonicalJson(req.body);
  return { queryHash: h.update(body, 'utf8').digest('hex'), bodyBytes: Buffer.byteLength(body) };
};

export const queryHashOf = (req: { method: string; url: string; body?: unknown }): string =>
  requestDigest(req).queryHash;
