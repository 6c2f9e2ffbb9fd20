// The PostgreSQL probe: connects as the URL says, asks the server its version, who we are
// and whether we may create the tables, and tells a refused login, a missing database or
// a busy server apart from a network failure (by the server's SQLSTATE).
import { describePostgresUrl } from '../../core/connection-urls.ts';
import type { PostgresObservation, PostgresServerFacts } from '../../core/ports.ts';
import { errCode, reachFailure, withTimeout } from './probe-support.ts';

export const observePostgres = async (
  url: string,
  opts: { timeoutMs: number },
): Promise<PostgresObservation> => {
  const { timeoutMs } = opts;
  const { host } = describePostgresUrl(url);
  // Loaded here (before the clock starts): the local tier's start never needs the driver.
  const { default: pg } = await import('pg');
  const started = Date.now();
  const client = new pg.Client({
    connectionString: url,
    // Past the probe's own cap, so the cap (and its message) wins.
    connectionTimeoutMillis: timeoutMs + 1_000,
    application_name: 'flotilla-doctor',
  });
  client.on('error', () => {});
  const drop = () => {
    (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
  };
  try {
    const server = await withTimeout(
      (async (): Promise<PostgresServerFacts> => {
        await client.connect();
        const { rows } = await client.query(
          `SELECT current_setting('server_version_num')::int AS num, current_setting('server_version') AS version,
                  current_user AS "user", current_database() AS db,
                  has_schema_privilege('public', 'CREATE') AS can_create_tables,
                  has_database_privilege(current_database(), 'CREATE') AS can_create_schema,
                  to_regclass('public.jobs') IS NOT NULL AS migrated,
                  to_regnamespace('drizzle') IS NOT NULL AS has_migration_schema`,
        );
        const r = rows[0];
        return {
          versionNum: Number(r.num),
          version: String(r.version),
          user: r.user,
          database: r.db,
          canCreateTables: r.can_create_tables,
          canCreateSchema: r.can_create_schema,
          migrated: r.migrated,
          hasMigrationSchema: r.has_migration_schema,
        };
      })(),
      timeoutMs,
      drop,
    );
    return { reached: true, latencyMs: Date.now() - started, server };
  } catch (e) {
    const code = errCode(e);
    if (code === '28P01' || code === '28000') {
      return {
        reached: false,
        failure: { kind: 'login-refused', reason: code === '28P01' ? 'wrong-password' : 'not-admitted' },
      };
    }
    if (code === '3D000') return { reached: false, failure: { kind: 'no-such-database' } };
    if (code === '53300') return { reached: false, failure: { kind: 'too-many-connections' } };
    if (code === '57P03') return { reached: false, failure: { kind: 'starting-up' } };
    if (/does not support SSL/i.test((e as Error)?.message ?? '')) {
      return { reached: false, failure: { kind: 'tls-not-supported' } };
    }
    return { reached: false, failure: reachFailure(e, host, timeoutMs) };
  } finally {
    client.end().catch(() => {});
  }
};
