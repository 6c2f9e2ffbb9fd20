// The audit trail's writer: rows reach the store in batches within the flush interval, the
// queue is bounded (drops counted), a failing store keeps rows (up to capacity) and retries.
import { describe, expect, it } from 'vitest';
import { AuditTrail } from '../../src/app/audit/audit-trail.ts';
import type { AuditEntry } from '../../src/core/audit/chain.ts';
import { waitFor } from '../support/wait.ts';

const entry = (i: number): AuditEntry => ({
  at: new Date(i),
  grantId: null,
  peer: null,
  subject: null,
  verb: 'get',
  resource: 'status',
  queryHash: '00'.repeat(32),
  outcome: 'ok',
  bytesOut: 0,
  latencyMs: 0,
  traceId: null,
});

const sink = () => {
  const counts = { written: 0, dropped: 0 };
  const auditRows = (o: 'written' | 'dropped', n: number) => {
    counts[o] += n;
  };
  return { counts, metrics: { auditRows } };
};
const quiet = { warn: () => {} };

describe('AuditTrail', () => {
  it('writes queued rows in batches, in order, within the flush interval', async () => {
    const batches: AuditEntry[][] = [];
    const { counts, metrics } = sink();
    const trail = new AuditTrail({
      store: {
        append: async (b) => {
          batches.push([...b]);
          return [];
        },
      },
      log: quiet,
      metrics,
      batchSize: 4,
      flushMs: 50,
    });
    for (let i = 0; i < 10; i++) expect(trail.record(entry(i))).toBe(true);
    await waitFor(async () => counts.written === 10, 2000, 'rows written');
    expect(batches.every((b) => b.length <= 4)).toBe(true);
    expect(batches.flat().map((e) => e.at.getTime())).toEqual([...Array(10).keys()]);
    expect(counts.dropped).toBe(0);
  });

  it('is bounded: past capacity new rows are dropped and counted, the request path never waits', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const { counts, metrics } = sink();
    const trail = new AuditTrail({
      store: {
        append: async () => {
          await gate;
          return [];
        },
      },
      log: quiet,
      metrics,
      capacity: 5,
      batchSize: 2,
      flushMs: 1,
    });
    trail.record(entry(0));
    trail.record(entry(1)); // batch of 2 goes to the (stuck) store
    await new Promise((r) => setTimeout(r, 20));
    const kept = Array.from({ length: 10 }, (_, i) => trail.record(entry(i + 2))).filter(Boolean).length;
    expect(kept).toBe(5);
    expect(counts.dropped).toBe(5);
    expect(trail.pending).toBe(5);
    release();
    await trail.close();
    expect(counts.written).toBe(7);
  });

  it('a store that fails keeps the rows and retries; they are written once it is back', async () => {
    let down = true;
    const stored: AuditEntry[] = [];
    const { counts, metrics } = sink();
    const warnings: string[] = [];
    const trail = new AuditTrail({
      store: {
        append: async (b) => {
          if (down) throw new Error('connection refused');
          stored.push(...b);
          return [];
        },
      },
      log: { warn: (_o, m) => void warnings.push(m) },
      metrics,
      flushMs: 10,
    });
    for (let i = 0; i < 3; i++) trail.record(entry(i));
    await waitFor(async () => warnings.length > 0, 2000, 'a warning');
    down = false;
    await waitFor(async () => stored.length === 3, 5000, 'rows written after recovery');
    expect(counts).toEqual({ written: 3, dropped: 0 });
    expect(warnings).toHaveLength(2); // one when it failed, one when it recovered
  });
});
