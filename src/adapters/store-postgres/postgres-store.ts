// Store on a PostgreSQL server (DATABASE_URL): the standalone and federated tiers.
import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import { MIGRATIONS_FOLDER } from '../store-sql/migrations-path.ts';
import { SqlStore } from '../store-sql/sql-store.ts';

// Managers sharing one database must not run the migrations at the same time.
const MIGRATION_LOCK_KEY = 0x666c6f74; // "flot"

export class PostgresStore extends SqlStore {
  readonly kind = 'postgres' as const;

  private constructor(private readonly pool: pg.Pool) {
    super(drizzle({ client: pool }));
  }

  static async open(url: string, opts: { poolSize?: number } = {}): Promise<PostgresStore> {
    const pool = new pg.Pool({
      connectionString: url,
      max: opts.poolSize ?? 10,
      connectionTimeoutMillis: 5_000,
    });
    // An idle client that loses its server must not crash the process.
    pool.on('error', () => {});
    const store = new PostgresStore(pool);
    const client = await pool.connect();
    try {
      await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
      await migrate(store.db as Parameters<typeof migrate>[0], { migrationsFolder: MIGRATIONS_FOLDER });
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => {});
      client.release();
    }
    return store;
  }

  protected async rawQuery<R>(text: string, params: unknown[]): Promise<R[]> {
    return (await this.pool.query(text, params)).rows as R[];
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
