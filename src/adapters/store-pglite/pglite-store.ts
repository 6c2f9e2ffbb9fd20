// Store on PGlite (PostgreSQL in WASM): the embedded default, files under --data-dir.
import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm, rmdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
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

const INITDB_TIMEOUT_MS = 120_000;

/** Runs pglite-initdb.mjs on `dir`; it exits when this process does (its IPC channel closes). */
const runInitdb = (dir: string): Promise<void> =>
  new Promise((resolve, reject) => {
    let stderr = '';
    const child = fork(INITDB, [dir, ...INITDB_PARAMS], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      // Not this process's node flags (a test runner's, a module log): a plain node.
      execArgv: [],
      timeout: INITDB_TIMEOUT_MS,
    });
    child.stderr?.on('data', (d) => {
      stderr += d;
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(stderr.trim() || `initdb exited with ${code ?? signal}`));
    });
  });

/**
 * Creates the database of `dir` in a short-lived process (see pglite-initdb.mjs), beside it
 * first and then renamed into place: a start interrupted during initdb leaves no half-made
 * database behind for the next start to open.
 */
const initdbApart = async (dir: string): Promise<void> => {
  const aside = join(dirname(dir), `.${basename(dir)}-initdb-${process.pid}`);
  try {
    await rm(aside, { recursive: true, force: true });
    await mkdir(aside, { mode: 0o700 });
    await runInitdb(aside);
    // The empty directory made for it (a non-empty one is not ours to remove: the rename fails).
    await rmdir(dir).catch(() => {});
    await rename(aside, dir);
  } catch (e) {
    await rm(aside, { recursive: true, force: true }).catch(() => {});
    throw new Error(`cannot create the database in ${dir}: ${(e as Error).message}`);
  }
};

export class PgliteStore extends SqlStore {
  readonly kind = 'pglite' as const;

  private constructor(private readonly client: PGlite) {
    super(drizzle({ client }), { soleWriter: true });
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
