// The two-step delegation hand-over (ADR 13): the pure decisions of both sides, the header
// parser (fuzzed), and the origin's HandOver module against a scripted PeerClient and store:
// the order of its calls in each failure case of the ADR's table.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { confirmOutcomeOf, HandOver, sendOutcomeOf } from '../../src/app/federation/hand-over.ts';
import {
  afterConfirm,
  afterSend,
  type HeldJob,
  holdAt,
  MAX_HOLD_SECONDS,
  onAbandon,
  onConfirm,
  onRepeatSend,
  parseHoldSeconds,
} from '../../src/core/delegation/hand-over.ts';
import { FlotillaError } from '../../src/core/errors.ts';
import { PeerCallError } from '../../src/core/peer-failure.ts';
import type { JobStore, PeerClient, PeerTarget } from '../../src/core/ports.ts';

const NOW = new Date('2026-01-01T00:00:00Z');
const later = (s: number) => new Date(NOW.getTime() + s * 1000);
const held = (untilS: number): HeldJob => ({ holdState: 'held', heldUntil: later(untilS) });

describe('X-Delegation-Hold', () => {
  it('takes whole seconds 1..900 and nothing else', () => {
    expect(parseHoldSeconds(undefined)).toBeUndefined();
    expect(parseHoldSeconds('1')).toBe(1);
    expect(parseHoldSeconds('900')).toBe(900);
    for (const bad of ['0', '901', '-1', '1.5', '1e2', '', ' ', 'abc', '0x10', '12345', '١٢'])
      expect(parseHoldSeconds(bad), bad).toBe('invalid');
  });

  it('fuzzed: any string is a number in range or "invalid", never a throw or NaN', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 12 }), (raw) => {
        const v = parseHoldSeconds(raw);
        if (v === 'invalid') return true;
        return Number.isInteger(v) && (v as number) >= 1 && (v as number) <= MAX_HOLD_SECONDS;
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: MAX_HOLD_SECONDS }), (n) => parseHoldSeconds(String(n)) === n),
    );
  });
});

describe('the receiver decides from the stored hold', () => {
  it('a hold past its deadline counts as dropped', () => {
    expect(holdAt(held(10), NOW)).toBe('held');
    expect(holdAt(held(0), NOW)).toBe('dropped');
    expect(holdAt(held(-5), NOW)).toBe('dropped');
    expect(holdAt({ holdState: null, heldUntil: null }, NOW)).toBeNull();
  });

  it('a repeated send answers held / confirmed, refuses a dropped or expired one', () => {
    expect(onRepeatSend(held(10), NOW)).toBe('held');
    expect(onRepeatSend(held(-1), NOW)).toBe('expire');
    expect(onRepeatSend({ holdState: 'confirmed', heldUntil: later(-100) }, NOW)).toBe('confirmed');
    expect(onRepeatSend({ holdState: 'dropped', heldUntil: later(100) }, NOW)).toBe('dropped');
    // A job stored without a hold (an origin without hold support) is just that job.
    expect(onRepeatSend({ holdState: null, heldUntil: null }, NOW)).toBe('confirmed');
  });

  it('a confirm confirms a live hold once; repeats are answered, expired and dropped refused', () => {
    expect(onConfirm(undefined, NOW)).toBe('absent');
    expect(onConfirm(held(1), NOW)).toBe('confirm');
    expect(onConfirm(held(0), NOW)).toBe('expire');
    expect(onConfirm({ holdState: 'confirmed', heldUntil: later(-1) }, NOW)).toBe('already-confirmed');
    expect(onConfirm({ holdState: 'dropped', heldUntil: later(10) }, NOW)).toBe('dropped');
  });

  it('an abandon drops a hold, remembers an unknown id, never undoes a confirm', () => {
    expect(onAbandon(undefined)).toBe('tombstone');
    expect(onAbandon(held(10))).toBe('drop');
    expect(onAbandon(held(-10))).toBe('drop');
    expect(onAbandon({ holdState: 'dropped', heldUntil: null })).toBe('already-dropped');
    expect(onAbandon({ holdState: 'confirmed', heldUntil: null })).toBe('confirmed');
  });

  it('fuzzed: at any time, a hold is either confirmable or refused, never both; after a confirm no abandon drops it', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -1000, max: 1000 }),
        fc.integer({ min: -1000, max: 1000 }),
        (until, at) => {
          const j = held(until);
          const now = later(at);
          const c = onConfirm(j, now);
          const live = until > at;
          expect(c === 'confirm').toBe(live);
          expect(c === 'expire').toBe(!live);
          expect(onAbandon({ holdState: 'confirmed', heldUntil: j.heldUntil })).toBe('confirmed');
        },
      ),
    );
  });
});

describe('the origin decides from what its calls met', () => {
  it('after a send: confirm a hold, take a plain receiver as delivered, retry an unknown outcome once', () => {
    expect(afterSend({ kind: 'accepted', held: true }, 1, 2)).toBe('confirm');
    expect(afterSend({ kind: 'accepted', held: false }, 1, 2)).toBe('delivered');
    expect(afterSend({ kind: 'unknown' }, 1, 2)).toBe('retry');
    expect(afterSend({ kind: 'unknown' }, 2, 2)).toBe('in-doubt');
    expect(afterSend({ kind: 'refused' }, 1, 2)).toBe('next');
    expect(afterSend({ kind: 'dropped' }, 1, 2)).toBe('next');
  });

  it('after a confirm: never moves on while the outcome is unknown', () => {
    expect(afterConfirm('confirmed', 1, 2)).toBe('delegated');
    expect(afterConfirm('refused', 1, 2)).toBe('take-back');
    expect(afterConfirm('unknown', 1, 2)).toBe('retry');
    expect(afterConfirm('unknown', 2, 2)).toBe('confirm-later');
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10 }), fc.integer({ min: 1, max: 10 }), (a, m) =>
        ['retry', 'confirm-later'].includes(afterConfirm('unknown', a, m)),
      ),
    );
  });

  it('classifies errors: a timeout, a reset or a 5xx is unknown; a refusal or a drop is known', () => {
    const unreachable = (msg: string, details?: Record<string, unknown>) =>
      new PeerCallError('PEER_UNREACHABLE', msg, { kind: 'unreachable' }, details);
    expect(sendOutcomeOf(unreachable('cluster b (h) is unreachable: timed out'))).toEqual({
      kind: 'unknown',
    });
    expect(sendOutcomeOf(unreachable('cluster b (h) is unreachable: ECONNRESET'))).toEqual({
      kind: 'unknown',
    });
    expect(sendOutcomeOf(unreachable('failed (502)', { remote_status: 502 }))).toEqual({ kind: 'unknown' });
    expect(sendOutcomeOf(unreachable('cluster b (h) is unreachable: ECONNREFUSED'))).toEqual({
      kind: 'refused',
    });
    expect(sendOutcomeOf(new FlotillaError('DELEGATION_DROPPED', 'x'))).toEqual({ kind: 'dropped' });
    expect(sendOutcomeOf(new FlotillaError('FORBIDDEN', 'x'))).toEqual({ kind: 'refused' });
    expect(confirmOutcomeOf(unreachable('timed out'))).toBe('unknown');
    // No answer at all (refused connection): it may not have arrived, but also may not be
    // known to have failed: a confirm is repeated rather than given up.
    expect(confirmOutcomeOf(unreachable('ECONNREFUSED'))).toBe('unknown');
    expect(confirmOutcomeOf(new FlotillaError('DELEGATION_DROPPED', 'x'))).toBe('refused');
    expect(confirmOutcomeOf(new FlotillaError('NOT_FOUND', 'x'))).toBe('refused');
  });
});

// ---------------------------------------------------------------- HandOver, scripted

type Script = Array<'ok' | 'held' | 'timeout' | 'refused' | 'dropped' | 'gone'>;

const scripted = (sends: Script, confirms: Script) => {
  const calls: string[] = [];
  const timeout = () =>
    new PeerCallError('PEER_UNREACHABLE', 'cluster r (h) is unreachable: timed out', { kind: 'unreachable' });
  const outcome = (s: Script[number] | undefined) => {
    if (s === 'timeout') throw timeout();
    if (s === 'refused') throw new PeerCallError('FORBIDDEN', 'refused', { kind: 'refused', status: 403 });
    if (s === 'dropped')
      throw new PeerCallError('DELEGATION_DROPPED', 'dropped', { kind: 'conflict', status: 409 });
    if (s === 'gone') throw new PeerCallError('NOT_FOUND', 'not found', { kind: 'not_found', status: 404 });
  };
  const peers = {
    async submitJob(_t: PeerTarget, _s: string, _b: Uint8Array, h: Record<string, string>) {
      calls.push(`send(hold=${h['x-delegation-hold']})`);
      const s = sends.shift();
      outcome(s);
      return s === 'held' ? { job_id: 'remote-1', held: true } : { job_id: 'remote-1' };
    },
    async confirmJob(_t: PeerTarget, _s: string, id: string, h: Record<string, string>) {
      calls.push(`confirm(${id},${h['x-delegated-from']})`);
      outcome(confirms.shift());
    },
    async abandonJob(_t: PeerTarget, _s: string, id: string) {
      calls.push(`abandon(${id})`);
      return 'abandoned' as const;
    },
  } as unknown as PeerClient;
  const store = {
    async markDelegated(_id: string, to: string, remote: string, o?: { confirmPending?: boolean }) {
      calls.push(`record(${to},${remote},pending=${o?.confirmPending ?? false})`);
    },
    async confirmedDelegation() {
      calls.push('recorded-confirmed');
    },
    async takeBackDelegation(_id: string, status: string) {
      calls.push(`take-back(${status})`);
      return true;
    },
  } as unknown as JobStore;
  const handOver = new HandOver({
    peers,
    store,
    logger: { info: () => {}, warn: () => {} },
    holdSeconds: 30,
  });
  const to = {
    clusterId: 'r',
    service: 'svc-r',
    target: { clusterId: 'r', endpoint: 'http://r.invalid', sslVerify: true, auth: { kind: 'none' } },
  } as const;
  const headers = { 'x-delegated-job-id': 'home.svc-1', 'x-delegated-from': 'home' };
  const deliver = () => handOver.deliver({ id: 'svc-1' }, to, new Uint8Array([1]), headers);
  return { calls, deliver, abandon: () => handOver.abandon(to, 'home.svc-1', 'home') };
};

describe('HandOver: the failure cases of ADR 13, call by call', () => {
  it('the happy path: send with the hold, record pending, confirm, record confirmed', async () => {
    const s = scripted(['held'], ['ok']);
    expect(await s.deliver()).toEqual({ kind: 'delegated', remoteJobId: 'remote-1', confirmPending: false });
    expect(s.calls).toEqual([
      'send(hold=30)',
      'record(r,remote-1,pending=true)',
      'confirm(home.svc-1,home)',
      'recorded-confirmed',
    ]);
  });

  it('answer lost once: the send is repeated (same id), then confirmed there', async () => {
    const s = scripted(['timeout', 'held'], ['ok']);
    expect((await s.deliver()).kind).toBe('delegated');
    expect(s.calls.filter((c) => c.startsWith('send'))).toHaveLength(2);
  });

  it('answer lost and the replica stays down: in doubt, nothing recorded, no confirm', async () => {
    const s = scripted(['timeout', 'timeout'], []);
    const r = await s.deliver();
    expect(r).toMatchObject({ kind: 'failed', inDoubt: true });
    expect(s.calls).toEqual(['send(hold=30)', 'send(hold=30)']);
  });

  it('a refusal is not in doubt; a dropped id is not either', async () => {
    expect(await scripted(['refused'], []).deliver()).toMatchObject({ kind: 'failed', inDoubt: false });
    expect(await scripted(['dropped'], []).deliver()).toMatchObject({ kind: 'failed', inDoubt: false });
  });

  it('a receiver without hold support: recorded as delivered, no confirm (at-least-once there)', async () => {
    const s = scripted(['ok'], []);
    expect(await s.deliver()).toEqual({ kind: 'delegated', remoteJobId: 'remote-1', confirmPending: false });
    expect(s.calls).toEqual(['send(hold=30)', 'record(r,remote-1,pending=false)']);
  });

  it('confirm answer lost once: repeated (duplicate confirm is harmless)', async () => {
    const s = scripted(['held'], ['timeout', 'ok']);
    expect(await s.deliver()).toMatchObject({ kind: 'delegated', confirmPending: false });
    expect(s.calls.filter((c) => c.startsWith('confirm'))).toHaveLength(2);
  });

  it('confirm unanswered: the job stays at that replica, confirm pending (the mirror repeats it)', async () => {
    const s = scripted(['held'], ['timeout', 'timeout']);
    expect(await s.deliver()).toMatchObject({ kind: 'delegated', confirmPending: true });
    expect(s.calls).not.toContain('recorded-confirmed');
    expect(s.calls.some((c) => c.startsWith('take-back'))).toBe(false);
  });

  it('confirm refused (the hold expired or was dropped): taken back, still claimed here', async () => {
    for (const refusal of ['dropped', 'gone'] as const) {
      const s = scripted(['held'], [refusal]);
      expect(await s.deliver()).toMatchObject({ kind: 'failed', inDoubt: false });
      expect(s.calls.at(-1)).toBe('take-back(Running)');
    }
  });

  it('an abandon is best effort: a failure is logged, not thrown', async () => {
    const s = scripted([], []);
    await expect(s.abandon()).resolves.toBeUndefined();
    expect(s.calls).toEqual(['abandon(home.svc-1)']);
  });
});
