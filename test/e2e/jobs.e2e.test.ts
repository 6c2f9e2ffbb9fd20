// Jobs end to end with a real manager process and the CLI alone: a file put into a
// service's input path produces its output; `run` returns the script's output; a manager
// killed with SIGKILL during a burst of 500 jobs loses none of the accepted ones; a job
// cannot read the manager's data dir or see its secrets.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobsApi } from '../../client/api-client.ts';
import { runCli } from '../support/cli.ts';
import { type ClusterProcess, type Harness, REPO_ROOT, startClusters } from '../support/cluster-harness.ts';
import { waitFor as waitUntil } from '../support/wait.ts';

// A cluster may be restarting while we poll: a failing poll counts as "not yet".
const waitFor = <T>(fn: () => Promise<T | undefined | false>, ms: number, what: string): Promise<T> =>
  waitUntil(fn, ms, what, { tolerateErrors: true, intervalMs: 200 });

const cli = (c: ClusterProcess, args: string[], extra: { input?: string } = {}) =>
  runCli([...args, '--endpoint', c.url, '--password', c.adminPassword], extra);

describe('jobs end to end', () => {
  let h: Harness;
  let c: ClusterProcess;
  let work: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'flotilla-jobs-e2e-'));
    h = await startClusters([{ id: 'local', args: ['--cpus', '4', '--memory', '4Gi'] }]);
    c = h.clusters[0];
  }, 90_000);

  afterAll(async () => {
    await h?.close();
    await rm(work, { recursive: true, force: true });
  });

  it('a file put into the input path produces its output, through the CLI alone', async () => {
    const applied = await cli(c, ['apply', '-f', join(REPO_ROOT, 'examples/hello/fdl.yaml')]);
    expect(applied.stderr).toContain('created hello');
    expect(applied.code).toBe(0);

    const input = join(work, 'note.txt');
    await writeFile(input, 'make me loud\n');
    const put = await cli(c, ['storage', 'put', input, 'hello/in/']);
    expect(put.code).toBe(0);
    expect(put.stdout).toContain('hello/in/note.txt');

    const listing = await waitFor(
      async () => {
        const ls = await cli(c, ['storage', 'ls', 'hello/out', '--json']);
        const rows = JSON.parse(ls.stdout) as Array<{ object_name: string }>;
        return rows.some((r) => r.object_name === 'out/note.txt.out') && rows;
      },
      30_000,
      'the output object',
    );
    expect(listing.length).toBeGreaterThan(0);

    const got = await cli(c, ['storage', 'get', 'hello/out/note.txt.out', '-']);
    expect(got.code).toBe(0);
    expect(got.stdout).toBe('Hello\nMAKE ME LOUD\n');

    const jobs = await cli(c, ['jobs', 'hello', '--json']);
    const entries = Object.entries(JSON.parse(jobs.stdout) as Record<string, { status: string }>);
    expect(entries).toHaveLength(1);
    expect(entries[0][1].status).toBe('Succeeded');
    const logs = await cli(c, ['logs', 'hello', entries[0][0], '--follow']);
    expect(logs.stdout).toContain('Hello from');
    expect(logs.stdout).toContain('processing /');
  }, 60_000);

  it('`run` returns the script output (one output file, base64 as OSCAR answers)', async () => {
    const input = join(work, 'sync.txt');
    await writeFile(input, 'sync please\n');
    const out = join(work, 'sync.out');
    const res = await cli(c, ['run', 'hello', '--input', input, '--output', out]);
    expect(res.code).toBe(0);
    expect(await readFile(out, 'utf8')).toBe('Hello\nSYNC PLEASE\n');
    const raw = await cli(c, ['run', 'hello', '--input', '-'], { input: 'from stdin\n' });
    expect(Buffer.from(raw.stdout.trim(), 'base64').toString()).toBe('Hello\nFROM STDIN\n');
  }, 60_000);

  it('a job cannot read the data dir, the database files or the manager secrets', async () => {
    const script = [
      `cat ${c.dataDir}/db/PG_VERSION 2>&1 || echo "no-read-db"`,
      `ls ${c.dataDir} 2>&1 || echo "no-list-data"`,
      `ls ${c.dataDir}/s3 2>&1 || echo "no-list-s3"`,
      'env',
      'id -u',
    ].join('\n');
    await c.client.createService({ name: 'snoop', image: 'alpine', script });
    const { token } = await c.client.getService('snoop');
    const { job_id } = await jobsApi(c.client).submit('snoop', '', token);
    const log = await waitFor(
      async () => {
        const l = await jobsApi(c.client).log('snoop', job_id);
        return l.status === 'Succeeded' || l.status === 'Failed' ? l.text : undefined;
      },
      20_000,
      'the snoop job',
    );
    expect(log).not.toMatch(/^1[5-9]\s*$/m); // PG_VERSION content
    // A listing of the data dir would show its entries, one per line.
    expect(log).not.toMatch(/^db$/m);
    expect(log).not.toMatch(/^s3$/m);
    expect(log).not.toContain(c.adminPassword);
    expect(log).not.toContain('FLOTILLA_');
    expect(log).toMatch(/no-read-db|No such file|Permission denied/);
    expect(log.trim().split('\n').pop()).not.toBe('0'); // not root
  }, 60_000);

  it('a SIGKILL during a burst of 500 jobs loses none of the accepted ones', async () => {
    await c.client.createService({
      name: 'burst',
      image: 'alpine',
      script: 'echo "job $JOB_UUID"',
      cpu: '0.1',
      memory: '16Mi',
    });
    const { token } = await c.client.getService('burst');
    const api = jobsApi(c.client);
    const accepted: string[] = [];
    let killed = false;
    const send = async () => {
      try {
        const res = await api.submit('burst', Buffer.from('x').toString('base64'), token);
        accepted.push(res.job_id);
      } catch {
        // refused or cut by the kill: not accepted, nothing to keep
      }
      if (!killed && accepted.length >= 250) {
        killed = true;
        await c.kill();
      }
    };
    const queue = Array.from({ length: 500 }, (_, i) => i);
    await Promise.all(
      Array.from({ length: 25 }, async () => {
        while (queue.length) {
          queue.pop();
          await send();
        }
      }),
    );
    expect(killed).toBe(true);
    expect(accepted.length).toBeGreaterThanOrEqual(250);
    await c.start();

    const seen = await waitFor(
      async () => {
        const all = new Map<string, string>();
        let page: string | undefined;
        do {
          const res = await api.list('burst', page);
          for (const [id, j] of Object.entries(res.jobs)) all.set(id, j.status);
          page = res.next_page || undefined;
        } while (page);
        const done = [...all.values()].every((s) => s === 'Succeeded' || s === 'Failed');
        return done && accepted.every((id) => all.has(id)) && all;
      },
      90_000,
      'every accepted job to be stored and finished',
    );
    for (const id of accepted) expect(seen.has(id)).toBe(true);
    // Jobs that were queued when the manager died ran after the restart.
    expect([...seen.values()].filter((s) => s === 'Succeeded').length).toBeGreaterThan(0);
  }, 180_000);
});
