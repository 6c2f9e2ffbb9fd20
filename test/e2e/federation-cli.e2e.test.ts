// The federation through the CLI alone: `flotilla apply -f` of an FDL with a federation
// block prints the per-member report; `flotilla federation get|add|update|remove` change the
// members and every cluster follows.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { type Harness, startClusters } from '../support/cluster-harness.ts';

const waitFor = async (fn: () => Promise<boolean>, ms: number, what: string): Promise<void> => {
  const deadline = Date.now() + ms;
  while (!(await fn().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
};

describe('federation through the CLI', () => {
  let h: Harness;
  let work: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'flotilla-fed-cli-'));
    h = await startClusters([{ id: 'a' }, { id: 'b' }, { id: 'c' }], { adminPassword: 'pw' });
  }, 150_000);

  afterAll(async () => {
    await h?.close();
    await rm(work, { recursive: true, force: true });
  });

  it('apply prints the per-member report; federation add, update, remove reach every cluster', async () => {
    const [a, b, c] = h.clusters;
    const fdl = `
functions:
  oscar:
  - a:
      name: echo
      image: alpine
      script: echo.sh
      federation:
        topology: star
        members:
        - {type: oscar, cluster_id: b, service_name: echo-b}
clusters:
  a: {endpoint: "${a.url}", auth_user: oscar, auth_password: pw}
  b: {endpoint: "${b.url}", auth_user: oscar, auth_password: pw}
  c: {endpoint: "${c.url}", auth_user: oscar, auth_password: pw}
`;
    await writeFile(join(work, 'fdl.yaml'), fdl);
    await writeFile(join(work, 'echo.sh'), 'echo hello\n');
    const cli = (args: string[]) => runCli([...args, '--endpoint', a.url, '--password', 'pw']);

    const applied = await cli(['apply', '-f', join(work, 'fdl.yaml')]);
    expect(applied.code).toBe(0);
    expect(applied.stderr).toMatch(/deploying across 1 member/);
    expect(applied.stderr).toMatch(/created\s+b\/echo-b/);
    expect(applied.stderr).toContain('federation created');
    expect((await b.client.getService('echo-b')).name).toBe('echo-b');

    const added = await cli(['federation', 'add', 'echo', 'c/echo-c@3']);
    expect(added.code).toBe(0);
    expect(added.stdout).toMatch(/c\/echo-c\s+oscar\s+3\s+synced/);
    await waitFor(async () => !!(await c.client.getService('echo-c')), 20_000, 'echo-c on c');

    const updated = await cli(['federation', 'update', 'echo', 'c/echo-c@1', '--json']);
    expect(updated.code).toBe(0);
    const view = JSON.parse(updated.stdout) as { members: Array<{ cluster_id: string; priority: number }> };
    expect(view.members.find((m) => m.cluster_id === 'c')?.priority).toBe(1);

    const got = await cli(['federation', 'get', 'echo']);
    expect(got.stdout).toContain('topology star');
    expect(got.stdout).toMatch(/b\/echo-b/);

    const removed = await cli(['federation', 'remove', 'echo', 'c/echo-c', '--delete']);
    expect(removed.code).toBe(0);
    await waitFor(
      async () => !(await c.client.listServices()).some((s) => s.name === 'echo-c'),
      20_000,
      'echo-c removed',
    );
    const onB = await runCli([
      'federation',
      'get',
      'echo-b',
      '--endpoint',
      b.url,
      '--password',
      'pw',
      '--json',
    ]);
    expect(JSON.parse(onB.stdout).members.map((m: { cluster_id: string }) => m.cluster_id)).toEqual(['b']);

    const bad = await cli(['federation', 'add', 'echo', 'not a member']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('CLUSTER/SERVICE');
  }, 120_000);
});
