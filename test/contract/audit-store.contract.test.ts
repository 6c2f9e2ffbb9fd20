// Contract of the AuditStore port, on PGlite and on the machine's real PostgreSQL 15: appends
// link after the tip, list spans the hot and the cold table in chain order, a cold move keeps
// the chain verifiable, and (PostgreSQL) two stores appending at once on one database still
// make one unbroken chain.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgliteStore } from '../../src/adapters/store-pglite/pglite-store.ts';
import { PostgresStore } from '../../src/adapters/store-postgres/postgres-store.ts';
import { type AuditEntry, type AuditRow, ChainVerifier, storableEntry } from '../../src/core/audit/chain.ts';
import type { Store } from '../../src/core/ports.ts';
import { createTempDatabase, type TempDatabase } from '../support/postgres.ts';

let n = 0;
const entry = (over: Partial<AuditEntry> = {}): AuditEntry => ({
  at: new Date(Date.UTC(2026, 0, 1) + ++n * 1000),
  grantId: 'grt_000000000000000000000001',
  peer: 'a',
  subject: 'alice',
  verb: 'list',
  resource: 'services',
  queryHash: 'ab'.repeat(32),
  outcome: 'ok',
  bytesOut: 123,
  latencyMs: 1.25,
  traceId: null,
  ...over,
});

const all = async (store: Store): Promise<AuditRow[]> => {
  const out: AuditRow[] = [];
  for (let after = 0; ; ) {
    const page = await store.audit.list({ afterSeq: after, limit: 7 });
    if (page.length === 0) return out;
    out.push(...page);
    after = page[page.length - 1].seq;
  }
};

const verify = (rows: AuditRow[]) => {
  const v = new ChainVerifier();
  for (const r of rows) if (!v.feed(r)) break;
  return v.result();
};

const contract = (name: string, open: () => Promise<{ store: Store; cleanup(): Promise<void> }>) =>
  describe(`AuditStore contract: ${name}`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    beforeAll(async () => {
      ({ store, cleanup } = await open());
    });
    afterAll(async () => {
      await store?.close();
      await cleanup?.();
    });

    it('links appended rows after the tip, seq 1, 2, 3 …, and the chain verifies', async () => {
      const first = await store.audit.append([entry(), entry()]);
      const second = await store.audit.append([entry({ outcome: 'denied', grantId: null, peer: null })]);
      expect([...first, ...second].map((r) => r.seq)).toEqual([1, 2, 3]);
      const rows = await all(store);
      expect(rows).toEqual([...first, ...second]);
      expect(verify(rows)).toEqual({ ok: true, rows: 3, lastSeq: 3 });
      expect(await store.audit.append([])).toEqual([]);
    });

    it('filters by since and afterSeq, and caps at the limit', async () => {
      await store.audit.append(Array.from({ length: 10 }, () => entry()));
      const rows = await all(store);
      const since = rows[5].at;
      const fromSince = await store.audit.list({ since, limit: 100 });
      expect(fromSince.map((r) => r.seq)).toEqual(rows.slice(5).map((r) => r.seq));
      expect((await store.audit.list({ afterSeq: 2, limit: 3 })).map((r) => r.seq)).toEqual([3, 4, 5]);
    });

    it('moves old rows to the cold table: still listed in order, still one chain, appends go on', async () => {
      const before = await all(store);
      const cut = before[6].at;
      expect(await store.audit.moveToCold(cut)).toBe(6);
      const after = await all(store);
      expect(after).toEqual(before);
      await store.audit.append([entry()]);
      const later = await all(store);
      expect(later.map((r) => r.seq)).toEqual(before.map((r) => r.seq).concat(before.length + 1));
      expect(verify(later).ok).toBe(true);
      // Everything cold: the next append still links to the cold tip.
      await store.audit.moveToCold(new Date(Date.UTC(2100, 0, 1)));
      await store.audit.append([entry()]);
      expect(verify(await all(store))).toMatchObject({ ok: true, lastSeq: before.length + 2 });
    });

    it('appends called at once on one store take turns: one chain, no gaps', async () => {
      const start = (await all(store)).length;
      await Promise.all(Array.from({ length: 8 }, () => store.audit.append([entry(), entry()])));
      const rows = await all(store);
      expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: start + 16 }, (_, i) => i + 1));
      expect(verify(rows).ok).toBe(true);
    });

    it('stores any text a storable entry holds (no row the database refuses)', async () => {
      const nasty = `\u0000'";--\u{1F600}\uD800${'é'.repeat(300)}`;
      const [row] = await store.audit.append([
        storableEntry(entry({ subject: nasty, peer: nasty, resource: nasty, traceId: nasty })),
      ]);
      const [read] = await store.audit.list({ afterSeq: row.seq - 1, limit: 1 });
      expect(read).toEqual(row);
    });

    it('round-trips every field exactly (the hash is recomputed from what is read back)', async () => {
      const [row] = await store.audit.append([
        entry({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', latencyMs: 0.123, bytesOut: 2 ** 40 }),
      ]);
      const [read] = await store.audit.list({ afterSeq: row.seq - 1, limit: 1 });
      expect(read).toEqual(row);
    });
  });

contract('pglite (in memory)', async () => ({
  store: await PgliteStore.open(undefined),
  cleanup: async () => {},
}));

let db: TempDatabase;
contract('postgres', async () => {
  db = await createTempDatabase();
  return { store: await PostgresStore.open(db.url), cleanup: () => db.drop() };
});

describe('AuditStore on one PostgreSQL shared by two instances', () => {
  let shared: TempDatabase;
  let s1: Store;
  let s2: Store;
  beforeAll(async () => {
    shared = await createTempDatabase();
    s1 = await PostgresStore.open(shared.url);
    s2 = await PostgresStore.open(shared.url);
  });
  afterAll(async () => {
    await s1?.close();
    await s2?.close();
    await shared?.drop();
  });

  it('concurrent appends from both make one chain without gaps or forks', async () => {
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 ? s1 : s2).audit.append(Array.from({ length: 5 }, () => entry({ peer: `p${i}` }))),
      ),
    );
    const rows = await all(s1);
    expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(verify(rows)).toEqual({ ok: true, rows: 100, lastSeq: 100 });
  });

  it('a row changed in the database breaks the chain at that row', async () => {
    const c = new pg.Client({ connectionString: shared.url });
    await c.connect();
    try {
      await c.query(`UPDATE audit SET outcome = 'ok', subject = 'mallory' WHERE seq = 42`);
    } finally {
      await c.end();
    }
    expect(verify(await all(s2))).toMatchObject({ ok: false, broken: { seq: 42, reason: 'hash-mismatch' } });
  });
});
