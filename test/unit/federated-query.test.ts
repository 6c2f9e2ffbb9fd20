// The user side of federated queries, decided without a network: one "peer offline" signal
// per transition however many requests fail, fail-fast while the circuit is open, recovery
// after the half-open trial, signed cursors bound to the caller, and how answers merge.
import { describe, expect, it } from 'vitest';
import { FederatedQuery } from '../../src/app/peering/federated-query.ts';
import { CursorSigner } from '../../src/app/peering/query-cursor.ts';
import type { QueryRows } from '../../src/app/peering/query-rows.ts';
import { FlotillaError } from '../../src/core/errors.ts';
import type { PeerRecord } from '../../src/core/ports.ts';
import { systemClock } from '../../src/core/ports.ts';
import { federationQuerySchema, mergeAnswers } from '../../src/core/trust/query.ts';
import { sleep } from '../support/wait.ts';

const peer = (name: string, clusterId: string, subject: string): PeerRecord =>
  ({ name, clusterId, subject, state: 'active', certSerial: `s-${name}` }) as PeerRecord;

const setup = () => {
  let up = false;
  let calls = 0;
  const lines: Array<[string, string]> = [];
  const signals: string[] = [];
  const rows = {
    list: async () => ({ rows: [{ name: 'here' }], next: null }),
  } as unknown as QueryRows;
  const q = new FederatedQuery({
    rows,
    peers: () => [peer('b-alice', 'b', 'alice'), peer('b-bob', 'b', 'bob')],
    channel: {
      async request() {
        calls++;
        if (!up)
          throw new FlotillaError('PEER_UNREACHABLE', 'peer unreachable (ECONNREFUSED)', { transport: true });
        return { status: 200, body: { rows: [{ name: 'there' }], next_cursor: null } };
      },
    },
    cursors: new CursorSigner(new Uint8Array(32).fill(7)),
    clock: systemClock,
    log: { info: (_o, m) => lines.push(['info', m]), warn: (_o, m) => lines.push(['warn', m]) },
    trust: { updatePeer: async () => {} },
    signals: { peerOffline: (p) => signals.push(`off:${p}`), peerOnline: (p) => signals.push(`on:${p}`) },
    breakAfter: 2,
    halfOpenAfterMs: 100,
    cacheTtlMs: 0,
  });
  return { q, lines, signals, calls: () => calls, setUp: (v: boolean) => (up = v) };
};

const alice = { kind: 'user', sub: 'alice', issuer: 'x' } as const;
const body = (limit: number) =>
  federationQuerySchema.parse({ verb: 'list', resource: 'services', source: 'all', limit });

describe('circuit breaker and the offline signal', () => {
  it('signals offline once for many failures, fails fast while open, and once online again', async () => {
    const t = setup();
    for (let i = 1; i <= 6; i++) {
      const a = await t.q.query(alice, body(i));
      expect(a._partial).toEqual(['b']);
      expect(a.rows).toEqual([{ name: 'here', _source: 'local' }]);
    }
    expect(t.calls()).toBe(2); // the rest failed fast
    expect(t.signals).toEqual(['off:b']);
    expect(t.lines.filter(([, m]) => m.startsWith('peer offline'))).toHaveLength(1);
    expect(t.q.circuit('b').circuit).toBe('open');
    // Still down at the half-open trial: the same outage, no second signal.
    await sleep(150);
    await t.q.query(alice, body(7));
    expect(t.signals).toEqual(['off:b']);
    t.setUp(true);
    await sleep(150);
    const back = await t.q.query(alice, body(8));
    expect(back._partial).toBeUndefined();
    expect(back.rows.map((r) => r._source)).toEqual(['local', 'b']);
    expect(t.signals).toEqual(['off:b', 'on:b']);
    expect(t.q.circuit('b')).toEqual({ circuit: 'closed', offline_since: null });
    t.setUp(false);
    for (let i = 0; i < 3; i++) await t.q.query(alice, body(20 + i));
    expect(t.signals).toEqual(['off:b', 'on:b', 'off:b']);
  });

  it('asks a peer only through the caller’s own record; another user’s peer name is 404', async () => {
    const t = setup();
    t.setUp(true);
    const carol = { kind: 'user', sub: 'carol', issuer: 'x' } as const;
    const a = await t.q.query(carol, body(1));
    expect(a.rows.map((r) => r._source)).toEqual(['local']);
    await expect(
      t.q.query(carol, federationQuerySchema.parse({ verb: 'list', resource: 'services', source: 'b' })),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const token = { kind: 'service-token', service: 's' } as const;
    await expect(t.q.query(token, body(1))).rejects.toMatchObject({ code: 'FORBIDDEN' });
  });
});

describe('cursors', () => {
  it('opens only what it sealed, for the same query', () => {
    const s = new CursorSigner(new Uint8Array(32).fill(1));
    const c = s.seal('q1', { s: 'svc', c: null });
    expect(s.open('q1', c)).toEqual({ s: 'svc', c: null });
    expect(() => s.open('q2', c)).toThrow(/cursor/);
    expect(() => new CursorSigner(new Uint8Array(32).fill(2)).open('q1', c)).toThrow(/cursor/);
    const [payload, mac] = c.split('.');
    const other = Buffer.from(JSON.stringify({ s: 'zzz', c: null })).toString('base64url');
    expect(() => s.open('q1', `${other}.${mac}`)).toThrow(/cursor/);
    expect(() => s.open('q1', `${payload}`)).toThrow(/cursor/);
    expect(() => s.open('q1', 42)).toThrow(/cursor/);
  });
});

describe('merging answers', () => {
  it('tags rows with _source and _cached, lists failures in _partial, orders search by _rank', () => {
    const m = mergeAnswers('search', [
      { source: 'local', ok: true, rows: [{ k: 1, _rank: 0.1 }], next: null },
      { source: 'b', ok: true, rows: [{ k: 2, _rank: 0.9 }], next: 'cur', cached: true },
      { source: 'c', ok: false },
    ]);
    expect(m.rows).toEqual([
      { k: 2, _rank: 0.9, _source: 'b', _cached: true },
      { k: 1, _rank: 0.1, _source: 'local' },
    ]);
    expect(m.more).toEqual({ b: 'cur' });
    expect(m.partial).toEqual(['c']);
  });
});
