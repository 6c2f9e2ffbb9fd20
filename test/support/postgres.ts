// A throwaway database on the machine's real PostgreSQL, dropped after the test.
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const ADMIN_URL =
  process.env.FLOTILLA_TEST_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TempDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

const connectAdmin = async (): Promise<pg.Client> => {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
  } catch (e) {
    throw new Error(
      `PostgreSQL is needed for this test but is not reachable at 127.0.0.1:5432 (${(e as Error).message}). ` +
        'Start it (bash .ci/run does: pg_ctlcluster 15 main start) or set FLOTILLA_TEST_PG_ADMIN_URL.',
    );
  }
  return client;
};

export const createTempDatabase = async (prefix = 'flotilla_test'): Promise<TempDatabase> => {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  const admin = await connectAdmin();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    async drop() {
      const c = await connectAdmin();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
};
