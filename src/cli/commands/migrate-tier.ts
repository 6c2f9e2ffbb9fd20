// `flotilla storage migrate-tier --to standalone|federated --target-url URL`: copies all
// state one way, from the configured store (PGlite in --data-dir, or DATABASE_URL) into the
// PostgreSQL at --target-url. See docs/doctor.md. The flags and the output are here; the
// steps and refusals are src/app/tier/migrate-tier.ts.
//
//   --dry-run          counts rows per table on both sides; changes nothing
//   --allow-non-empty  copies into a target that already has rows (upsert by primary key)
//   --yes              no confirmation prompt (required when stdin is not a terminal)
//
// Safety: an advisory lock on the target stops a concurrent run; the target is written in
// one transaction (a failure leaves it as it was); the source is read in one snapshot.
import { createInterface } from 'node:readline/promises';
import { type Command, Option } from 'commander';
import {
  type MigrateTierOutcome,
  type MigrateTierUi,
  MigrationRefused,
  rows,
  type TableRows,
} from '../../app/tier/migrate-tier.ts';
import { type Config, ConfigError, loadConfig } from '../../config/config.ts';
import { redact, urlSecrets } from '../../core/redaction.ts';
import { openTierTools } from '../../main/tier-tools.ts';
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

const log = (msg: string): void => {
  process.stderr.write(`${msg}\n`);
};

const table = (headers: string[], cells: string[][]): string => {
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i].length)));
  return [headers, ...cells]
    .map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '))
    .join('\n');
};

const fmtCount = (n: number | null): string => (n === null ? 'no table' : String(n));

const planTable = (plan: TableRows[]): string =>
  table(
    ['TABLE', 'SOURCE ROWS', 'TARGET ROWS'],
    plan.map((t) => [t.name, fmtCount(t.sourceRows), fmtCount(t.targetRows)]),
  );

const confirm = async (question: string): Promise<boolean> => {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`${question} [y/N] `);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
};

/** Per-table lines on stderr as the copy goes: one when a table is done, at most one a second before. */
const progressLines = (): MigrateTierUi['progress'] => {
  const tableStarted = new Map<string, number>();
  let lastProgress = 0;
  return (p) => {
    if (!tableStarted.has(p.table)) tableStarted.set(p.table, Date.now());
    if (p.done) {
      log(`  ${p.table}: ${rows(p.copied)} copied (${Date.now() - tableStarted.get(p.table)!} ms)`);
    } else if (p.copied > 0 && Date.now() - lastProgress >= 1_000) {
      lastProgress = Date.now();
      log(`  ${p.table}: ${p.copied}/${p.total} rows`);
    }
  };
};

const printOutcome = (outcome: MigrateTierOutcome, json: boolean): void => {
  if (outcome.dryRun) {
    if (json) {
      process.stdout.write(
        `${JSON.stringify({
          dry_run: true,
          tables: outcome.tables.map((t) => ({
            name: t.name,
            source_rows: t.sourceRows,
            target_rows: t.targetRows,
          })),
        })}\n`,
      );
      return;
    }
    process.stdout.write(`${planTable(outcome.tables)}\n`);
    process.stdout.write(
      `dry run: would copy ${rows(outcome.sourceTotal)} in ${outcome.tables.length} tables; nothing was changed.\n` +
        (outcome.targetTotal > 0
          ? `the target already holds ${rows(outcome.targetTotal)}: a real run needs --allow-non-empty (rows are upserted by primary key).\n`
          : 'the target is empty.\n'),
    );
    return;
  }
  if (json) {
    process.stdout.write(
      `${JSON.stringify({
        dry_run: false,
        tables: outcome.tables.map((t) => ({
          name: t.name,
          source_rows: t.sourceRows,
          copied: t.copied,
          target_rows: t.targetRows,
        })),
      })}\n`,
    );
  } else {
    const summary = table(
      ['TABLE', 'SOURCE ROWS', 'COPIED', 'TARGET ROWS'],
      outcome.tables.map((t) => [t.name, fmtCount(t.sourceRows), String(t.copied), fmtCount(t.targetRows)]),
    );
    process.stdout.write(`${summary}\n`);
    process.stdout.write(
      `copied ${rows(outcome.copiedTotal)} into ${outcome.targetWhere} in ${outcome.seconds.toFixed(1)} s.\n`,
    );
  }
  log(outcome.nextSteps.join('\n'));
};

const migrate = async (opts: MigrateOptions): Promise<void> => {
  let config: Config;
  try {
    config = loadConfig(configFlags(opts));
  } catch (e) {
    if (e instanceof ConfigError) throw new MigrationRefused(e.message, 2);
    throw e;
  }
  // Ctrl-C mid-copy: the target transaction dies with its connection (nothing committed);
  // the source is closed cleanly so a PGlite data dir is not left looking "in use".
  const interrupted = new AbortController();
  const interrupt = (signal: NodeJS.Signals) => {
    log(`\n${signal}: stopping; nothing is committed to the target`);
    interrupted.abort();
  };
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  try {
    const outcome = await openTierTools(config).migrateTier(
      {
        to: opts.to,
        targetUrl: opts.targetUrl,
        dryRun: opts.dryRun === true,
        yes: opts.yes === true,
        allowNonEmpty: opts.allowNonEmpty === true,
        interactive: process.stdin.isTTY === true,
        signal: interrupted.signal,
      },
      {
        note: log,
        confirm: async (plan, question) => {
          process.stderr.write(`${planTable(plan)}\n`);
          return confirm(question);
        },
        progress: progressLines(),
        aborted: () => process.exit(130),
      },
    );
    printOutcome(outcome, opts.json === true);
  } finally {
    process.removeListener('SIGINT', interrupt);
    process.removeListener('SIGTERM', interrupt);
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
      process.exitCode = e instanceof MigrationRefused ? e.exitCode : 1;
    }
  });
};
