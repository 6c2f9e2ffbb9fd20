// The refusals of migrate-tier that the end-to-end test cannot provoke with real databases
// (a lock lost mid-copy, a target that loses rows) and the order of its checks, over a
// StateCopier made of plain objects. The copier itself is test/contract/state-copier.
import { describe, expect, it } from 'vitest';
import {
  type MigrateTierRequest,
  type MigrateTierUi,
  MigrationRefused,
  migrateTier,
} from '../../src/app/tier/migrate-tier.ts';
import type { CopySource, CopyTarget, RowCounts, StateCopier } from '../../src/core/ports.ts';
import type { Probe } from '../../src/core/tier.ts';

const TABLES = ['services', 'jobs'];
const TARGET = 'postgres://u:pw@127.0.0.1:5432/target';

const green: Probe = {
  service: 'postgres',
  host: '127.0.0.1',
  port: 5432,
  ok: true,
  latency_ms: 1,
  level: 'green',
  message: 'ok',
};

/** A copier over counts in memory; `calls` records what was opened and done, in order. */
const fakeCopier = (o: { lockLost?: boolean; targetAfter?: RowCounts } = {}) => {
  const calls: string[] = [];
  let targetRows: RowCounts = { services: 0, jobs: 0 };
  const target: CopyTarget = {
    countRows: async () => targetRows,
    lock: async () => {
      calls.push('lock');
      return { lock: { isLost: o.lockLost === true, release: async () => void calls.push('release') } };
    },
    migrateSchema: async () => void calls.push('migrate target'),
    close: async () => void calls.push('close target'),
  };
  const source: CopySource = {
    countRows: async () => ({ services: 2, jobs: 5 }),
    copyInto: async (_t, opts) => {
      calls.push('copy');
      await opts.beforeCommit?.();
      targetRows = o.targetAfter ?? { services: 2, jobs: 5 };
      return { services: 2, jobs: 5 };
    },
    close: async () => void calls.push('close source'),
  };
  const copier: StateCopier = {
    tables: TABLES,
    source: { kind: 'pglite', where: '/data/db' },
    openSource: async () => {
      calls.push('open source');
      return { source };
    },
    openTarget: async () => {
      calls.push('open target');
      return { target };
    },
  };
  return { copier, calls };
};

const request = (over: Partial<MigrateTierRequest> = {}): MigrateTierRequest => ({
  to: 'standalone',
  targetUrl: TARGET,
  sourceUrl: undefined,
  valkeyUrl: undefined,
  s3Configured: false,
  dataDir: '/data',
  dryRun: false,
  yes: true,
  allowNonEmpty: false,
  interactive: false,
  ...over,
});

const ui = (): MigrateTierUi & { notes: string[] } => {
  const notes: string[] = [];
  return {
    notes,
    note: (l) => notes.push(l),
    confirm: async () => true,
    progress: () => {},
    aborted: () => {},
  };
};

const detector = { probePostgres: async () => green, probeValkey: async () => green };

const refusal = async (p: Promise<unknown>): Promise<MigrationRefused> => {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(MigrationRefused);
  return err as MigrationRefused;
};

describe('migrate-tier rules', () => {
  it('copies with the lock held, then closes everything, and says what to do next', async () => {
    const { copier, calls } = fakeCopier();
    const out = await migrateTier({ copier, detector }, request(), ui());
    expect(out).toMatchObject({ dryRun: false, copiedTotal: 7, targetWhere: '127.0.0.1:5432/target' });
    expect(calls).toEqual([
      'open target',
      'lock',
      'open source',
      'migrate target',
      'copy',
      'close source',
      'release',
      'close target',
    ]);
    if (!out.dryRun) expect(out.nextSteps.join('\n')).toMatch(/embedded S3 store live in \/data/);
  });

  it('refuses to commit when the lock was lost during the copy', async () => {
    const { copier, calls } = fakeCopier({ lockLost: true });
    const err = await refusal(migrateTier({ copier, detector }, request(), ui()));
    expect(err.message).toMatch(
      /lost the advisory lock on 127\.0\.0\.1:5432\/target .*nothing was committed/,
    );
    expect(calls.slice(-3)).toEqual(['close source', 'release', 'close target']);
  });

  it('refuses a copy after which the target holds fewer rows than were read', async () => {
    const { copier } = fakeCopier({ targetAfter: { services: 2, jobs: 4 } });
    const err = await refusal(migrateTier({ copier, detector }, request(), ui()));
    expect(err.message).toMatch(/fewer rows than the source in jobs/);
  });

  it('opens nothing when there is no one to confirm, or the target is the source', async () => {
    const { copier, calls } = fakeCopier();
    const noYes = await refusal(migrateTier({ copier, detector }, request({ yes: false }), ui()));
    expect(noYes.exitCode).toBe(1);
    const postgres = {
      ...copier,
      source: { kind: 'postgres' as const, where: 'postgres://localhost/target' },
    };
    const same = await refusal(
      migrateTier(
        { copier: postgres, detector },
        request({ sourceUrl: 'postgres://localhost:5432/target' }),
        ui(),
      ),
    );
    expect(same.exitCode).toBe(2);
    expect(same.message).toMatch(/same database/);
    expect(calls).toEqual([]);
  });

  it('a dry run takes no lock and migrates nothing', async () => {
    const { copier, calls } = fakeCopier();
    const out = await migrateTier({ copier, detector }, request({ dryRun: true, yes: false }), ui());
    expect(out).toMatchObject({ dryRun: true, sourceTotal: 7, targetTotal: 0 });
    expect(calls).toEqual(['open target', 'open source', 'close source', 'close target']);
  });
});
