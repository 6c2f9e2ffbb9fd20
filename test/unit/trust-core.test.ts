// Pure trust rules: the grant machine, the scope schema (with a fuzz of the parser), tokens,
// certificate claims and the fixed order of peer-request checks.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FlotillaError } from '../../src/core/errors.ts';
import {
  decodeUtf8String,
  encodeUtf8String,
  OID_GRANT_ID,
  OID_SUBJECT,
  readClaims,
} from '../../src/core/trust/claims.ts';
import { GRANT_STATUSES, type Grant, type GrantEvent, transition } from '../../src/core/trust/grant.ts';
import { decidePeerRequest } from '../../src/core/trust/peer-guard.ts';
import {
  narrowFilter,
  parseScope,
  RESOURCES,
  rowLimit,
  VERBS,
  withinCpu,
} from '../../src/core/trust/scope.ts';
import { claimError, tokenTtlSeconds } from '../../src/core/trust/token.ts';

const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (e) {
    return (e as FlotillaError).code;
  }
};

describe('grant state machine', () => {
  it('goes pending → active → revoked|expired and refuses the rest with 409', () => {
    expect(transition('pending', 'activate')).toBe('active');
    expect(transition('active', 'renew')).toBe('active');
    expect(transition('active', 'revoke')).toBe('revoked');
    expect(transition('active', 'expire')).toBe('expired');
    expect(transition('pending', 'revoke')).toBe('revoked');
    for (const [from, ev] of [
      ['active', 'activate'],
      ['pending', 'renew'],
      ['revoked', 'activate'],
      ['revoked', 'revoke'],
      ['expired', 'renew'],
      ['expired', 'activate'],
    ] as Array<[Grant['status'], GrantEvent]>) {
      const err = (() => {
        try {
          transition(from, ev);
        } catch (e) {
          return e as FlotillaError;
        }
      })();
      expect(err?.status, `${from} + ${ev}`).toBe(409);
    }
  });

  it('never leaves a final state (any event sequence)', () => {
    const events: GrantEvent[] = ['activate', 'renew', 'revoke', 'expire'];
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...events), { maxLength: 12 }), (seq) => {
        let s: Grant['status'] = 'pending';
        let final = false;
        for (const e of seq) {
          try {
            s = transition(s, e);
          } catch {
            continue;
          }
          expect(final).toBe(false);
          if (s === 'revoked' || s === 'expired') final = true;
        }
        expect(GRANT_STATUSES).toContain(s);
      }),
    );
  });
});

const base = { resources: ['services', 'jobs'], verbs: ['list', 'get'] };

describe('scope schema', () => {
  it('fills defaults and keeps the given limits', () => {
    const s = parseScope({ ...base, max_cpu: '8', max_rows_per_query: 50 });
    expect(s).toMatchObject({
      excluded_resources: [],
      filters: {},
      max_rows_per_query: 50,
      rate_per_minute: 600,
    });
  });

  it.each([
    [{ ...base, resources: ['services', 'secrets'] }, 'scope.resources.1'],
    [{ ...base, verbs: ['list', 'write'] }, 'scope.verbs.1'],
    [{ ...base, extra: 1 }, 'unknown key "extra"'],
    [{ ...base, filters: { services: { include_groups: ['a'], widen: true } } }, 'scope.filters.services'],
    [{ ...base, filters: { logs: {} } }, 'scope.filters'],
    [{ ...base, filters: { buckets: { include_groups: ['g'] } } }, 'scope.filters.buckets'],
    [{ ...base, max_rows_per_query: 10_001 }, 'scope.max_rows_per_query'],
    [{ ...base, max_rows_per_query: 0 }, 'scope.max_rows_per_query'],
    [{ ...base, max_cpu: '-1' }, 'scope.max_cpu'],
    [{ ...base, rate_per_minute: 1.5 }, 'scope.rate_per_minute'],
    [{ ...base, resources: [] }, 'scope.resources'],
    [{ ...base, verbs: ['list', 'list'] }, 'scope.verbs'],
  ])('refuses %j with 400 naming %s', (raw, field) => {
    try {
      parseScope(raw);
      expect.unreachable();
    } catch (e) {
      expect((e as FlotillaError).status).toBe(400);
      expect((e as Error).message).toContain(field);
    }
  });

  it('lets a request narrow a filter but never widen it', () => {
    const s = parseScope({
      ...base,
      filters: { services: { include_groups: ['a', 'b'], include_personal: false } },
    });
    expect(narrowFilter(s, 'services', { include_groups: ['b', 'c'], include_personal: true })).toEqual({
      include_groups: ['b'],
      include_personal: false,
    });
    expect(narrowFilter(s, 'services')).toEqual({ include_groups: ['a', 'b'], include_personal: false });
  });

  it('caps rows and CPU', () => {
    const s = parseScope({ ...base, max_rows_per_query: 10, max_cpu: '2' });
    expect(rowLimit(s, 500)).toBe(10);
    expect(rowLimit(s, 3)).toBe(3);
    expect(rowLimit(s)).toBe(10);
    expect(withinCpu(s, '2')).toBe(true);
    expect(withinCpu(s, '2500m')).toBe(false);
    expect(withinCpu(s, 'lots')).toBe(false);
  });

  it('fuzz: any input either parses into closed lists or fails with a 400 FlotillaError', () => {
    const near = fc.record(
      {
        resources: fc.array(fc.oneof(fc.constantFrom(...RESOURCES), fc.string()), { maxLength: 6 }),
        verbs: fc.array(fc.oneof(fc.constantFrom(...VERBS), fc.string()), { maxLength: 6 }),
        excluded_resources: fc.array(fc.constantFrom(...RESOURCES, 'x'), { maxLength: 3 }),
        filters: fc.dictionary(
          fc.constantFrom('services', 'jobs', 'logs', 'zzz'),
          fc.record(
            { include_groups: fc.array(fc.string(), { maxLength: 3 }), include_personal: fc.boolean() },
            {
              requiredKeys: [],
            },
          ),
        ),
        max_rows_per_query: fc.oneof(fc.integer(), fc.double()),
        max_cpu: fc.oneof(fc.string(), fc.constantFrom('1', '500m', '8')),
        rate_per_minute: fc.integer(),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.oneof(near, fc.anything()), (raw) => {
        let s: ReturnType<typeof parseScope>;
        try {
          s = parseScope(raw);
        } catch (e) {
          expect(e).toBeInstanceOf(FlotillaError);
          expect((e as FlotillaError).status).toBe(400);
          return;
        }
        for (const r of s.resources) expect(RESOURCES).toContain(r);
        for (const v of s.verbs) expect(VERBS).toContain(v);
        expect(s.max_rows_per_query).toBeGreaterThanOrEqual(1);
        expect(s.max_rows_per_query).toBeLessThanOrEqual(10_000);
        for (const r of Object.keys(s.filters)) expect(s.resources).toContain(r);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('enrollment tokens', () => {
  it('caps the TTL at 15 minutes', () => {
    expect(tokenTtlSeconds(undefined)).toBe(900);
    expect(tokenTtlSeconds(60)).toBe(60);
    expect(code(() => tokenTtlSeconds(901))).toBe('VALIDATION_FAILED');
    expect(code(() => tokenTtlSeconds(0))).toBe('VALIDATION_FAILED');
    expect(code(() => tokenTtlSeconds('1e3'))).toBe('VALIDATION_FAILED');
  });
  it('maps claim outcomes to 404 and 410', () => {
    expect(claimError({ kind: 'unknown' })?.status).toBe(404);
    expect(claimError({ kind: 'used' })?.status).toBe(410);
    expect(claimError({ kind: 'expired' })?.status).toBe(410);
    expect(claimError({ kind: 'claimed', grantId: 'g' })).toBeUndefined();
  });
});

const GID = `grt_${'a'.repeat(24)}`;
const ext = (oid: string, text: string) => ({ oid, value: encodeUtf8String(text) });

describe('certificate claims', () => {
  it('reads exactly one grant id and one subject', () => {
    expect(readClaims([ext(OID_GRANT_ID, GID), ext(OID_SUBJECT, 'alice@example.org')])).toEqual({
      ok: true,
      claims: { grantId: GID, subject: 'alice@example.org' },
    });
  });
  it('refuses duplicates, missing ones, other string types, trailing bytes and bad values', () => {
    const subj = ext(OID_SUBJECT, 'alice');
    expect(readClaims([ext(OID_GRANT_ID, GID)]).ok).toBe(false);
    expect(readClaims([ext(OID_GRANT_ID, GID), ext(OID_GRANT_ID, GID), subj]).ok).toBe(false);
    const printable = Uint8Array.from([0x13, 3, 0x61, 0x62, 0x63]);
    expect(readClaims([{ oid: OID_GRANT_ID, value: printable }, subj]).ok).toBe(false);
    const trailing = Uint8Array.from([...encodeUtf8String(GID), 0]);
    expect(readClaims([{ oid: OID_GRANT_ID, value: trailing }, subj]).ok).toBe(false);
    expect(readClaims([ext(OID_GRANT_ID, 'not-a-grant'), subj]).ok).toBe(false);
    expect(readClaims([ext(OID_GRANT_ID, GID), ext(OID_SUBJECT, 'a\nb')]).ok).toBe(false);
    expect(decodeUtf8String(Uint8Array.from([0x0c, 0x81, 0x05, 1, 2, 3, 4, 5]))).toBeUndefined();
    expect(decodeUtf8String(Uint8Array.from([0x0c, 2, 0xc3, 0x28]))).toBeUndefined();
  });
  it('fuzz: random bytes never throw and never yield a claim that fails the rules', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 300 }), (a, b) => {
        const r = readClaims([
          { oid: OID_GRANT_ID, value: a },
          { oid: OID_SUBJECT, value: b },
        ]);
        if (r.ok) expect(r.claims.grantId).toMatch(/^grt_[0-9a-f]{24}$/);
      }),
    );
  });
});

const scope = parseScope({
  resources: ['services', 'jobs'],
  verbs: ['list'],
  excluded_resources: ['jobs'],
  max_rows_per_query: 5,
});
const grant = (over: Partial<Grant> = {}): Grant => ({
  id: GID,
  peerName: 'a',
  subjectUser: 'alice',
  status: 'active',
  scope,
  certSerial: '0abc',
  certNotAfter: new Date(Date.now() + 3_600_000),
  prevCertSerial: null,
  prevCertUntil: null,
  createdAt: new Date(),
  activatedAt: new Date(),
  revokedAt: null,
  revokeReason: null,
  ...over,
});
const facts = (over: Partial<Parameters<typeof decidePeerRequest>[0]> = {}) => ({
  claims: { ok: true as const, claims: { grantId: GID, subject: 'alice' } },
  grant: grant(),
  serial: '0ABC',
  now: new Date(),
  certNotAfter: new Date(Date.now() + 60_000),
  ...over,
});

describe('peer request decision (fixed order)', () => {
  it('allows the recorded certificate of an active grant and caps rows', () => {
    const d = decidePeerRequest(facts({ action: { resource: 'services', verb: 'list', limit: 99 } }));
    expect(d).toMatchObject({ ok: true, limit: 5 });
  });
  it.each([
    ['bad claims', { claims: { ok: false as const, reason: 'claims-count' } }, 401, 'claims-count'],
    ['unknown grant', { grant: undefined }, 401, 'grant-unknown'],
    ['pending grant', { grant: grant({ status: 'pending' }) }, 401, 'grant-pending'],
    ['revoked grant', { grant: grant({ status: 'revoked' }) }, 401, 'grant-revoked'],
    ['old serial', { serial: '0abd' }, 401, 'serial-mismatch'],
    // A certificate for grant X naming grant Y's subject: X's grant does not have that subject.
    [
      'other subject',
      { claims: { ok: true as const, claims: { grantId: GID, subject: 'bob' } } },
      401,
      'subject-mismatch',
    ],
    [
      'excluded resource',
      { action: { resource: 'jobs' as const, verb: 'list' as const } },
      403,
      'resource-not-granted',
    ],
    [
      'resource not listed',
      { action: { resource: 'logs' as const, verb: 'list' as const } },
      403,
      'resource-not-granted',
    ],
    [
      'verb not granted',
      { action: { resource: 'services' as const, verb: 'replicate' as const } },
      403,
      'verb-not-granted',
    ],
    [
      'subject lacks the right',
      { action: { resource: 'services' as const, verb: 'list' as const }, subjectMay: () => false },
      403,
      'subject-not-permitted',
    ],
  ])('%s → %i', (_n, over, status, reason) => {
    expect(decidePeerRequest(facts(over))).toMatchObject({ ok: false, status, reason });
  });
  it('accepts the previous serial after a renewal only until its grace ends', () => {
    const renewed = grant({
      certSerial: '0bbb',
      prevCertSerial: '0abc',
      prevCertUntil: new Date(Date.now() + 1000),
    });
    expect(decidePeerRequest(facts({ grant: renewed })).ok).toBe(true);
    const ended = grant({
      certSerial: '0bbb',
      prevCertSerial: '0abc',
      prevCertUntil: new Date(Date.now() - 1),
    });
    expect(decidePeerRequest(facts({ grant: ended }))).toMatchObject({
      ok: false,
      reason: 'serial-mismatch',
    });
  });
  it('checks authentication before scope: a revoked grant asking for an excluded resource is 401', () => {
    const d = decidePeerRequest(
      facts({ grant: grant({ status: 'revoked' }), action: { resource: 'jobs', verb: 'list' } }),
    );
    expect(d).toMatchObject({ ok: false, status: 401 });
  });
});
