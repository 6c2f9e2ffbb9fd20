// Per-user namespace names (namespaces.ts) fuzzed with hostile owner ids: always a DNS label of
// at most 63, deterministic, never the shared namespace, always under the base's prefix, and
// distinct for distinct owners — including owners built to look alike (case, separators,
// long common prefixes), where only the hash tells them apart.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { userNamespace, wantsUserNamespace } from '../../src/adapters/executor-kubernetes/namespaces.ts';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const BASES = ['flotilla-svc', 'oscar-svc', 'a', `x${'y'.repeat(62)}`, 'svc-9'];
const hostile = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.string({ unit: 'grapheme', maxLength: 80 }),
  fc.string({
    unit: fc.constantFrom('.', '/', '-', '_', '@', 'A', 'a', '0', ' ', '\u0000', 'é'),
    maxLength: 90,
  }),
  fc.constantFrom('', '-', '..', '../kube-system', 'kube-system', 'default', 'flotilla-svc', 'oscar'),
);

describe('user namespace names', () => {
  it('are DNS labels under the base prefix, never the base itself, the same for the same owner', () => {
    fc.assert(
      fc.property(fc.constantFrom(...BASES), hostile, (base, owner) => {
        const ns = userNamespace(base, owner);
        expect(ns).toMatch(DNS_LABEL);
        expect(ns.length).toBeLessThanOrEqual(63);
        expect(ns).not.toBe(base);
        expect(ns.startsWith(base.slice(0, 33).replace(/-+$/, ''))).toBe(true);
        expect(userNamespace(base, owner)).toBe(ns);
      }),
      { numRuns: 1000 },
    );
  });

  it('differ for different owners (random, and look-alikes that share the slug)', () => {
    fc.assert(
      fc.property(hostile, hostile, (a, b) => {
        fc.pre(a !== b);
        expect(userNamespace('flotilla-svc', a)).not.toBe(userNamespace('flotilla-svc', b));
      }),
      { numRuns: 1000 },
    );
    const lookAlikes = [
      'Alice@egi.eu',
      'alice@egi.eu',
      'alice.egi.eu',
      'alice-egi-eu',
      'alice_egi_eu',
      'alice@egi.eu ',
      `${'a1ce'.repeat(16)}@egi.eu`,
      `${'a1ce'.repeat(16)}@egi.eu2`,
      `${'a1ce'.repeat(16)}@egi.e`,
    ];
    const seen = new Set<string>();
    for (let i = 0; i < 10_000; i++) seen.add(userNamespace('flotilla-svc', `user-${i}@egi.eu`));
    for (const u of lookAlikes) seen.add(userNamespace('flotilla-svc', u));
    expect(seen.size).toBe(10_000 + lookAlikes.length);
  });

  it('a readable slug from the owner, the hash carrying the identity', () => {
    expect(userNamespace('flotilla-svc', 'Alice@EGI.eu')).toMatch(/^flotilla-svc-alice-egi-eu-[0-9a-f]{16}$/);
    expect(userNamespace('flotilla-svc', '@@@')).toMatch(/^flotilla-svc-[0-9a-f]{16}$/);
  });

  it('only isolation_level USER (any case) asks for one', () => {
    expect(wantsUserNamespace({ isolation_level: 'USER' })).toBe(true);
    expect(wantsUserNamespace({ isolation_level: 'user' })).toBe(true);
    expect(wantsUserNamespace({ isolation_level: 'SERVICE' })).toBe(false);
    expect(wantsUserNamespace({})).toBe(false);
  });
});
