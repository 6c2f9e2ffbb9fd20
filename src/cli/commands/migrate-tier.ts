// `flotilla storage migrate-tier --to standalone|federated --target-url URL`: copies all
// state one way, from the configured store (PGlite in --data-dir, or DATABASE_URL) into the
// PostgreSQL at --target-url. See docs/doctor.md.
//
//   --dry-run          counts rows per table on both sides; changes nothing
//   --allow-non-empty  copies into a target that already has rows (upsert by primary key)
//   --yes              no confirmation prompt (required when stdin is not a terminal)
//
// Safety: an advisory lock on the target stops a concurrent run; the target is written in
// one transaction (a failure leaves it as it was); the source is read in one snapshot.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { PGlite } from '@electric-sql/pglite';
import { type Command, Option } from 'commander';
import pg from 'pg';
import { PgliteStore } from '../../adapters/store-pglite/pglite-store.ts';
import {
  type AdvisoryLock,
  findAdvisoryLockHolder,
  tryAdvisoryLock,
} from '../../adapters/store-postgres/advisory-lock.ts';
import { PostgresStore } from '../../adapters/store-postgres/postgres-store.ts';
import {
  describePostgresUrl,
  probePostgres,
  probeValkey,
  redact,
  safeUrl,
  urlSecrets,
} from '../../app/tier/detector.ts';
import {
  copyAll,
  countRows,
  MIGRATE_TIER_LOCK_KEY,
  MIGRATED_TABLES,
  type QueryFn,
  totalRows,
} from '../../app/tier/migrate-tier.ts';
import { type Config, ConfigError, loadConfig } from '../../config/config.ts';
import { configFlags, withConfigOptions } from './doctor.ts';

interface MigrateOptions {
  to: 'standalone' | 'federated';
  targetUrl: string;
  dryRun?: boolean;
  yes?: boolean;
  allowNonEmpty?: boolean;
  json?: boolean;
  [flag: string]: unknown;
}

/** An error whose message is the whole story (printed as is, exit code attached). */
class Refusal extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

interface Endpoint {
  query: QueryFn;
  close(): Promise<void>;
}

interface SourceSpec {
  kind: 'pglite' | 'postgres';
  /** For messages: a path or a URL without user info. */
  where: string;
  open(migrate: boolean): Promise<Endpoint>;
}

const log = (msg: string): void => {
  process.stderr.write(`${msg}\n`);
};

const pgEndpoint = async (url: string, what: string): Promise<Endpoint> => {
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: 5_000,
    application_name: 'flotilla-migrate-tier',
  });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (e) {
    const { host, port, database } = describePostgresUrl(url);
    throw new Refusal(
      redact(
        `cannot connect to the ${what} PostgreSQL at ${host}:${port} (database ${database}): ${(e as Error).message}`,
        urlSecrets(url),
      ),
    );
  }
  return {
    query: (sql, params) => client.query(sql, params as unknown[]),
    close: () => client.end().catch(() => {}),
  };
};

const sourceOf = (config: Config): SourceSpec => {
  if (config.databaseUrl) {
    const url = config.databaseUrl;
    return {
      kind: 'postgres',
      where: safeUrl(url),
      async open(migrate) {
        if (migrate) await (await PostgresStore.open(url)).close();
        return pgEndpoint(url, 'source');
      },
    };
  }
  const dir = join(config.dataDir, 'db');
  return {
    kind: 'pglite',
    where: dir,
    async open(migrate) {
      if (!existsSync(join(dir, 'PG_VERSION'))) {
        throw new Refusal(
          `no PGlite database in ${dir}: nothing to migrate (is --data-dir / FLOTILLA_DATA_DIR right? ` +
            'to copy from PostgreSQL instead, set DATABASE_URL to the source)',
        );
      }
      if (existsSync(join(dir, 'postmaster.pid'))) {
        throw new Refusal(
          `the PGlite database in ${dir} is in use, or was not closed cleanly (${join(dir, 'postmaster.pid')} exists): ` +
            'stop the manager that uses this data dir first. If none runs (it crashed), start and stop it once ' +
            '(flotilla up, then Ctrl-C) so the database is closed cleanly, and run migrate-tier again',
        );
      }
      // The adapter brings the schema up to date; the copy then reads through a raw client.
      if (migrate) await (await PgliteStore.open(dir)).close();
      const db = new PGlite(dir);
      await db.waitReady;
      return {
        query: (sql, params) => db.query(sql, params) as Promise<{ rows: Record<string, any>[] }>,
        close: async () => {
          if (!db.closed) await db.close();
        },
      };
    },
  };
};

const sameDatabase = (a: string, b: string): boolean => {
  const x = describePostgresUrl(a);
  const y = describePostgresUrl(b);
  const local = (h: string) => (['localhost', '127.0.0.1', '::1'].includes(h) ? 'loopback' : h.toLowerCase());
  return local(x.host) === local(y.host) && x.port === y.port && x.database === y.database;
};

const table = (headers: string[], rows: string[][]): string => {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [headers, ...rows]
    .map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '))
    .join('\n');
};

const fmtCount = (n: number | null): string => (n === null ? 'no table' : String(n));
const rows = (n: number): string => `${n} row${n === 1 ? '' : 's'}`;

const confirm = async (question: string): Promise<boolean> => {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`${question} [y/N] `);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
};

const migrate = async (opts: MigrateOptions): Promise<void> => {
  let config: Config;
  try {
    config = loadConfig(configFlags(opts));
  } catch (e) {
    if (e instanceof ConfigError) throw new Refusal(e.message, 2);
    throw e;
  }
  const targetUrl = opts.targetUrl;
  let target: ReturnType<typeof describePostgresUrl>;
  try {
    const u = new URL(targetUrl);
    if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new Error('protocol');
    target = describePostgresUrl(targetUrl);
  } catch {
    throw new Refusal(
      '--target-url must be a PostgreSQL URL (postgres://USER:PASSWORD@HOST:PORT/DATABASE)',
      2,
    );
  }
  const targetWhere = `${target.host}:${target.port}/${target.database}`;
  const source = sourceOf(config);
  if (source.kind === 'postgres' && sameDatabase(config.databaseUrl!, targetUrl)) {
    throw new Refusal(
      `the source (DATABASE_URL) and --target-url are the same database (${targetWhere}): nothing to copy. ` +
        'To copy from the PGlite data dir, run without DATABASE_URL / --database-url',
      2,
    );
  }
  const dryRun = opts.dryRun === true;
  const interactive = process.stdin.isTTY === true;
  if (!dryRun && !opts.yes && !interactive) {
    throw new Refusal(
      'refusing to migrate without --yes: stdin is not a terminal, so there is no one to confirm. ' +
        'Pass --yes to copy, or --dry-run to only count the rows',
    );
  }

  // The target first: a clear diagnosis (host, port, remedy) before touching anything.
  const probe = await probePostgres(targetUrl);
  if (probe.level === 'red') {
    throw new Refusal(
      `the target is not usable: ${probe.message}${probe.remedy ? `\nremedy: ${probe.remedy}` : ''}`,
    );
  }
  if (opts.to === 'federated') {
    if (!config.valkeyUrl) {
      log(
        'note: the federated tier also needs Valkey/Redis: set VALKEY_URL before starting on the new store',
      );
    } else {
      const v = await probeValkey(config.valkeyUrl);
      if (v.level === 'red') log(`warning: ${v.message} (remedy: ${v.remedy}); the copy goes ahead`);
    }
  }

  const closers: Array<() => Promise<void>> = [];
  // Ctrl-C mid-copy: the target transaction dies with its connection (nothing committed);
  // close the source cleanly so a PGlite data dir is not left looking "in use".
  const interrupt = (signal: NodeJS.Signals) => {
    log(`\n${signal}: stopping; nothing is committed to the target`);
    void Promise.allSettled(closers.map((close) => close())).then(() => process.exit(130));
  };
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  try {
    const dst = await pgEndpoint(targetUrl, 'target');
    closers.unshift(() => dst.close());

    // The lock and the emptiness check come before the source is even opened, so a second
    // run, or a wrong target, fails at once.
    let lock: AdvisoryLock | undefined;
    if (!dryRun) {
      lock = await tryAdvisoryLock(targetUrl, MIGRATE_TIER_LOCK_KEY, {
        applicationName: 'flotilla-migrate-tier',
      });
      if (!lock) {
        const holder = await findAdvisoryLockHolder({ query: dst.query }, MIGRATE_TIER_LOCK_KEY).catch(
          () => undefined,
        );
        throw new Refusal(
          `another migrate-tier run is copying into ${targetWhere}` +
            (holder
              ? ` (PostgreSQL session pid ${holder.pid}${holder.clientAddr ? ` from ${holder.clientAddr}` : ''}` +
                `${holder.backendStart ? `, since ${new Date(holder.backendStart).toISOString()}` : ''})`
              : '') +
            ': wait for it to finish; two runs must not write into one database at once',
        );
      }
      const held = lock;
      closers.unshift(() => held.release());
      // Under the lock: nobody else is copying now, so these counts hold.
      const present = await countRows(dst.query);
      if (totalRows(present) > 0 && !opts.allowNonEmpty) {
        throw new Refusal(
          `the target ${targetWhere} is not empty (${MIGRATED_TABLES.filter((t) => (present[t.name] ?? 0) > 0)
            .map((t) => `${t.name}: ${present[t.name]}`)
            .join(', ')}): refusing to mix two managers' state. If these rows come from an earlier run ` +
            'of migrate-tier from this same source, run again with --allow-non-empty (rows are upserted by ' +
            'primary key, so a re-run is safe); otherwise point --target-url at an empty database',
        );
      }
    }

    const src = await source.open(!dryRun);
    closers.unshift(() => src.close());
    const sourceCounts = await countRows(src.query);
    const missing = Object.entries(sourceCounts).filter(([, n]) => n === null);
    if (missing.length) {
      throw new Refusal(
        `the source ${source.where} has no table ${missing.map(([t]) => t).join(', ')}: ` +
          'run once without --dry-run (it brings the source schema up to date) or start the manager on it once',
      );
    }
    const before = await countRows(dst.query);
    const existing = totalRows(before);
    const plan = () =>
      table(
        ['TABLE', 'SOURCE ROWS', 'TARGET ROWS'],
        MIGRATED_TABLES.map((t) => [t.name, fmtCount(sourceCounts[t.name]), fmtCount(before[t.name])]),
      );
    log(`source: ${source.kind === 'pglite' ? `PGlite in ${source.where}` : `PostgreSQL ${source.where}`}`);
    log(`target: PostgreSQL ${safeUrl(targetUrl)} (tier ${opts.to})`);

    if (dryRun || !lock) {
      if (opts.json) {
        process.stdout.write(
          `${JSON.stringify({
            dry_run: true,
            tables: MIGRATED_TABLES.map((t) => ({
              name: t.name,
              source_rows: sourceCounts[t.name],
              target_rows: before[t.name],
            })),
          })}\n`,
        );
      } else {
        process.stdout.write(`${plan()}\n`);
        process.stdout.write(
          `dry run: would copy ${rows(totalRows(sourceCounts))} in ${MIGRATED_TABLES.length} tables; nothing was changed.\n` +
            (existing > 0
              ? `the target already holds ${rows(existing)}: a real run needs --allow-non-empty (rows are upserted by primary key).\n`
              : 'the target is empty.\n'),
        );
      }
      return;
    }
    const held = lock;

    if (!opts.yes) {
      process.stderr.write(`${plan()}\n`);
      const ok = await confirm(
        `copy ${rows(totalRows(sourceCounts))} into ${targetWhere}${existing ? ` (which holds ${rows(existing)})` : ''}?`,
      );
      if (!ok) throw new Refusal('not confirmed: nothing was changed');
    }

    // The adapter creates or updates the schema on the target (its own migration lock).
    await (await PostgresStore.open(targetUrl)).close();

    const started = Date.now();
    const tableStarted = new Map<string, number>();
    let lastProgress = 0;
    const result = await copyAll({
      source: src.query,
      target: dst.query,
      onProgress: (p) => {
        if (!tableStarted.has(p.table)) tableStarted.set(p.table, Date.now());
        if (p.done) {
          log(`  ${p.table}: ${rows(p.copied)} copied (${Date.now() - tableStarted.get(p.table)!} ms)`);
        } else if (p.copied > 0 && Date.now() - lastProgress >= 1_000) {
          // Big tables: a line a second at most.
          lastProgress = Date.now();
          log(`  ${p.table}: ${p.copied}/${p.total} rows`);
        }
      },
      beforeCommit: () => {
        if (held.isLost) {
          throw new Refusal(
            `lost the advisory lock on ${targetWhere} during the copy (its session was cut): ` +
              'nothing was committed; run again',
          );
        }
      },
    });
    const after = await countRows(dst.query);
    const short = MIGRATED_TABLES.filter((t) => (after[t.name] ?? 0) < (result.copied[t.name] ?? 0));
    if (short.length) {
      throw new Refusal(
        `after the copy the target has fewer rows than the source in ${short.map((t) => t.name).join(', ')}: ` +
          'check the target and run again',
      );
    }
    const summary = table(
      ['TABLE', 'SOURCE ROWS', 'COPIED', 'TARGET ROWS'],
      MIGRATED_TABLES.map((t) => [
        t.name,
        fmtCount(sourceCounts[t.name]),
        String(result.copied[t.name] ?? 0),
        fmtCount(after[t.name]),
      ]),
    );
    if (opts.json) {
      process.stdout.write(
        `${JSON.stringify({
          dry_run: false,
          tables: MIGRATED_TABLES.map((t) => ({
            name: t.name,
            source_rows: sourceCounts[t.name],
            copied: result.copied[t.name] ?? 0,
            target_rows: after[t.name],
          })),
        })}\n`,
      );
    } else {
      process.stdout.write(`${summary}\n`);
      process.stdout.write(
        `copied ${rows(totalRows(result.copied))} into ${targetWhere} in ${((Date.now() - started) / 1000).toFixed(1)} s.\n`,
      );
    }
    const next = [
      `next: start the manager on the new store: DATABASE_URL=<target URL>${
        opts.to === 'federated' ? ' VALKEY_URL=<redis://…>' : ''
      } flotilla up --tier ${opts.to}`,
      '      keep the same FLOTILLA_SECRET_KEY (--secret-key): settings were copied as they are, sealed values included',
    ];
    if (!config.s3) {
      next.push(
        `note: objects of the embedded S3 store live in ${config.dataDir}, not in the database: keep the same ` +
          '--data-dir to keep them, or copy the buckets to your S3/MinIO with an S3 tool before setting FLOTILLA_S3_ENDPOINT',
      );
    }
    log(next.join('\n'));
  } finally {
    process.removeListener('SIGINT', interrupt);
    process.removeListener('SIGTERM', interrupt);
    for (const close of closers) await close().catch(() => {});
  }
};

/** Adds `migrate-tier` under the given command (the `storage` command). */
export const registerMigrateTier = (storage: Command): void => {
  const cmd = withConfigOptions(
    storage
      .command('migrate-tier')
      .description(
        'copy all state one way from the configured store (PGlite in --data-dir, or DATABASE_URL) ' +
          'into the PostgreSQL at --target-url',
      ),
  )
    .addOption(
      new Option('--to <tier>', 'tier the target serves')
        .choices(['standalone', 'federated'])
        .makeOptionMandatory(),
    )
    .addOption(
      new Option(
        '--target-url <url>',
        'PostgreSQL URL of the target (env FLOTILLA_TARGET_URL keeps the password out of the process list)',
      )
        .env('FLOTILLA_TARGET_URL')
        .makeOptionMandatory(),
    )
    .option('--dry-run', 'count rows per table on both sides and change nothing')
    .option('--yes', 'do not ask for confirmation (required when stdin is not a terminal)')
    .option('--allow-non-empty', 'copy into a target that already has rows (upsert by primary key)')
    .option('--json', 'also print the per-table counts as JSON');
  cmd.action(async (opts: MigrateOptions) => {
    try {
      await migrate(opts);
    } catch (e) {
      const secrets = [
        opts.targetUrl,
        process.env.DATABASE_URL,
        opts.databaseUrl as string | undefined,
      ].flatMap((u) => urlSecrets(u));
      const cause = (e as { cause?: { message?: string } })?.cause?.message;
      const text = e instanceof Error ? e.message.replace(/\nparams:.*$/s, '') : String(e);
      const message = redact(cause && !text.includes(cause) ? `${text}: ${cause}` : text, secrets);
      process.stderr.write(`flotilla storage migrate-tier: ${message}\n`);
      process.exitCode = e instanceof Refusal ? e.exitCode : 1;
    }
  });
};
