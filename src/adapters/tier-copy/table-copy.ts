// Table copy for `flotilla storage migrate-tier`: reads every table of the shared schema
// from a source database and upserts it, by primary key, into a target database. It only
// needs two "query" functions (PGlite's `query` and pg's `Client#query` both fit), so the
// same code copies PGlite → PostgreSQL and PostgreSQL → PostgreSQL.
//
// Rows travel as PostgreSQL's own JSON text (row_to_json on the source,
// json_populate_recordset on the target): every type round-trips exactly through its text
// form (bytea as \x…, bigint beyond 2^53, timestamps to the microsecond, jsonb as is), and
// no value passes through a JavaScript number or Date. Settings rows, which hold keys and
// sealed values, are copied byte for byte, so sealed values stay readable with the same key.
import { is } from 'drizzle-orm';
import { getTableConfig, PgTable } from 'drizzle-orm/pg-core';
import type { RowCounts, TableCopyProgress } from '../../core/ports.ts';
import * as schema from '../store-sql/schema.ts';

/** Runs one statement; PGlite's `query` and pg's `Client#query` both have this shape. */
export type QueryFn = (sql: string, params?: unknown[]) => Promise<{ rows: Record<string, any>[] }>;

export interface TableSpec {
  name: string;
  columns: string[];
  primaryKey: string[];
  /** SQL type of each primary-key column (for the paging cursor). */
  primaryKeyTypes: string[];
  /** GENERATED … AS IDENTITY columns: inserted with OVERRIDING SYSTEM VALUE, sequences reset. */
  identity: string[];
}

// Copy order: the tables others refer to first (none do yet: there are no foreign keys).
// Tables added to the schema later are copied after these, by name.
const TABLE_ORDER = ['services', 'settings', 'jobs', 'outbox'];

const rank = (name: string): number => {
  const i = TABLE_ORDER.indexOf(name);
  return i < 0 ? TABLE_ORDER.length : i;
};

/** Every table of src/adapters/store-sql/schema.ts. */
export const schemaTables = (): TableSpec[] =>
  (Object.values(schema) as unknown[])
    .filter((v): v is PgTable => is(v, PgTable))
    .sort((a, b) => {
      const [x, y] = [getTableConfig(a).name, getTableConfig(b).name];
      return rank(x) - rank(y) || x.localeCompare(y);
    })
    .map((t) => {
      const cfg = getTableConfig(t);
      const pk = cfg.primaryKeys[0]?.columns ?? cfg.columns.filter((c) => c.primary);
      if (pk.length === 0)
        throw new Error(`table ${cfg.name} has no primary key: it cannot be copied by upsert`);
      return {
        name: cfg.name,
        columns: cfg.columns.map((c) => c.name),
        primaryKey: pk.map((c) => c.name),
        primaryKeyTypes: pk.map((c) => c.getSQLType()),
        identity: cfg.columns
          .filter((c) => (c as unknown as { generatedIdentity?: unknown }).generatedIdentity)
          .map((c) => c.name),
      };
    });

export const MIGRATED_TABLES: readonly TableSpec[] = schemaTables();

/** Key of the advisory lock taken on the target against a concurrent migrate-tier. */
export const MIGRATE_TIER_LOCK_KEY = 0x666c6f745f6d6967n; // "flot_mig"

const q = (ident: string): string => `"${ident.replace(/"/g, '""')}"`;

/** Rows per table; null when the table does not exist (a database never migrated). */
export const countRows = async (
  query: QueryFn,
  tables: readonly TableSpec[] = MIGRATED_TABLES,
): Promise<RowCounts> => {
  const out: RowCounts = {};
  for (const t of tables) {
    const { rows } = await query('SELECT to_regclass($1) IS NOT NULL AS present', [`public.${q(t.name)}`]);
    if (!rows[0]?.present) {
      out[t.name] = null;
      continue;
    }
    const res = await query(`SELECT count(*)::text AS n FROM public.${q(t.name)}`);
    out[t.name] = Number(res.rows[0].n);
  }
  return out;
};

export type CopyProgress = TableCopyProgress;

export interface CopyOptions {
  source: QueryFn;
  target: QueryFn;
  tables?: readonly TableSpec[];
  /** Rows read per page from the source. Default 500. */
  pageRows?: number;
  /** Upper bound of one insert statement's JSON, in bytes. Default 8 MiB. */
  batchBytes?: number;
  onProgress?: (p: CopyProgress) => void;
}

export interface CopyResult {
  /** Rows read from the source, per table. */
  copied: Record<string, number>;
}

const upsertSql = (t: TableSpec): string => {
  const cols = t.columns.map(q).join(', ');
  // An identity column GENERATED ALWAYS cannot be updated; a re-run keeps its value.
  const updatable = t.columns.filter((c) => !t.primaryKey.includes(c) && !t.identity.includes(c));
  const onConflict = updatable.length
    ? `DO UPDATE SET ${updatable.map((c) => `${q(c)} = EXCLUDED.${q(c)}`).join(', ')}`
    : 'DO NOTHING';
  return (
    `INSERT INTO public.${q(t.name)} (${cols})${t.identity.length ? ' OVERRIDING SYSTEM VALUE' : ''} ` +
    `SELECT ${cols} FROM json_populate_recordset(NULL::public.${q(t.name)}, $1::json) ` +
    `ON CONFLICT (${t.primaryKey.map(q).join(', ')}) ${onConflict}`
  );
};

/**
 * Copies one table: pages through the source by primary key and upserts each page into
 * the target. Returns the number of rows read. Run it inside the callers' transactions
 * (a snapshot on the source, one transaction on the target).
 */
export const copyTable = async (
  t: TableSpec,
  opts: Omit<CopyOptions, 'tables'> & { total?: number },
): Promise<number> => {
  const pageRows = opts.pageRows ?? 500;
  const batchBytes = opts.batchBytes ?? 8 * 1024 * 1024;
  const pk = t.primaryKey.map(q).join(', ');
  const keyCols = t.primaryKey.map((c, i) => `${q(c)}::text AS "_k${i}"`).join(', ');
  const after = t.primaryKey.length === 1 ? q(t.primaryKey[0]) : `(${pk})`;
  const cursor = (start: number) => {
    const ps = t.primaryKeyTypes.map((ty, i) => `$${start + i}::${ty}`);
    return ps.length === 1 ? ps[0] : `(${ps.join(', ')})`;
  };
  const first = `SELECT row_to_json(r)::text AS "_row", ${keyCols} FROM public.${q(t.name)} r ORDER BY ${pk} LIMIT ${pageRows}`;
  const next = `SELECT row_to_json(r)::text AS "_row", ${keyCols} FROM public.${q(t.name)} r WHERE ${after} > ${cursor(1)} ORDER BY ${pk} LIMIT ${pageRows}`;
  const insert = upsertSql(t);
  const total = opts.total ?? -1;
  let copied = 0;
  let last: string[] | undefined;
  opts.onProgress?.({ table: t.name, copied, total, done: false });
  for (;;) {
    const { rows } = last ? await opts.source(next, last) : await opts.source(first);
    if (rows.length === 0) break;
    let batch: string[] = [];
    let bytes = 2;
    const flush = async () => {
      if (batch.length === 0) return;
      await opts.target(insert, [`[${batch.join(',')}]`]);
      batch = [];
      bytes = 2;
    };
    for (const r of rows) {
      const json = r._row as string;
      if (bytes + json.length + 1 > batchBytes) await flush();
      batch.push(json);
      bytes += json.length + 1;
    }
    await flush();
    copied += rows.length;
    const lastRow = rows[rows.length - 1];
    last = t.primaryKey.map((_, i) => lastRow[`_k${i}`] as string);
    opts.onProgress?.({ table: t.name, copied, total, done: false });
    if (rows.length < pageRows) break;
  }
  opts.onProgress?.({ table: t.name, copied, total, done: true });
  return copied;
};

/** Moves each identity sequence past the largest value in the table (next insert: max + 1). */
export const resetSequences = async (target: QueryFn, t: TableSpec): Promise<void> => {
  for (const col of t.identity) {
    await target(
      `SELECT setval(pg_get_serial_sequence($1, $2), COALESCE((SELECT max(${q(col)}) FROM public.${q(t.name)}), 0) + 1, false)`,
      [`public.${q(t.name)}`, col],
    );
  }
};

/**
 * Copies every table from source to target. The source is read in one REPEATABLE READ
 * snapshot (consistent across tables even while a manager writes); the target is written
 * in one transaction, so a failure leaves it as it was. `beforeCommit` runs last inside the
 * target transaction (to check, e.g., that the advisory lock is still held); throwing
 * there rolls everything back.
 */
export const copyAll = async (
  opts: CopyOptions & { beforeCommit?: () => Promise<void> | void },
): Promise<CopyResult> => {
  const tables = opts.tables ?? MIGRATED_TABLES;
  const copied: Record<string, number> = {};
  await opts.source('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    await opts.source("SET LOCAL bytea_output = 'hex'");
    const totals = await countRows(opts.source, tables);
    await opts.target('BEGIN');
    try {
      for (const t of tables) {
        if (totals[t.name] === null) throw new Error(`the source has no table ${t.name}`);
        copied[t.name] = await copyTable(t, { ...opts, total: totals[t.name] ?? undefined });
        await resetSequences(opts.target, t);
      }
      await opts.beforeCommit?.();
      await opts.target('COMMIT');
    } catch (e) {
      await opts.target('ROLLBACK').catch(() => {});
      throw e;
    }
  } finally {
    await opts.source('ROLLBACK').catch(() => {});
  }
  return { copied };
};
