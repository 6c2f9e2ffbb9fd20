// StateCopier contract: one suite, run against every adapter — the SQL copier with a PGlite
// data dir as the source and with the machine's real PostgreSQL as the source; the target
// is always a throwaway PostgreSQL database. Sources are seeded and read back through the
// Store API, so "copied exactly" means what a manager on the target would see.
// The whole command (flags, refusals, output) is test/e2e/doctor-migrate.e2e.test.ts.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgliteStore } from '../../src/adapters/store-pglite/pglite-store.ts';
import { PostgresStore } from '../../src/adapters/store-postgres/postgres-store.ts';
import { createSqlStateCopier } from '../../src/adapters/tier-copy/sql-state-copier.ts';
import type { Service } from '../../src/core/fdl/service.ts';
import type {
  CopySource,
  CopyTarget,
  NewJob,
  OpenFailure,
  StateCopier,
  Store,
  TableCopyProgress,
} from '../../src/core/ports.ts';
import { createTempDatabase, type TempDatabase } from '../support/postgres.ts';
import { SCHEMA_TABLES } from '../support/schema-tables.ts';

const TABLES = SCHEMA_TABLES;
const each = (value: number | null) => Object.fromEntries(TABLES.map((t) => [t, value]));
const SEEDED = { ...each(0), services: 2, settings: 2, jobs: 12, outbox: 2 };

const svc = (name: string): Service =>
  ({
    name,
    image: 'alpine',
    script: 'echo hi',
    cpu: '0.5',
    memory: '256Mi',
    log_level: 'INFO',
    visibility: 'private',
    token: randomBytes(32).toString('hex'),
    owner: 'cluster_admin',
    environment: { variables: { A: '1' }, secrets: {} },
    custom_unknown_field: { kept: [1, 'two'] },
  }) as Service;

const jobs = (): NewJob[] =>
  Array.from({ length: SEEDED.jobs }, (_, i) => ({
    id: `job-${String(i).padStart(2, '0')}-${randomBytes(3).toString('hex')}`,
    service: i % 2 ? 'a' : 'b',
    event: Uint8Array.from([0, 255, i, 13, 10]),
    owner: 'cluster_admin',
    cpuMillis: 100 + i,
    memoryBytes: 2 ** 33 + i,
    createdAt: new Date(Date.UTC(2024, 0, 1, 0, 0, i, 123)),
  }));

let jobIds: string[] = [];

const seed = async (store: Store): Promise<void> => {
  await store.createService(svc('a'));
  await store.createService(svc('b'));
  jobIds = await store.insertJobs(jobs());
  await store.setSetting('s3_access_key', 'AKIAEXAMPLE');
  await store.setSetting('sealed:refresh_token:a', `v1:${randomBytes(40).toString('base64url')}`);
  await store.enqueueOutbox(
    ['b', 'c'].map((peer, i) => ({
      peer,
      service: `a-${peer}`,
      op: 'update' as const,
      payload: { name: `a-${peer}`, nested: { list: [1, 2, 3] } },
      target: {
        clusterId: peer,
        endpoint: `http://127.0.0.1:1808${i}`,
        sslVerify: false,
        auth: { kind: 'none' },
      },
      group: 'a',
      revision: i + 1,
    })),
  );
};

/** Everything a manager reads back (bytes as arrays: PGlite and node-postgres differ in type). */
const snapshot = async (store: Store) => ({
  services: await store.listServices(),
  jobs: (await Promise.all(jobIds.map((id) => store.getJob(id)))).map(
    (j) => j && { ...j, event: Array.from(j.event) },
  ),
  outbox: await store.outboxOfGroup('a'),
  settings: [await store.getSetting('s3_access_key'), await store.getSetting('sealed:refresh_token:a')],
});

interface Adapter {
  name: string;
  /** Makes and seeds the source; returns the copier over it and a way to read it back. */
  setup(): Promise<{ copier: StateCopier; openSourceStore(): Promise<Store> }>;
  teardown(): Promise<void>;
}

let root: string;
const sourceDbs: TempDatabase[] = [];

const adapters: Adapter[] = [
  {
    name: 'SQL copier, PGlite data dir as the source',
    async setup() {
      const dir = join(root, 'pglite', 'db');
      const store = await PgliteStore.open(dir);
      try {
        await seed(store);
      } finally {
        await store.close();
      }
      return {
        copier: createSqlStateCopier({ kind: 'pglite', dir }),
        openSourceStore: () => PgliteStore.open(dir),
      };
    },
    async teardown() {},
  },
  {
    name: 'SQL copier, PostgreSQL as the source',
    async setup() {
      const db = await createTempDatabase('flotilla_copy_source');
      sourceDbs.push(db);
      const store = await PostgresStore.open(db.url);
      try {
        await seed(store);
      } finally {
        await store.close();
      }
      return {
        copier: createSqlStateCopier({ kind: 'postgres', url: db.url }),
        openSourceStore: () => PostgresStore.open(db.url),
      };
    },
    async teardown() {
      for (const db of sourceDbs.splice(0)) await db.drop();
    },
  },
];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'flotilla-copier-'));
});
afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

const opened = <T>(r: T | OpenFailure): T => {
  if (typeof r === 'object' && r && 'reason' in r) throw new Error(`open failed: ${JSON.stringify(r)}`);
  return r as T;
};

for (const adapter of adapters) {
  describe(`StateCopier contract: ${adapter.name}`, () => {
    let copier: StateCopier;
    let openSourceStore: () => Promise<Store>;
    let expected: Awaited<ReturnType<typeof snapshot>>;
    const targets: TempDatabase[] = [];
    const open: Array<CopySource | CopyTarget> = [];

    const newTarget = async (): Promise<{ db: TempDatabase; target: CopyTarget }> => {
      const db = await createTempDatabase('flotilla_copy_target');
      targets.push(db);
      const { target } = opened(await copier.openTarget(db.url));
      open.push(target);
      return { db, target };
    };
    const openSource = async (): Promise<CopySource> => {
      const { source } = opened(await copier.openSource({ migrateSchema: true }));
      open.push(source);
      return source;
    };
    /** Closes what a test opened (a PGlite source must be closed before it is opened again). */
    const closeAll = async () => {
      for (const x of open.splice(0)) await x.close();
    };

    beforeAll(async () => {
      ({ copier, openSourceStore } = await adapter.setup());
      const store = await openSourceStore();
      try {
        expected = await snapshot(store);
      } finally {
        await store.close();
      }
    }, 60_000);
    afterAll(async () => {
      await closeAll();
      for (const db of targets) await db.drop();
      await adapter.teardown();
    });

    it('names the source without user info and lists the tables in copy order', () => {
      expect(copier.tables).toEqual(TABLES);
      expect(copier.source.where).not.toMatch(/:\/\/[^/]*@/);
    });

    it('counts the source rows per table, and a never-migrated target has no tables', async () => {
      const source = await openSource();
      const { target } = await newTarget();
      try {
        expect(await source.countRows()).toEqual(SEEDED);
        expect(await target.countRows()).toEqual(each(null));
        await target.migrateSchema();
        expect(await target.countRows()).toEqual(each(0));
      } finally {
        await closeAll();
      }
    });

    it('copies every row exactly, reports progress per table, and a re-run changes nothing', async () => {
      const source = await openSource();
      const { db, target } = await newTarget();
      try {
        await target.migrateSchema();
        const progress: TableCopyProgress[] = [];
        const copied = await source.copyInto(target, { onProgress: (p) => progress.push(p) });
        expect(copied).toEqual(SEEDED);
        for (const t of TABLES) {
          expect(progress.filter((p) => p.table === t && p.done)).toEqual([
            {
              table: t,
              copied: SEEDED[t as keyof typeof SEEDED],
              total: SEEDED[t as keyof typeof SEEDED],
              done: true,
            },
          ]);
        }
        expect(await source.copyInto(target, {})).toEqual(SEEDED);
        expect(await target.countRows()).toEqual(SEEDED);
        await closeAll();

        const store = await PostgresStore.open(db.url);
        try {
          expect(await snapshot(store)).toEqual(expected);
          // The identity sequences moved past the copied rows: the next row follows them.
          const { peer, service, op, payload, target: to, group } = expected.outbox[0];
          const [next] = await store.enqueueOutbox([
            { peer, service, op, payload, target: to, group, revision: 9 },
          ]);
          expect(next).toBe(Math.max(...expected.outbox.map((o) => o.id)) + 1);
        } finally {
          await store.close();
        }
      } finally {
        await closeAll();
      }
    });

    it('leaves the target as it was when the copy is stopped before its commit', async () => {
      const source = await openSource();
      const { target } = await newTarget();
      try {
        await target.migrateSchema();
        await expect(
          source.copyInto(target, {
            beforeCommit: () => {
              throw new Error('lock lost');
            },
          }),
        ).rejects.toThrow('lock lost');
        expect(await target.countRows()).toEqual(each(0));
      } finally {
        await closeAll();
      }
    });

    it('gives the copy lock of a target to one run at a time, naming the holder to the other', async () => {
      const { db, target } = await newTarget();
      const other = opened(await copier.openTarget(db.url)).target;
      open.push(other);
      try {
        const first = await target.lock();
        expect('lock' in first).toBe(true);
        const second = await other.lock();
        expect(second).toMatchObject({ heldBy: { pid: expect.any(Number) } });
        if (!('lock' in first)) return;
        expect(first.lock.isLost).toBe(false);
        await first.lock.release();
        const again = await other.lock();
        expect('lock' in again).toBe(true);
        if ('lock' in again) await again.lock.release();
      } finally {
        await closeAll();
      }
    });

    it('says a target it cannot reach is unreachable', async () => {
      const r = await copier.openTarget('postgres://u:pw@127.0.0.1:1/x');
      expect(r).toMatchObject({ reason: 'unreachable', error: expect.any(String) });
    });
  });
}

describe('SQL copier, PGlite source: what only a data dir can be', () => {
  it('absent when the data dir has no database, in use while its lock file exists', async () => {
    const empty = createSqlStateCopier({ kind: 'pglite', dir: join(root, 'nothing', 'db') });
    expect(await empty.openSource({ migrateSchema: true })).toEqual({ reason: 'absent' });

    const dir = join(root, 'busy', 'db');
    await (await PgliteStore.open(dir)).close();
    await writeFile(join(dir, 'postmaster.pid'), '-42\n');
    const busy = createSqlStateCopier({ kind: 'pglite', dir });
    expect(await busy.openSource({ migrateSchema: false })).toEqual({
      reason: 'in-use',
      evidence: join(dir, 'postmaster.pid'),
    });
  }, 60_000);
});
