// The StateCopier port over SQL: the source is the PGlite database in the data dir or a
// PostgreSQL (DATABASE_URL), the target a PostgreSQL. Each side is read and written through
// one raw connection (table-copy.ts does the SQL); the schema is brought up to date by the
// store adapters themselves, under their own migration lock; a session-level advisory lock
// on the target keeps a second run out.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import type {
  CopyLockHolder,
  CopySource,
  CopyTarget,
  OpenFailure,
  RowCounts,
  StateCopier,
  TableCopyProgress,
} from '../../core/ports.ts';
import { safeUrl } from '../../core/redaction.ts';
import { PgliteStore } from '../store-pglite/pglite-store.ts';
import { findAdvisoryLockHolder, tryAdvisoryLock } from '../store-postgres/advisory-lock.ts';
import { PostgresStore } from '../store-postgres/postgres-store.ts';
import { copyAll, countRows, MIGRATE_TIER_LOCK_KEY, MIGRATED_TABLES, type QueryFn } from './table-copy.ts';

export type CopySourceSpec = { kind: 'postgres'; url: string } | { kind: 'pglite'; dir: string };

const APPLICATION_NAME = 'flotilla-migrate-tier';

interface Connection {
  query: QueryFn;
  close(): Promise<void>;
}

const connectPostgres = async (url: string): Promise<Connection | OpenFailure> => {
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: 5_000,
    application_name: APPLICATION_NAME,
  });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (e) {
    return { reason: 'unreachable', error: (e as Error).message };
  }
  return {
    query: (sql, params) => client.query(sql, params as unknown[]),
    close: () => client.end().catch(() => {}),
  };
};

class SqlCopyTarget implements CopyTarget {
  constructor(
    private readonly url: string,
    readonly connection: Connection,
  ) {}

  countRows(): Promise<RowCounts> {
    return countRows(this.connection.query);
  }

  async lock() {
    const lock = await tryAdvisoryLock(this.url, MIGRATE_TIER_LOCK_KEY, {
      applicationName: APPLICATION_NAME,
    });
    if (lock) return { lock };
    const holder = await findAdvisoryLockHolder(
      { query: this.connection.query },
      MIGRATE_TIER_LOCK_KEY,
    ).catch(() => undefined);
    const heldBy: CopyLockHolder | undefined = holder && {
      pid: holder.pid,
      clientAddr: holder.clientAddr,
      backendStart: holder.backendStart,
    };
    return { heldBy };
  }

  async migrateSchema(): Promise<void> {
    await (await PostgresStore.open(this.url)).close();
  }

  close(): Promise<void> {
    return this.connection.close();
  }
}

class SqlCopySource implements CopySource {
  constructor(private readonly connection: Connection) {}

  countRows(): Promise<RowCounts> {
    return countRows(this.connection.query);
  }

  async copyInto(
    target: CopyTarget,
    opts: { onProgress?: (p: TableCopyProgress) => void; beforeCommit?: () => void | Promise<void> },
  ): Promise<Record<string, number>> {
    if (!(target instanceof SqlCopyTarget))
      throw new Error('the copy target must come from the SQL state copier');
    const { copied } = await copyAll({
      source: this.connection.query,
      target: target.connection.query,
      onProgress: opts.onProgress,
      beforeCommit: opts.beforeCommit,
    });
    return copied;
  }

  close(): Promise<void> {
    return this.connection.close();
  }
}

const openPglite = async (dir: string, migrateSchema: boolean): Promise<Connection | OpenFailure> => {
  if (!existsSync(join(dir, 'PG_VERSION'))) return { reason: 'absent' };
  const pid = join(dir, 'postmaster.pid');
  if (existsSync(pid)) return { reason: 'in-use', evidence: pid };
  // The adapter brings the schema up to date; the copy then reads through a raw client.
  if (migrateSchema) await (await PgliteStore.open(dir)).close();
  const db = new PGlite(dir);
  await db.waitReady;
  return {
    query: (sql, params) => db.query(sql, params) as Promise<{ rows: Record<string, any>[] }>,
    close: async () => {
      if (!db.closed) await db.close();
    },
  };
};

export const createSqlStateCopier = (spec: CopySourceSpec): StateCopier => ({
  tables: MIGRATED_TABLES.map((t) => t.name),
  source:
    spec.kind === 'postgres'
      ? { kind: 'postgres', where: safeUrl(spec.url) }
      : { kind: 'pglite', where: spec.dir },
  async openSource({ migrateSchema }) {
    let opened: Connection | OpenFailure;
    if (spec.kind === 'pglite') {
      opened = await openPglite(spec.dir, migrateSchema);
    } else {
      if (migrateSchema) await (await PostgresStore.open(spec.url)).close();
      opened = await connectPostgres(spec.url);
    }
    return 'reason' in opened ? opened : { source: new SqlCopySource(opened) };
  },
  async openTarget(url) {
    const opened = await connectPostgres(url);
    return 'reason' in opened ? opened : { target: new SqlCopyTarget(url, opened) };
  },
});
