// The foundation, end to end with real processes: `flotilla up`, `flotilla apply -f` of an
// oscar-cli FDL, a crash and restart, and the same on PostgreSQL.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { createClusterProcess, type Harness, startClusters } from '../support/cluster-harness.ts';
import { createTempDatabase, type TempDatabase } from '../support/postgres.ts';

const FDL = `
functions:
  oscar:
  - local-cluster:
      name: grayify
      image: ghcr.io/grycap/imagemagick
      cpu: "500m"
      memory: 512Mi
      script: scripts/grayify.sh
      environment:
        variables:
          MODE: gray
        secrets:
          API_KEY: s3cr3t-value
      input:
      - storage_provider: minio.default
        path: grayify/in
      output:
      - storage_provider: minio.default
        path: grayify/out
      custom_extension:
        kept: true
storage_providers:
  minio:
    default:
      endpoint: http://127.0.0.1:9000
      access_key: minio
      secret_key: minio-secret-value
`;

const writeFdl = async (dir: string) => {
  await writeFile(join(dir, 'fdl.yaml'), FDL);
  await import('node:fs/promises').then((fs) => fs.mkdir(join(dir, 'scripts'), { recursive: true }));
  await writeFile(join(dir, 'scripts', 'grayify.sh'), '#!/bin/sh\necho "converting $INPUT_FILE_PATH"\n');
  return join(dir, 'fdl.yaml');
};

const applyAndCheck = async (h: Harness, fdlPath: string) => {
  const c = h.clusters[0];
  const res = await runCli([
    'apply',
    '-f',
    fdlPath,
    '--endpoint',
    c.url,
    '--password',
    c.adminPassword,
    '--json',
  ]);
  expect(res.stderr).toBe('');
  expect(res.code).toBe(0);
  const [report] = JSON.parse(res.stdout);
  expect(report).toMatchObject({ name: 'grayify', action: 'created', cluster: 'local-cluster' });
  expect(report.token).toMatch(/^[0-9a-f]{64}$/);

  const svc = await c.client.getService('grayify');
  expect(svc).toMatchObject({
    name: 'grayify',
    cpu: '0.5',
    memory: '512Mi',
    log_level: 'INFO',
    cluster_id: 'local-cluster',
    owner: 'cluster_admin',
    custom_extension: { kept: true },
  });
  expect(svc.script).toContain('converting $INPUT_FILE_PATH');
  // Secrets are never returned.
  expect(JSON.stringify(svc)).not.toContain('s3cr3t-value');
  expect(JSON.stringify(svc)).not.toContain('minio-secret-value');

  // Applying again updates in place and keeps the token.
  const again = await runCli([
    'apply',
    '-f',
    fdlPath,
    '--endpoint',
    c.url,
    '--password',
    c.adminPassword,
    '--json',
  ]);
  expect(again.code).toBe(0);
  expect(JSON.parse(again.stdout)[0]).toMatchObject({ action: 'updated', token: report.token });
  return report.token as string;
};

describe('foundation end to end', () => {
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'flotilla-fdl-'));
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('up + apply on the embedded store; the service survives a SIGKILL and restart', async () => {
    const h = await startClusters([{ id: 'local-cluster' }]);
    try {
      const token = await applyAndCheck(h, await writeFdl(work));
      const c = h.clusters[0];
      await c.kill();
      await c.start();
      const svc = await c.client.getService('grayify');
      expect(svc.token).toBe(token);
      const list = await runCli(['services', 'list', '--endpoint', c.url, '--password', c.adminPassword]);
      expect(list.code).toBe(0);
      expect(list.stdout).toMatch(/grayify\s+0\.5\s+512Mi/);
      const del = await runCli([
        'services',
        'delete',
        'grayify',
        '--endpoint',
        c.url,
        '--password',
        c.adminPassword,
      ]);
      expect(del.code).toBe(0);
      const get = await runCli([
        'services',
        'get',
        'grayify',
        '--endpoint',
        c.url,
        '--password',
        c.adminPassword,
        '--json',
      ]);
      expect(get.code).toBe(1);
      expect(JSON.parse(get.stdout).error.code).toBe('SERVICE_NOT_FOUND');
    } finally {
      await h.close();
    }
  }, 120_000);

  describe('on PostgreSQL (DATABASE_URL)', () => {
    let db: TempDatabase;
    beforeAll(async () => {
      db = await createTempDatabase();
    });
    afterAll(async () => {
      await db?.drop();
    });

    it('up + apply; the service survives a restart', async () => {
      const h = await startClusters([{ id: 'local-cluster', env: { DATABASE_URL: db.url } }]);
      try {
        const token = await applyAndCheck(h, await writeFdl(work));
        const info = await h.clusters[0].client.info();
        expect(info.tier).toBe('standalone');
        await h.clusters[0].kill();
        await h.clusters[0].start();
        expect((await h.clusters[0].client.getService('grayify')).token).toBe(token);
      } finally {
        await h.close();
      }
    }, 120_000);
  });

  it('generates an admin password when none is given, prints it once, and keeps it', async () => {
    const root = await mkdtemp(join(tmpdir(), 'flotilla-pw-'));
    const c = await createClusterProcess({ id: 'pw' }, { root, adminPassword: '' });
    // An empty --admin-password is refused by config, so start without the flag:
    // the harness passes it, so spawn by hand through the CLI instead.
    const { spawn } = await import('node:child_process');
    const { CLI, REPO_ROOT } = await import('../support/cluster-harness.ts');
    const startOnce = () =>
      new Promise<{ out: string; kill: () => void }>((resolve, reject) => {
        const p = spawn(
          process.execPath,
          [CLI, 'up', '--port', String(c.port), '--data-dir', c.dataDir, '--log-level', 'silent'],
          {
            cwd: REPO_ROOT,
            env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root' },
          },
        );
        let out = '';
        p.stdout.on('data', (d) => {
          out += d;
          if (out.includes('listening on')) resolve({ out, kill: () => p.kill('SIGKILL') });
        });
        p.on('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
      });
    try {
      const first = await startOnce();
      const m = /shown only once: (\S+)/.exec(first.out);
      expect(m).not.toBeNull();
      const password = m![1];
      const ok = await fetch(`${c.url}/system/info`, {
        headers: { authorization: `Basic ${Buffer.from(`oscar:${password}`).toString('base64')}` },
      });
      expect(ok.status).toBe(200);
      first.kill();
      await new Promise((r) => setTimeout(r, 300));
      const second = await startOnce();
      expect(second.out).not.toContain('shown only once');
      const still = await fetch(`${c.url}/system/info`, {
        headers: { authorization: `Basic ${Buffer.from(`oscar:${password}`).toString('base64')}` },
      });
      expect(still.status).toBe(200);
      second.kill();
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  }, 120_000);

  it('refuses to start on a bad flag, naming it', async () => {
    const bad = await runCli(['up', '--cpus', 'lots', '--data-dir', join(work, 'bad')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--cpus');
    const badTier = await runCli(['up', '--tier', 'galactic', '--data-dir', join(work, 'bad')]);
    expect(badTier.code).toBe(2);
    expect(badTier.stderr).toContain('--tier');
    const badUrl = await runCli(['up', '--data-dir', join(work, 'bad')], {
      env: { DATABASE_URL: 'mysql://u:hunter2@db:3306/x' },
    });
    expect(badUrl.code).toBe(2);
    expect(badUrl.stderr).toContain('DATABASE_URL');
    expect(badUrl.stderr).not.toContain('hunter2');
  }, 60_000);
});
