// Store on PGlite (PostgreSQL in WASM): the embedded default, files under --data-dir.
import { mkdir } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import { drizzle } from 'drizzle-orm/pglite';
import { migrate } from 'drizzle-orm/pglite/migrator';
import { MIGRATIONS_FOLDER } from '../store-sql/migrations-path.ts';
import { SqlStore } from '../store-sql/sql-store.ts';

export class PgliteStore extends SqlStore {
  readonly kind = 'pglite' as const;

  private constructor(private readonly client: PGlite) {
    super(drizzle({ client }));
  }

  /** Opens (or creates) the database in `dir`, or in memory when dir is undefined. */
  static async open(dir: string | undefined): Promise<PgliteStore> {
    if (dir) await mkdir(dir, { recursive: true, mode: 0o700 });
    const client = dir ? new PGlite(dir) : new PGlite();
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
