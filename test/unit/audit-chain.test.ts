// The audit chain in core: linking, verification (a changed, removed or reordered row is
// named), the traceparent reader and the query hash, with fuzzing of both parsers.
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type AuditEntry,
  ChainVerifier,
  canonicalJson,
  GENESIS_HASH,
  linkHash,
  linkRows,
  queryHashOf,
  requestDigest,
  storableEntry,
  traceIdOf,
} from '../../src/core/audit/chain.ts';
import { gcraStep, retryAfterSeconds } from '../../src/core/trust/rate.ts';

const entry = (i: number): AuditEntry => ({
  at: new Date(Date.UTC(2026, 0, 1, 0, 0, i)),
  grantId: `grt_${String(i).padStart(24, '0')}`,
  peer: 'a',
  subject: 'alice',
  verb: 'list',
  resource: 'services',
  queryHash: queryHashOf({ method: 'POST', url: '/federation/v1/list/services', body: { limit: i } }),
  outcome: 'ok',
  bytesOut: 10 * i,
  latencyMs: i / 3,
  traceId: null,
});

const check = (rows: ReturnType<typeof linkRows>) => {
  const v = new ChainVerifier();
  for (const r of rows) if (!v.feed(r)) break;
  return v.result();
};

describe('hash chain', () => {
  const rows = linkRows(
    undefined,
    Array.from({ length: 5 }, (_, i) => entry(i)),
  );

  it('links from the genesis hash; each hash covers the previous one', () => {
    expect(rows.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(rows[0].hash).toBe(linkHash(GENESIS_HASH, 1, rows[0]));
    expect(rows[1].hash).toBe(linkHash(rows[0].hash, 2, rows[1]));
    expect(linkRows(rows[4], [entry(9)])[0].seq).toBe(6);
    expect(check(rows)).toEqual({ ok: true, rows: 5, lastSeq: 5 });
  });

  it('names the first changed row, whatever field changed', () => {
    const fields: Array<Partial<AuditEntry>> = [
      { outcome: 'denied' },
      { subject: 'mallory' },
      { bytesOut: 11 },
      { at: new Date(0) },
      { traceId: 'f'.repeat(32) },
      { grantId: null },
    ];
    for (const change of fields) {
      const tampered = rows.map((r, i) => (i === 2 ? { ...r, ...change } : r));
      expect(check(tampered)).toMatchObject({
        ok: false,
        rows: 2,
        broken: { seq: 3, reason: 'hash-mismatch' },
      });
    }
  });

  it('a removed row is a gap at the next one; a rehashed forgery still breaks the row after', () => {
    expect(check([rows[0], rows[2], rows[3]])).toMatchObject({
      ok: false,
      broken: { seq: 3, reason: 'sequence-gap' },
    });
    const forged = { ...rows[1], subject: 'mallory' };
    forged.hash = linkHash(rows[0].hash, 2, forged);
    expect(check([rows[0], forged, rows[2]])).toMatchObject({ ok: false, broken: { seq: 3 } });
  });

  it('fuzz: any change to any row of a random chain is found at that row or the next', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), fc.nat(), fc.string(), (n, pick, text) => {
        const chain = linkRows(
          undefined,
          Array.from({ length: n }, (_, i) => entry(i)),
        );
        const at = pick % n;
        if (chain[at].resource === text) return;
        const bad = chain.map((r, i) => (i === at ? { ...r, resource: text } : r));
        const res = check(bad);
        expect(res.ok).toBe(false);
        expect(!res.ok && res.broken.seq).toBe(at + 1);
      }),
    );
  });
});

describe('storable entries', () => {
  it('fuzz: any text becomes at most 256 characters without control characters; numbers are finite', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.double(), fc.integer(), (t, d, i) => {
        const e = storableEntry({ ...entry(1), subject: t, resource: t, bytesOut: i, latencyMs: d });
        for (const v of [e.subject, e.resource]) {
          expect(v!.length).toBeLessThanOrEqual(256);
          expect(v).not.toMatch(/[\u0000-\u001f\u007f]/);
          // Well-formed: encodes to UTF-8 and back unchanged.
          expect(Buffer.from(v!, 'utf8').toString('utf8')).toBe(v);
        }
        expect(Number.isFinite(e.latencyMs) && e.latencyMs >= 0).toBe(true);
        expect(Number.isSafeInteger(e.bytesOut) && e.bytesOut >= 0).toBe(true);
      }),
    );
    expect(storableEntry(entry(2))).toEqual(entry(2));
  });
});

describe('traceparent', () => {
  it('reads the trace id of a valid header only', () => {
    const id = '4bf92f3577b34da6a3ce929d0e0e4736';
    expect(traceIdOf(`00-${id}-00f067aa0ba902b7-01`)).toBe(id);
    expect(traceIdOf(`00-${'0'.repeat(32)}-00f067aa0ba902b7-01`)).toBeNull();
    expect(traceIdOf(`00-${id}-${'0'.repeat(16)}-01`)).toBeNull();
    expect(traceIdOf(`ff-${id}-00f067aa0ba902b7-01`)).toBeNull();
    expect(traceIdOf(`00-${id.toUpperCase()}-00f067aa0ba902b7-01`)).toBeNull();
    expect(traceIdOf([`00-${id}-00f067aa0ba902b7-01`])).toBeNull();
    expect(traceIdOf(undefined)).toBeNull();
    expect(traceIdOf(`00-${id}-00f067aa0ba902b7-01, 00-${id}-00f067aa0ba902b7-01`)).toBeNull();
  });

  it('fuzz: anything else is null or exactly 32 lowercase hex (never the raw text)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.anything()), (h) => {
        const t = traceIdOf(h);
        expect(t === null || /^[0-9a-f]{32}$/.test(t)).toBe(true);
      }),
    );
  });
});

describe('query hash', () => {
  it('is the same for the same request whatever the key order, different otherwise', () => {
    const a = queryHashOf({ method: 'post', url: '/x', body: { a: 1, b: [1, { c: 2, d: 3 }] } });
    const b = queryHashOf({ method: 'POST', url: '/x', body: { b: [1, { d: 3, c: 2 }], a: 1 } });
    expect(a).toBe(b);
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(queryHashOf({ method: 'POST', url: '/y', body: { a: 1 } })).not.toBe(
      queryHashOf({ method: 'POST', url: '/x', body: { a: 1 } }),
    );
    expect(queryHashOf({ method: 'POST', url: '/x', body: Buffer.from('raw') })).toMatch(/^[0-9a-f]{64}$/);
  });

  it('fuzz: the canonical form does not depend on key order, keeps the content, and its size is the JSON body’s', () => {
    /** The same value with every object's keys in another order. */
    const reordered = (v: unknown, seed: number): unknown => {
      if (Array.isArray(v)) return v.map((e) => reordered(e, seed));
      if (v === null || typeof v !== 'object' || v instanceof Uint8Array) return v;
      const keys = Object.keys(v);
      const turned = keys.map((_, i) => keys[(i + seed) % keys.length]).reverse();
      const out: Record<string, unknown> = Object.create(null);
      for (const k of turned) out[k] = reordered((v as Record<string, unknown>)[k], seed);
      return out;
    };
    const json = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        fc.jsonValue(),
        fc.array(tie('value'), { maxLength: 4 }),
        fc.dictionary(fc.oneof(fc.string(), fc.constant('__proto__'), fc.nat(20).map(String)), tie('value'), {
          maxKeys: 5,
        }),
      ),
    })).value;
    fc.assert(
      fc.property(json, fc.nat(7), (body, seed) => {
        const canonical = canonicalJson(body);
        expect(canonicalJson(reordered(body, seed))).toBe(canonical);
        expect(queryHashOf({ method: 'put', url: '/x', body: reordered(body, seed) })).toBe(
          queryHashOf({ method: 'PUT', url: '/x', body }),
        );
        expect(JSON.parse(canonical)).toEqual(JSON.parse(JSON.stringify(body ?? null)));
        expect(requestDigest({ method: 'PUT', url: '/x', body }).bodyBytes).toBe(
          Buffer.byteLength(JSON.stringify(body ?? null)),
        );
      }),
    );
    expect(canonicalJson(JSON.parse('{"b":1,"__proto__":{"x":2},"a":[{"d":1,"c":2}]}'))).toBe(
      '{"__proto__":{"x":2},"a":[{"c":2,"d":1}],"b":1}',
    );
    // Bytes, nested, as base64; a raw body as its bytes, tagged.
    expect(canonicalJson({ b: Buffer.from('hi') })).toBe('{"b":{"$bytes":"aGk="}}');
    const raw = createHash('sha256').update('POST /x\n').update('bytes:').update('hi').digest('hex');
    expect(requestDigest({ method: 'post', url: '/x', body: Buffer.from('hi') })).toEqual({
      queryHash: raw,
      bodyBytes: 2,
    });
  });

  it('fuzz: never throws, always 64 hex, never contains the body', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.jsonValue(), (m, u, body) => {
        const h = queryHashOf({ method: m, url: u, body });
        expect(h).toMatch(/^[0-9a-f]{64}$/);
      }),
    );
  });
});

describe('GCRA step', () => {
  it('fuzz: never more than the minute allowance within any minute from a fresh start', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1000 }),
        fc.array(fc.integer({ min: 0, max: 59_999 }), { minLength: 1, maxLength: 300 }),
        (per, offsets) => {
          let tat: number | undefined;
          let allowed = 0;
          for (const t of [...offsets].sort((x, y) => x - y)) {
            const s = gcraStep(tat, 1_000_000 + t, per);
            if (s.decision.ok) {
              allowed++;
              tat = s.tat;
            } else expect(s.decision.retryAfterMs).toBeGreaterThan(0);
          }
          // From a fresh start, a minute holds the burst plus what drips in meanwhile: < 2×.
          expect(allowed).toBeLessThan(2 * per + 1);
          if (offsets.length <= per) expect(allowed).toBe(offsets.length);
        },
      ),
    );
  });

  it('Retry-After is whole seconds, at least 1', () => {
    expect(retryAfterSeconds(1)).toBe(1);
    expect(retryAfterSeconds(1000)).toBe(1);
    expect(retryAfterSeconds(1001)).toBe(2);
  });
});
