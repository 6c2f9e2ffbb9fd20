// Store on PGlite (PostgreSQL in WASM): the embedded default, files under --data-dir.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { PGlite } from '@electric-sql/pglite';
import { drizzle } from 'drizzle-orm/pglite';
import { migrate } from 'drizzle-orm/pglite/migrator';
import { MIGRATIONS_FOLDER } from '../store-sql/migrations-path.ts';
import { SqlStore } from '../store-sql/sql-store.ts';

// PostgreSQL's shared memory is zero-filled when it starts, so all of it is resident: the
// 128 MB of shared_buffers initdb writes cost ~130 MB RSS. A manager's database is small and
// its files stay in the OS page cache. Given at every start, so older data dirs get it too.
// min_wal_size keeps the WAL on disk at the 32 MB it took with 16 MB segments (below).
const START_PARAMS = [...PGlite.defaultStartParams, '-c', 'shared_buffers=8MB', '-c', 'min_wal_size=32MB'];

// The first new WAL segment (after ~5,000 jobs) costs the manager a malloc'd block of the
// segment's size that stays resident: 16 MB with the default segments, 1 MB with these.
// Fixed when the database is created: older data dirs keep 16 MB segments.
export const INITDB_PARAMS = ['--wal-segsize=1'];

const INITDB = fileURLToPath(new URL('./pglite-initdb.mjs', import.meta.url));

/** Creates the database in `dir` in a short-lived process (see pglite-initdb.mjs). */
const initdbApart = async (dir: string): Promise<void> => {
  try {
    await promisify(execFile)(process.execPath, [INITDB, dir, ...INITDB_PARAMS], { timeout: 120_000 });
  } catch (e) {
    const err = e as Error & { stderr?: string };
    throw new Error(`cannot create the database in ${dir}: ${err.stderr?.trim() || err.message}`);
  }
};

export class PgliteStore extends SqlStore {
  readonly kind = 'pglite' as const;

  private constructor(private readonly client: PGlite) {
    super(drizzle({ client }));
  }

  /** Opens (or creates) the database in `dir`, or in memory when dir is undefined. */
  static async open(dir: string | undefined): Promise<PgliteStore> {
    if (dir) await mkdir(dir, { recursive: true, mode: 0o700 });
    if (dir && !existsSync(join(dir, 'PG_VERSION'))) await initdbApart(dir);
    const options = { startParams: START_PARAMS, initDbStartParams: INITDB_PARAMS };
    const client = dir ? new PGlite(dir, options) : new PGlite(options);
    await client.waitReady;
    const store = new PgliteStore(client);
    await migrate(store.db as Parameters<typeof migrate>[0], { migrationsFolder: MIGRATIONS_FOLDER });
    return store;
  }

  protected async rawQuery<R>(text: string, params: unknown[]): Promise<R[]> {
    return (await this.client.query<R>(text, params)).rows;
  }

  async close(): Promise<void> {
    if (!this.client.closed) await this.client.close();
  }
}
