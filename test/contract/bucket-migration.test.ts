// The buckets table's migration on a database made by the previous release: bucket owners
// kept in settings rows ("bucket:<name>") and the buckets of existing services (first
// created service wins) get their owner recorded, so an upgrade does not hand them to the
// first user who names them. Run on PGlite and on the machine's real PostgreSQL.
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator';
import { drizzle } from 'drizzle-orm/pglite';
import { migrate } from 'drizzle-orm/pglite/migrator';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgliteStore } from '../../src/adapters/store-pglite/pglite-store.ts';
import { PostgresStore } from '../../src/adapters/store-postgres/postgres-store.ts';
import { MIGRATIONS_FOLDER } from '../../src/adapters/store-sql/migrations-path.ts';
import type { Store } from '../../src/core/ports.ts';
import { createTempDatabase, type TempDatabase } from '../support/postgres.ts';

/** The migration set as the release before the buckets table shipped it. */
const previousRelease = async (dir: string): Promise<string> => {
  const out = join(dir, 'migrations-before');
  await cp(MIGRATIONS_FOLDER, out, { recursive: true });
  const journalPath = join(out, 'meta', '_journal.json');
  const journal = JSON.parse(await readFile(journalPath, 'utf8'));
  const at = journal.entries.findIndex((e: { tag: string }) => e.tag.endsWith('_buckets'));
  expect(at).toBeGreaterThan(0);
  journal.entries = journal.entries.slice(0, at);
  await writeFile(journalPath, JSON.stringify(journal));
  return out;
};

const LEGACY = [
  // settings rows as the previous release wrote them
  `INSERT INTO settings (key, value) VALUES
     ('bucket:made-by-alice', '{"owner":"alice","visibility":"restricted","allowed_users":["bob"]}'),
     ('bucket:deleted-one', '')`,
  // services created in this order: bob first names "shared-b", alice later
  `INSERT INTO services (name, owner, definition, created_at) VALUES
     ('bob-svc', 'bob', '{"name":"bob-svc","visibility":"public","input":[{"storage_provider":"minio.default","path":"/shared-b/in"}],"output":[{"path":"bob-out/x"}]}', now() - interval '2 days'),
     ('alice-svc', 'alice', '{"name":"alice-svc","output":[{"storage_provider":"minio.default","path":"shared-b/out"},{"storage_provider":"minio.default","path":"made-by-alice/o"}]}', now() - interval '1 day'),
     ('odd-svc', 'carol', '{"name":"odd-svc","input":null,"output":{"path":"not-a-list"}}', now())`,
];

const expectAdopted = async (store: Store) => {
  expect(await store.getBucket('made-by-alice')).toMatchObject({
    owner: 'alice',
    visibility: 'restricted',
    allowedUsers: ['bob'],
    createdBy: null,
  });
  expect(await store.getBucket('deleted-one')).toBeUndefined();
  expect(await store.getBucket('shared-b')).toMatchObject({
    owner: 'bob',
    visibility: 'public',
    createdBy: null,
  });
  expect(await store.getBucket('bob-out')).toMatchObject({ owner: 'bob' });
  expect(await store.getBucket('not-a-list')).toBeUndefined();
};

describe('buckets migration from the previous release', () => {
  let dir: string;
  let db: TempDatabase | undefined;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flotilla-bucket-mig-'));
  });
  afterAll(async () => {
    await db?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('PGlite: records the owners the settings rows and services held', async () => {
    const dataDir = join(dir, 'db');
    const client = new PGlite(dataDir);
    await migrate(drizzle({ client }), { migrationsFolder: await previousRelease(join(dir, 'pglite')) });
    for (const q of LEGACY) await client.query(q);
    await client.close();
    const store = await PgliteStore.open(dataDir);
    try {
      await expectAdopted(store);
    } finally {
      await store.close();
    }
  });

  it('PostgreSQL: the same', async () => {
    db = await createTempDatabase();
    const pool = new pg.Pool({ connectionString: db.url, max: 1 });
    await migratePg(drizzlePg({ client: pool }), {
      migrationsFolder: await previousRelease(join(dir, 'pg')),
    });
    for (const q of LEGACY) await pool.query(q);
    await pool.end();
    const store = await PostgresStore.open(db.url);
    try {
      await expectAdopted(store);
    } finally {
      await store.close();
    }
  });
});
