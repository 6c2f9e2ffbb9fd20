// A new PGlite database is made by initdb in a short-lived process, beside the data dir and
// renamed into place: a manager killed during initdb leaves no initdb process running and
// no half-made database, and the next start creates it.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PgliteStore } from '../../src/adapters/store-pglite/pglite-store.ts';
import { REPO_ROOT } from '../support/cluster-harness.ts';

const root = mkdtempSync(join(tmpdir(), 'flotilla-initdb-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Pids of processes whose command line names pglite-initdb.mjs and `dir`'s parent. */
const initdbPids = (under: string): number[] =>
  readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
        return cmd.includes('pglite-initdb.mjs') && cmd.includes(under);
      } catch {
        return false;
      }
    })
    .map(Number);

describe('PgliteStore.open on a new data dir', () => {
  it('creates the database and leaves nothing beside it', async () => {
    const dir = join(root, 'plain', 'db');
    const store = await PgliteStore.open(dir);
    await store.close();
    expect(existsSync(join(dir, 'PG_VERSION'))).toBe(true);
    expect(readdirSync(join(root, 'plain'))).toEqual(['db']);
  }, 120_000);

  it('killed during initdb: the initdb process ends, no database is left, the next open makes it', async () => {
    const parent = join(root, 'killed');
    const dir = join(parent, 'db');
    const child = spawn(
      process.execPath,
      [join(REPO_ROOT, 'bin/run-ts.mjs'), join(REPO_ROOT, 'test/support/pglite-open-child.ts'), dir],
      { stdio: 'ignore' },
    );
    // Wait for its initdb process, then kill the opener without a chance to clean up.
    const deadline = Date.now() + 120_000;
    while (initdbPids(parent).length === 0) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error('no initdb process seen');
      await sleep(20);
    }
    child.kill('SIGKILL');
    while (initdbPids(parent).length > 0) {
      if (Date.now() > deadline + 30_000) throw new Error('initdb outlived the process that started it');
      await sleep(50);
    }
    expect(existsSync(join(dir, 'PG_VERSION'))).toBe(false);
    const store = await PgliteStore.open(dir);
    await store.close();
    expect(existsSync(join(dir, 'PG_VERSION'))).toBe(true);
  }, 240_000);
});
