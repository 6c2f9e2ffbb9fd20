// The CLI's named clusters (DESIGN §2), with HOME pointed at a temporary directory: `flotilla
// cluster add|default|list|remove` write ~/.config/flotilla/clusters.yaml (mode 0600), client
// commands take `-c NAME` or the default cluster, and an oscar-cli user's
// ~/.oscar-cli/config.yaml (grycap/oscar-cli pkg/config, pkg/cluster) works with no flags.
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { runCli } from '../support/cli.ts';
import { ADMIN_PASSWORD, basic, startInProcess, type TestManager } from '../support/in-process.ts';

let one: TestManager;
let two: TestManager;
let oneUrl: string;
let twoUrl: string;
const homes: string[] = [];

const newHome = async (): Promise<string> => {
  const home = await mkdtemp(join(tmpdir(), 'flotilla-home-'));
  homes.push(home);
  return home;
};

/** The CLI with only PATH and HOME: nothing from the test's own environment leaks in. */
const cli = (home: string, ...args: string[]) => runCli(args, { env: { HOME: home } });

const createService = async (tm: TestManager, name: string) => {
  const res = await tm.manager.http.inject({
    method: 'POST',
    url: '/system/services',
    headers: { authorization: basic() },
    payload: { name, image: 'alpine', script: 'echo hi' },
  });
  expect(res.statusCode, res.body).toBe(201);
};

beforeAll(async () => {
  [one, two] = await Promise.all([
    startInProcess({ clusterId: 'one' }),
    startInProcess({ clusterId: 'two' }),
  ]);
  [oneUrl, twoUrl] = await Promise.all([one.manager.listen(), two.manager.listen()]);
  await createService(one, 'on-one');
  await createService(two, 'on-two');
});
afterAll(async () => {
  await Promise.all([one?.close(), two?.close()]);
  for (const h of homes) await rm(h, { recursive: true, force: true });
});

const names = (stdout: string) => (JSON.parse(stdout) as Array<{ name: string }>).map((s) => s.name);

// Every step runs the real CLI (a Node process each): on a loaded machine that takes seconds.
const SLOW = { timeout: 180_000 };

describe('flotilla cluster add, list, default, remove', SLOW, () => {
  let home: string;

  beforeAll(async () => {
    home = await newHome();
  });

  it('add writes ~/.config/flotilla/clusters.yaml, mode 0600, in oscar-cli layout; the first is the default', async () => {
    const added = await cli(
      home,
      'cluster',
      'add',
      'one',
      oneUrl,
      '--user',
      'oscar',
      '--password',
      ADMIN_PASSWORD,
    );
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toContain('added cluster one');
    const path = join(home, '.config', 'flotilla', 'clusters.yaml');
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(home, '.config', 'flotilla'))).mode & 0o777).toBe(0o700);
    const text = await readFile(path, 'utf8');
    expect(text).toContain('default: one');
    expect(text).toMatch(/oscar:\n {2}one:\n {4}endpoint: /);
    const second = await cli(
      home,
      'cluster',
      'add',
      'two',
      twoUrl,
      '--user',
      'oscar',
      '--password',
      ADMIN_PASSWORD,
    );
    expect(second.code, second.stderr).toBe(0);
  });

  it('list shows names, endpoints and how each signs in, never a password', async () => {
    const listed = await cli(home, 'cluster', 'list', '--json');
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).not.toContain(ADMIN_PASSWORD);
    expect(JSON.parse(listed.stdout).clusters).toEqual([
      { name: 'one', endpoint: oneUrl, auth: 'basic (oscar)', ssl_verify: true, default: true },
      { name: 'two', endpoint: twoUrl, auth: 'basic (oscar)', ssl_verify: true, default: false },
    ]);
    const table = await cli(home, 'cluster', 'list');
    expect(table.stdout).toMatch(/^one\s+http:\/\/\S+\s+basic \(oscar\)\s+verify\s+\*$/m);
    expect(table.stdout).not.toContain(ADMIN_PASSWORD);
  });

  it('client commands go to the default cluster with no flags, to another with -c NAME', async () => {
    const byDefault = await cli(home, 'services', 'list', '--json');
    expect(byDefault.code, byDefault.stderr).toBe(0);
    expect(names(byDefault.stdout)).toEqual(['on-one']);
    const other = await cli(home, 'services', 'list', '-c', 'two', '--json');
    expect(names(other.stdout)).toEqual(['on-two']);
    const got = await cli(home, 'services', 'get', 'on-two', '--cluster', 'two');
    expect(JSON.parse(got.stdout)).toMatchObject({ name: 'on-two', cluster_id: 'two' });
  });

  it('--endpoint still wins over the default cluster, and its credentials are the flags', async () => {
    const res = await cli(
      home,
      'services',
      'list',
      '--endpoint',
      twoUrl,
      '--password',
      ADMIN_PASSWORD,
      '--json',
    );
    expect(res.code, res.stderr).toBe(0);
    expect(names(res.stdout)).toEqual(['on-two']);
    const noPassword = await cli(home, 'services', 'list', '--endpoint', twoUrl);
    expect(noPassword.code).toBe(1);
    expect(noPassword.stderr).toMatch(/UNAUTHORIZED/);
  });

  it('an unknown -c NAME is an error naming the known clusters', async () => {
    const res = await cli(home, 'services', 'list', '-c', 'three');
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('cluster "three" is not defined');
    expect(res.stderr).toContain('known: one, two');
  });

  it('default changes the default; remove forgets a cluster (and the default with it)', async () => {
    expect((await cli(home, 'cluster', 'default', 'two')).code).toBe(0);
    expect(names((await cli(home, 'services', 'list', '--json')).stdout)).toEqual(['on-two']);
    const missing = await cli(home, 'cluster', 'default', 'nope');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('cluster "nope" is not defined');
    expect((await cli(home, 'cluster', 'remove', 'two')).code).toBe(0);
    const listed = JSON.parse((await cli(home, 'cluster', 'list', '--json')).stdout);
    expect(listed.clusters.map((c: { name: string }) => c.name)).toEqual(['one']);
  });

  it('refuses what it cannot use: a bad name or URL, a password without a user, both a token and a password', async () => {
    for (const [args, message] of [
      [['cluster', 'add', '-bad', oneUrl], /cluster name "-bad"|unknown option/],
      [['cluster', 'add', 'x', 'not a url'], /is not a URL/],
      [['cluster', 'add', 'x', 'ftp://h'], /must be http or https/],
      [['cluster', 'add', 'x', oneUrl, '--password', 'p'], /--password needs --user/],
      [
        ['cluster', 'add', 'x', oneUrl, '--user', 'u', '--password', 'p', '--token', 't'],
        /either --user and --password, or --token/,
      ],
    ] as const) {
      const res = await cli(home, ...args);
      expect(res.code, args.join(' ')).not.toBe(0);
      expect(res.stderr, args.join(' ')).toMatch(message);
    }
  });
});

describe("an oscar-cli user's ~/.oscar-cli/config.yaml", SLOW, () => {
  let home: string;

  beforeAll(async () => {
    home = await newHome();
    await mkdir(join(home, '.oscar-cli'), { recursive: true });
    // As `oscar-cli cluster add` writes it (pkg/config AddCluster: memory and log_level too).
    await writeFile(
      join(home, '.oscar-cli', 'config.yaml'),
      toYaml({
        oscar: {
          'oscar-one': {
            endpoint: oneUrl,
            auth_user: 'oscar',
            auth_password: ADMIN_PASSWORD,
            ssl_verify: true,
            memory: '256Mi',
            log_level: 'INFO',
          },
          'oscar-two': {
            endpoint: twoUrl,
            auth_user: 'oscar',
            auth_password: ADMIN_PASSWORD,
            ssl_verify: true,
          },
          agent: { endpoint: twoUrl, oidc_account_name: 'egi', ssl_verify: true },
        },
        default: 'oscar-one',
      }),
      { mode: 0o600 },
    );
  });

  it('is read while Flotilla has no file of its own: services list works with no flags', async () => {
    const res = await cli(home, 'services', 'list', '--json');
    expect(res.code, res.stderr).toBe(0);
    expect(names(res.stdout)).toEqual(['on-one']);
    const listed = JSON.parse((await cli(home, 'cluster', 'list', '--json')).stdout);
    expect(listed.from_oscar_cli).toBe(true);
    expect(listed.clusters.map((c: { name: string }) => c.name)).toEqual(['oscar-one', 'oscar-two', 'agent']);
  });

  it('apply sends each FDL entry to the cluster it is keyed by, as oscar-cli apply does', async () => {
    const fdl = join(home, 'fdl.yaml');
    await writeFile(join(home, 'hello.sh'), '#!/bin/sh\necho hello\n');
    await writeFile(
      fdl,
      [
        'functions:',
        '  oscar:',
        '  - oscar-one:',
        '      name: fdl-one',
        '      image: alpine',
        '      script: hello.sh',
        '  - oscar-two:',
        '      name: fdl-two',
        '      image: alpine',
        '      script: hello.sh',
        '',
      ].join('\n'),
    );
    const res = await cli(home, 'apply', '-f', fdl, '--json');
    expect(res.code, res.stderr).toBe(0);
    expect(await one.store.getService('fdl-one')).toMatchObject({ cluster_id: 'oscar-one' });
    expect(await two.store.getService('fdl-two')).toMatchObject({ cluster_id: 'oscar-two' });
    expect(await one.store.getService('fdl-two')).toBeUndefined();
    // -c NAME: only that cluster's entries, to that cluster.
    const again = await cli(home, 'apply', '-f', fdl, '-c', 'oscar-two', '--json');
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).map((r: { name: string; action: string }) => [r.name, r.action])).toEqual(
      [['fdl-two', 'updated']],
    );
  });

  it('a cluster that signs in through oidc-agent asks for --token', async () => {
    const res = await cli(home, 'services', 'list', '-c', 'agent');
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('oidc-agent (egi)');
    expect(res.stderr).toContain('--token');
  });

  it("the first `cluster add` starts Flotilla's file from the oscar-cli clusters", async () => {
    const added = await cli(
      home,
      'cluster',
      'add',
      'mine',
      twoUrl,
      '--user',
      'oscar',
      '--password',
      ADMIN_PASSWORD,
    );
    expect(added.code, added.stderr).toBe(0);
    const listed = JSON.parse((await cli(home, 'cluster', 'list', '--json')).stdout);
    expect(listed.from_oscar_cli).toBe(false);
    expect(listed.clusters.map((c: { name: string }) => c.name)).toEqual([
      'oscar-one',
      'oscar-two',
      'agent',
      'mine',
    ]);
    expect(listed.clusters.find((c: { default: boolean }) => c.default).name).toBe('oscar-one');
    // oscar-cli's own file is never written.
    expect(await readFile(join(home, '.oscar-cli', 'config.yaml'), 'utf8')).not.toContain('mine');
  });
});
