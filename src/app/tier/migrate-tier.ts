// `flotilla storage migrate-tier`: copies all state one way, from the configured store into
// a PostgreSQL for the standalone or federated tier. The copying is the StateCopier port;
// here are the decisions: what is refused and why (a bad or identical target, no one to
// confirm, an unusable target, a concurrent run, a non-empty target, a missing source),
// the order of the steps (nothing is opened before the checks that can fail fast), and
// the plan shown before and the counts checked after.
import { describePostgresUrl } from '../../core/connection-urls.ts';
import type { CopyLock, RowCounts, StateCopier, TableCopyProgress } from '../../core/ports.ts';
import { redact, safeUrl, urlSecrets } from '../../core/redaction.ts';
import type { TierDetector } from './detector.ts';

/** A refusal whose message is the whole story (printed as is, with its exit code). */
export class MigrationRefused extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'MigrationRefused';
  }
}

export interface MigrateTierRequest {
  to: 'standalone' | 'federated';
  targetUrl: string;
  /** DATABASE_URL when the source is a PostgreSQL. */
  sourceUrl: string | undefined;
  valkeyUrl: string | undefined;
  /** An external S3 is configured (else the embedded store's objects stay in the data dir). */
  s3Configured: boolean;
  dataDir: string;
  dryRun: boolean;
  yes: boolean;
  allowNonEmpty: boolean;
  /** stdin is a terminal: someone can answer a confirmation. */
  interactive: boolean;
  /** On abort every database opened is closed (the target transaction dies uncommitted). */
  signal?: AbortSignal;
}

export interface TableRows {
  name: string;
  sourceRows: number | null;
  targetRows: number | null;
}

export interface MigrateTierUi {
  /** A line for the operator (not the result). */
  note(line: string): void;
  /** Shows the plan and asks; false stops the run before anything is written. */
  confirm(plan: TableRows[], question: string): Promise<boolean>;
  progress(p: TableCopyProgress): void;
  /** The databases are closed after an abort. */
  aborted(): void;
}

export type MigrateTierOutcome =
  | { dryRun: true; tables: TableRows[]; sourceTotal: number; targetTotal: number }
  | {
      dryRun: false;
      tables: Array<TableRows & { copied: number }>;
      copiedTotal: number;
      /** host:port/database of the target. */
      targetWhere: string;
      seconds: number;
      /** What to do next, one line each. */
      nextSteps: string[];
    };

export interface MigrateTierDeps {
  copier: StateCopier;
  detector: Pick<TierDetector, 'probePostgres' | 'probeValkey'>;
  now?: () => number;
}

export const totalRows = (counts: RowCounts | Record<string, number>): number =>
  Object.values(counts).reduce<number>((a, n) => a + (n ?? 0), 0);

export const rows = (n: number): string => `${n} row${n === 1 ? '' : 's'}`;

const isLoopback = (h: string) =>
  ['localhost', '127.0.0.1', '::1'].includes(h) ? 'loopback' : h.toLowerCase();

/** Same server (loopback names count as one), port and database. */
export const sameDatabase = (a: string, b: string): boolean => {
  const x = describePostgresUrl(a);
  const y = describePostgresUrl(b);
  return isLoopback(x.host) === isLoopback(y.host) && x.port === y.port && x.database === y.database;
};

const cannotConnect = (what: 'source' | 'target', url: string, error: string): MigrationRefused => {
  const { host, port, database } = describePostgresUrl(url);
  return new MigrationRefused(
    redact(
      `cannot connect to the ${what} PostgreSQL at ${host}:${port} (database ${database}): ${error}`,
      urlSecrets(url),
    ),
  );
};

export const migrateTier = async (
  deps: MigrateTierDeps,
  req: MigrateTierRequest,
  ui: MigrateTierUi,
): Promise<MigrateTierOutcome> => {
  const { copier, detector } = deps;
  const now = deps.now ?? Date.now;
  const { targetUrl } = req;
  let target: ReturnType<typeof describePostgresUrl>;
  try {
    const u = new URL(targetUrl);
    if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new Error('protocol');
    target = describePostgresUrl(targetUrl);
  } catch {
    throw new MigrationRefused(
      '--target-url must be a PostgreSQL URL (postgres://USER:PASSWORD@HOST:PORT/DATABASE)',
      2,
    );
  }
  const targetWhere = `${target.host}:${target.port}/${target.database}`;
  const source = copier.source;
  if (source.kind === 'postgres' && req.sourceUrl && sameDatabase(req.sourceUrl, targetUrl)) {
    throw new MigrationRefused(
      `the source (DATABASE_URL) and --target-url are the same database (${targetWhere}): nothing to copy. ` +
        'To copy from the PGlite data dir, run without DATABASE_URL / --database-url',
      2,
    );
  }
  const { dryRun } = req;
  if (!dryRun && !req.yes && !req.interactive) {
    throw new MigrationRefused(
      'refusing to migrate without --yes: stdin is not a terminal, so there is no one to confirm. ' +
        'Pass --yes to copy, or --dry-run to only count the rows',
    );
  }

  // The target first: a clear diagnosis (host, port, remedy) before touching anything.
  const probe = await detector.probePostgres(targetUrl);
  if (probe.level === 'red') {
    throw new MigrationRefused(
      `the target is not usable: ${probe.message}${probe.remedy ? `\nremedy: ${probe.remedy}` : ''}`,
    );
  }
  if (req.to === 'federated') {
    if (!req.valkeyUrl) {
      ui.note(
        'note: the federated tier also needs Valkey/Redis: set VALKEY_URL before starting on the new store',
      );
    } else {
      const v = await detector.probeValkey(req.valkeyUrl);
      if (v.level === 'red') ui.note(`warning: ${v.message} (remedy: ${v.remedy}); the copy goes ahead`);
    }
  }

  const closers: Array<() => Promise<void>> = [];
  const closeAll = async () => {
    for (const close of closers) await close().catch(() => {});
  };
  const onAbort = () => {
    void Promise.allSettled(closers.map((close) => close())).then(() => ui.aborted());
  };
  if (req.signal?.aborted) {
    throw new MigrationRefused('interrupted before anything was opened: nothing was changed', 130);
  }
  req.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const openedTarget = await copier.openTarget(targetUrl);
    if (!('target' in openedTarget)) {
      throw cannotConnect(
        'target',
        targetUrl,
        'error' in openedTarget ? openedTarget.error : openedTarget.reason,
      );
    }
    const dst = openedTarget.target;
    closers.unshift(() => dst.close());

    // The lock and the emptiness check come before the source is even opened, so a second
    // run, or a wrong target, fails at once.
    let lock: CopyLock | undefined;
    if (!dryRun) {
      const taken = await dst.lock();
      if (!('lock' in taken)) {
        const holder = taken.heldBy;
        throw new MigrationRefused(
          `another migrate-tier run is copying into ${targetWhere}` +
            (holder
              ? ` (PostgreSQL session pid ${holder.pid}${holder.clientAddr ? ` from ${holder.clientAddr}` : ''}` +
                `${holder.backendStart ? `, since ${new Date(holder.backendStart).toISOString()}` : ''})`
              : '') +
            ': wait for it to finish; two runs must not write into one database at once',
        );
      }
      const held = taken.lock;
      lock = held;
      closers.unshift(() => held.release());
      // Under the lock: nobody else is copying now, so these counts hold.
      const present = await dst.countRows();
      if (totalRows(present) > 0 && !req.allowNonEmpty) {
        throw new MigrationRefused(
          `the target ${targetWhere} is not empty (${copier.tables
            .filter((t) => (present[t] ?? 0) > 0)
            .map((t) => `${t}: ${present[t]}`)
            .join(', ')}): refusing to mix two managers' state. If these rows come from an earlier run ` +
            'of migrate-tier from this same source, run again with --allow-non-empty (rows are upserted by ' +
            'primary key, so a re-run is safe); otherwise point --target-url at an empty database',
        );
      }
    }

    const openedSource = await copier.openSource({ migrateSchema: !dryRun });
    if (!('source' in openedSource)) {
      if (openedSource.reason === 'absent') {
        throw new MigrationRefused(
          `no PGlite database in ${source.where}: nothing to migrate (is --data-dir / FLOTILLA_DATA_DIR right? ` +
            'to copy from PostgreSQL instead, set DATABASE_URL to the source)',
        );
      }
      if (openedSource.reason === 'in-use') {
        throw new MigrationRefused(
          `the PGlite database in ${source.where} is in use, or was not closed cleanly (${openedSource.evidence} exists): ` +
            'stop the manager that uses this data dir first. If none runs (it crashed), start and stop it once ' +
            '(flotilla up, then Ctrl-C) so the database is closed cleanly, and run migrate-tier again',
        );
      }
      throw cannotConnect('source', req.sourceUrl ?? source.where, openedSource.error);
    }
    const src = openedSource.source;
    closers.unshift(() => src.close());
    const sourceCounts = await src.countRows();
    const missing = Object.entries(sourceCounts).filter(([, n]) => n === null);
    if (missing.length) {
      throw new MigrationRefused(
        `the source ${source.where} has no table ${missing.map(([t]) => t).join(', ')}: ` +
          'run once without --dry-run (it brings the source schema up to date) or start the manager on it once',
      );
    }
    const before = await dst.countRows();
    const plan: TableRows[] = copier.tables.map((name) => ({
      name,
      sourceRows: sourceCounts[name],
      targetRows: before[name],
    }));
    ui.note(
      `source: ${source.kind === 'pglite' ? `PGlite in ${source.where}` : `PostgreSQL ${source.where}`}`,
    );
    ui.note(`target: PostgreSQL ${safeUrl(targetUrl)} (tier ${req.to})`);

    if (dryRun || !lock) {
      return {
        dryRun: true,
        tables: plan,
        sourceTotal: totalRows(sourceCounts),
        targetTotal: totalRows(before),
      };
    }
    const held = lock;

    const existing = totalRows(before);
    if (!req.yes) {
      const ok = await ui.confirm(
        plan,
        `copy ${rows(totalRows(sourceCounts))} into ${targetWhere}${existing ? ` (which holds ${rows(existing)})` : ''}?`,
      );
      if (!ok) throw new MigrationRefused('not confirmed: nothing was changed');
    }

    // The adapter creates or updates the schema on the target (its own migration lock).
    await dst.migrateSchema();

    const started = now();
    const copied = await src.copyInto(dst, {
      onProgress: (p) => ui.progress(p),
      beforeCommit: () => {
        if (held.isLost) {
          throw new MigrationRefused(
            `lost the advisory lock on ${targetWhere} during the copy (its session was cut): ` +
              'nothing was committed; run again',
          );
        }
      },
    });
    const after = await dst.countRows();
    const seconds = (now() - started) / 1000;
    const short = copier.tables.filter((t) => (after[t] ?? 0) < (copied[t] ?? 0));
    if (short.length) {
      throw new MigrationRefused(
        `after the copy the target has fewer rows than the source in ${short.join(', ')}: ` +
          'check the target and run again',
      );
    }
    const nextSteps = [
      `next: start the manager on the new store: DATABASE_URL=<target URL>${
        req.to === 'federated' ? ' VALKEY_URL=<redis://…>' : ''
      } flotilla up --tier ${req.to}`,
      '      keep the same FLOTILLA_SECRET_KEY (--secret-key): settings were copied as they are, sealed values included',
    ];
    if (!req.s3Configured) {
      nextSteps.push(
        `note: objects of the embedded S3 store live in ${req.dataDir}, not in the database: keep the same ` +
          '--data-dir to keep them, or copy the buckets to your S3/MinIO with an S3 tool before setting FLOTILLA_S3_ENDPOINT',
      );
    }
    return {
      dryRun: false,
      tables: copier.tables.map((name) => ({
        name,
        sourceRows: sourceCounts[name],
        copied: copied[name] ?? 0,
        targetRows: after[name],
      })),
      copiedTotal: totalRows(copied),
      targetWhere,
      seconds,
      nextSteps,
    };
  } finally {
    req.signal?.removeEventListener('abort', onAbort);
    await closeAll();
  }
};
