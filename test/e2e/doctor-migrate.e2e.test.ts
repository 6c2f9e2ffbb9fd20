// `flotilla storage migrate-tier` and `flotilla doctor` as a user runs them: the real CLI in
// a child process, a PGlite data dir seeded through the Store API, and the machine's real
// PostgreSQL as the target. A missing PostgreSQL fails the suite (createTempDatabase says so).
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgliteStore } from '../../src/adapters/store-pglite/pglite-store.ts';
import { tryAdvisoryLock } from '../../src/adapters/store-postgres/advisory-lock.ts';
import { PostgresStore } from '../../src/adapters/store-postgres/postgres-store.ts';
import { MIGRATE_TIER_LOCK_KEY } from '../../src/adapters/tier-copy/table-copy.ts';
import type { Service } from '../../src/core/fdl/service.ts';
import type { NewJob, NewOutboxRow, Store } from '../../src/core/ports.ts';
import { runCli } from '../support/cli.ts';
import { freePort } from '../support/cluster-harness.ts';
import { createTempDatabase, type TempDatabase } from '../support/postgres.ts';
import { SCHEMA_TABLES } from '../support/schema-tables.ts';

const TABLES = SCHEMA_TABLES;
const PASSWORD = 'Tr1cky-Pa55word';

// A sealed setting as the manager would keep one (AES-256-GCM under FLOTILLA_SECRET_KEY):
// after the copy it must open with the same key.
const KEY = randomBytes(32);
const seal = (plain: string): string => {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', KEY, iv);
  const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
  return `v1:${Buffer.concat([iv, c.getAuthTag(), body]).toString('base64')}`;
};
const unseal = (sealed: string): string => {
  const raw = Buffer.from(sealed.slice(3), 'base64');
  const d = createDecipheriv('aes-256-gcm', KEY, raw.subarray(0, 12));
  d.setAuthTag(raw.subarray(12, 28));
  return Buffer.concat([d.update(raw.subarray(28)), d.final()]).toString('utf8');
};

const svc = (name: string, extra: Partial<Service> = {}): Service =>
  ({
    name,
    image: 'ghcr.io/grycap/alpine',
    script: 'echo hi',
    cpu: '0.5',
    memory: '256Mi',
    log_level: 'INFO',
    visibility: 'private',
    token: randomBytes(32).toString('hex'),
    owner: 'cluster_admin',
    environment: { variables: { A: '1' }, secrets: {} },
    ...extra,
  }) as Service;

const coordinator = svc('grayify', {
  clusters: {
    b: { endpoint: 'http://127.0.0.1:18081', auth_user: 'oscar', auth_password: 'b-pass', ssl_verify: false },
    c: { endpoint: 'http://127.0.0.1:18082', auth_user: 'oscar', auth_password: 'c-pass', ssl_verify: false },
  },
  federation: {
    group_id: 'grayify',
    topology: 'star',
    delegation: 'load-based',
    members: [
      { type: 'oscar', cluster_id: 'b', service_name: 'grayify-b', priority: 0 },
      { type: 'oscar', cluster_id: 'c', service_name: 'grayify-c', priority: 1 },
    ],
  },
  custom_unknown_field: { kept: [1, 'two', { three: 3 }] },
} as Partial<Service>);

const jobsToSeed = (): NewJob[] =>
  Array.from({ length: 25 }, (_, i) => ({
    id: `job-${String(i).padStart(3, '0')}-${randomBytes(3).toString('hex')}`,
    service: i % 2 ? 'grayify' : 'plain',
    // Binary events, including bytes that are not UTF-8.
    event: Uint8Array.from([0, 255, 254, i, 10, 13, 92]),
    owner: 'cluster_admin',
    cpuMillis: 100 + i,
    memoryBytes: 2 ** 33 + i, // past 32 bits
    status: (['Pending', 'Running', 'Succeeded', 'Failed'] as const)[i % 4],
    createdAt: new Date(Date.UTC(2024, 0, 1, 0, 0, i, 123)),
    ...(i === 3 ? { delegatedId: 'remote-job-xyz', delegatedTo: null } : {}),
    ...(i === 4 ? { delegatedTo: 'b' } : {}),
  }));

const outboxToSeed = (): NewOutboxRow[] =>
  ['b', 'c', 'b'].map((peer, i) => ({
    peer,
    service: `grayify-${peer}`,
    op: 'update',
    payload: { name: `grayify-${peer}`, revision: i + 1, nested: { list: [1, 2, 3] } },
    target: {
      clusterId: peer,
      endpoint: `http://127.0.0.1:1808${i}`,
      sslVerify: false,
      auth: { kind: 'basic', user: 'oscar', password: `${peer}-pass` },
    },
    group: 'grayify',
    revision: i + 1,
  }));

let root: string;
let dataDir: string;
let target: TempDatabase;
let other: TempDatabase;

const migrate = (url: string, ...extra: string[]) =>
  runCli(
    ['storage', 'migrate-tier', '--to', 'standalone', '--target-url', url, '--data-dir', dataDir, ...extra],
    {
      timeoutMs: 90_000,
    },
  );

const counts = async (url: string): Promise<Record<string, number | null>> => {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const out: Record<string, number | null> = {};
    for (const t of TABLES) {
      const { rows } = await c.query('SELECT to_regclass($1) IS NOT NULL AS present', [`public.${t}`]);
      out[t] = rows[0].present ? Number((await c.query(`SELECT count(*) AS n FROM ${t}`)).rows[0].n) : null;
    }
    return out;
  } finally {
    await c.end();
  }
};

const raw = async <T>(url: string, sql: string): Promise<T[]> => {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql)).rows as T[];
  } finally {
    await c.end();
  }
};

/** Reads everything back through the Store API: what a manager would see. */
const snapshot = async (store: Store, jobIds: string[]) => ({
  services: await store.listServices(),
  // PGlite hands bytea back as Uint8Array, node-postgres as Buffer: compare the bytes.
  jobs: (await Promise.all(jobIds.map((id) => store.getJob(id)))).map(
    (j) => j && { ...j, event: Array.from(j.event) },
  ),
  outbox: await store.outboxOfGroup('grayify'),
  buckets: await store.listBucketRecords(),
  // The hash chain, hot and cold rows alike, as verify reads it.
  audit: await store.audit.list({ limit: 100 }),
  settings: Object.fromEntries(
    await Promise.all(
      ['s3_access_key', 's3_secret_key', 'admin_password_hash', 'sealed:refresh_token:grayify'].map(
        async (k) => [k, await store.getSetting(k)] as const,
      ),
    ),
  ),
});

let seededJobIds: string[] = [];
let sourceSnapshot: Awaited<ReturnType<typeof snapshot>>;
let sourceCounts: Record<string, number>;
const totalRows = () => Object.values(sourceCounts).reduce((a, b) => a + b, 0);

beforeAll(async () => {
  target = await createTempDatabase('flotilla_migrate');
  other = await createTempDatabase('flotilla_migrate_other');
  root = await mkdtemp(join(tmpdir(), 'flotilla-migrate-'));
  dataDir = join(root, 'data');
  const source = await PgliteStore.open(join(dataDir, 'db'));
  try {
    await source.createService(svc('plain'));
    await source.createService(coordinator);
    const jobs = jobsToSeed();
    seededJobIds = await source.insertJobs(jobs);
    await source.finishJob(jobs[2].id, {
      status: 'Succeeded',
      at: new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678)),
      exitCode: 0,
      reason: null,
      log: 'line 1\nline 2 — ünïcödé\n',
    });
    await source.enqueueOutbox(outboxToSeed());
    await source.setSetting('s3_access_key', 'AKIAEXAMPLE');
    await source.setSetting('s3_secret_key', randomBytes(20).toString('hex'));
    await source.setSetting('admin_password_hash', 'scrypt$16384$8$1$c2FsdA==$aGFzaA==');
    await source.setSetting('sealed:refresh_token:grayify', seal('the-refresh-token'));
    await source.claimBucket({
      name: 'grayify',
      owner: 'alice',
      visibility: 'restricted',
      allowedUsers: ['bob'],
      createdBy: 'grayify',
    });
    const auditEntry = (at: Date) => ({
      at,
      grantId: 'grt_000000000000000000000001',
      peer: 'a',
      subject: 'alice',
      verb: 'list',
      resource: 'services',
      queryHash: 'ab'.repeat(32),
      outcome: 'ok' as const,
      bytesOut: 12,
      latencyMs: 0.5,
      traceId: null,
    });
    await source.audit.append([auditEntry(new Date(Date.UTC(2024, 0, 1))), auditEntry(new Date())]);
    await source.audit.moveToCold(new Date(Date.UTC(2025, 0, 1)));
    sourceSnapshot = await snapshot(source, seededJobIds);
  } finally {
    await source.close();
  }
  sourceCounts = {
    services: 2,
    settings: 4,
    jobs: 25,
    outbox: 3,
    audit: 1,
    audit_cold: 1,
    buckets: 1,
    grants: 0,
    enrollment_tokens: 0,
    issued_certificates: 0,
    peers: 0,
  };
}, 60_000);

afterAll(async () => {
  await target?.drop();
  await other?.drop();
  if (root) await rm(root, { recursive: true, force: true });
});

describe('flotilla storage migrate-tier', () => {
  it('--dry-run prints rows per table and changes nothing', async () => {
    const r = await migrate(target.url, '--dry-run');
    expect(r.code, r.stderr).toBe(0);
    for (const t of TABLES)
      expect(r.stdout).toMatch(new RegExp(`^${t}\\s+${sourceCounts[t]}\\s+no table$`, 'm'));
    expect(r.stdout).toMatch(
      new RegExp(`would copy ${totalRows()} rows in ${TABLES.length} tables; nothing was changed`),
    );
    // Not even the schema was created on the target.
    expect(await counts(target.url)).toEqual(Object.fromEntries(TABLES.map((t) => [t, null])));
    expect(await raw(target.url, "SELECT 1 FROM pg_namespace WHERE nspname = 'drizzle'")).toHaveLength(0);

    const json = await migrate(target.url, '--dry-run', '--json');
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({
      dry_run: true,
      tables: TABLES.map((name) => ({ name, source_rows: sourceCounts[name], target_rows: null })),
    });
  }, 60_000);

  it('refuses without --yes when stdin is not a terminal, and changes nothing', async () => {
    const r = await migrate(target.url);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--yes/);
    expect(r.stderr).toMatch(/not a terminal/);
    expect(await counts(target.url)).toEqual(Object.fromEntries(TABLES.map((t) => [t, null])));
  }, 60_000);

  it('fails fast while another run holds the advisory lock on the target', async () => {
    const lock = await tryAdvisoryLock(target.url, MIGRATE_TIER_LOCK_KEY);
    expect(lock).toBeDefined();
    try {
      const started = Date.now();
      const r = await migrate(target.url, '--yes');
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/another migrate-tier run is copying into 127\.0\.0\.1:5432\//);
      expect(r.stderr).toContain(`pid ${lock!.pid}`);
      expect(Date.now() - started).toBeLessThan(20_000);
      expect(await counts(target.url)).toEqual(Object.fromEntries(TABLES.map((t) => [t, null])));
    } finally {
      await lock!.release();
    }
  }, 60_000);

  it('copies every table into an empty PostgreSQL, rows and types intact', async () => {
    const url = new URL(target.url);
    url.password = PASSWORD; // trust auth ignores it; it must not show anywhere
    const r = await migrate(url.toString(), '--yes');
    expect(r.code, r.stderr).toBe(0);
    for (const t of TABLES) expect(r.stderr).toMatch(new RegExp(`${t}: ${sourceCounts[t]} rows? copied`));
    expect(r.stdout).toMatch(new RegExp(`copied ${totalRows()} rows into 127\\.0\\.0\\.1:5432/`));
    expect(r.stdout + r.stderr).not.toContain(PASSWORD);
    expect(await counts(target.url)).toEqual(sourceCounts);

    const store = await PostgresStore.open(target.url);
    try {
      const copied = await snapshot(store, seededJobIds);
      expect(copied.services).toEqual(sourceSnapshot.services);
      expect(copied.services.find((s) => s.name === 'grayify')).toMatchObject({
        federation: { topology: 'star', members: [{ cluster_id: 'b' }, { cluster_id: 'c' }] },
        custom_unknown_field: { kept: [1, 'two', { three: 3 }] },
      });
      expect(copied.jobs).toEqual(sourceSnapshot.jobs);
      expect(copied.jobs[5]!.event).toEqual([0, 255, 254, 5, 10, 13, 92]);
      expect(copied.jobs[0]!.memoryBytes).toBe(2 ** 33);
      expect(copied.jobs[2]!.log).toBe('line 1\nline 2 — ünïcödé\n');
      expect(copied.outbox).toEqual(sourceSnapshot.outbox);
      expect(copied.settings).toEqual(sourceSnapshot.settings);
      // Sealed settings were copied byte for byte: the same key opens them.
      expect(unseal(copied.settings['sealed:refresh_token:grayify']!)).toBe('the-refresh-token');
      // Paging order (identity column) kept, and the sequences moved past the copied rows.
      const seqs = await raw<{ id: string; seq: string }>(
        target.url,
        'SELECT id, seq FROM jobs ORDER BY seq',
      );
      expect(seqs.map((s) => s.id)).toEqual(seededJobIds);
      const [newJob] = await store.insertJobs([
        {
          id: 'after-migration',
          service: 'plain',
          event: new Uint8Array([1]),
          owner: 'o',
          cpuMillis: 1,
          memoryBytes: 1,
        },
      ]);
      const [{ seq }] = await raw<{ seq: string }>(target.url, `SELECT seq FROM jobs WHERE id = '${newJob}'`);
      expect(Number(seq)).toBe(26);
      const [outboxId] = await store.enqueueOutbox([outboxToSeed()[0]]);
      expect(outboxId).toBe(Math.max(...sourceSnapshot.outbox.map((o) => o.id)) + 1);
      // Undo the probes of the sequences, so the re-run below compares with the source again.
      await store.deleteJob('after-migration');
      await raw(target.url, `DELETE FROM outbox WHERE id = ${outboxId}`);
    } finally {
      await store.close();
    }
  }, 120_000);

  it('refuses the now non-empty target without --allow-non-empty; with it, a re-run is safe', async () => {
    const refused = await migrate(target.url, '--yes');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      /is not empty \(services: 2, settings: 4, jobs: 25, outbox: 3, audit: 1, audit_cold: 1, buckets: 1\)/,
    );
    expect(refused.stderr).toMatch(/--allow-non-empty/);

    const rerun = await migrate(target.url, '--yes', '--allow-non-empty', '--json');
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(JSON.parse(rerun.stdout)).toEqual({
      dry_run: false,
      tables: TABLES.map((name) => ({
        name,
        source_rows: sourceCounts[name],
        copied: sourceCounts[name],
        target_rows: sourceCounts[name],
      })),
    });
    expect(await counts(target.url)).toEqual(sourceCounts);
    const store = await PostgresStore.open(target.url);
    try {
      expect(await snapshot(store, seededJobIds)).toEqual(sourceSnapshot);
    } finally {
      await store.close();
    }
  }, 120_000);

  it("refuses a target that holds another manager's rows, and leaves them alone", async () => {
    const store = await PostgresStore.open(other.url);
    try {
      await store.setSetting('belongs-to', 'another-manager');
    } finally {
      await store.close();
    }
    const r = await migrate(other.url, '--yes');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is not empty \(settings: 1\)/);
    expect(await counts(other.url)).toEqual({
      ...Object.fromEntries(TABLES.map((t) => [t, 0])),
      settings: 1,
    });
  }, 60_000);
});

describe('flotilla storage migrate-tier from PostgreSQL', () => {
  let third: TempDatabase;
  afterAll(async () => {
    await third?.drop();
  });

  it('copies a standalone store (DATABASE_URL) into another PostgreSQL for the federated tier', async () => {
    third = await createTempDatabase('flotilla_migrate_third');
    const same = await runCli(
      ['storage', 'migrate-tier', '--to', 'federated', '--target-url', target.url, '--yes'],
      { env: { DATABASE_URL: target.url } },
    );
    expect(same.code).toBe(2);
    expect(same.stderr).toMatch(/same database/);

    const r = await runCli(['storage', 'migrate-tier', '--to', 'federated', '--yes'], {
      // The target URL from the environment keeps its password out of the process list.
      env: { DATABASE_URL: target.url, FLOTILLA_TARGET_URL: third.url, VALKEY_URL: 'redis://127.0.0.1:6379' },
      timeoutMs: 90_000,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/source: PostgreSQL postgres:\/\/.*127\.0\.0\.1:5432\//);
    expect(await counts(third.url)).toEqual(sourceCounts);
    const store = await PostgresStore.open(third.url);
    try {
      expect(await snapshot(store, seededJobIds)).toEqual(sourceSnapshot);
    } finally {
      await store.close();
    }
  }, 120_000);
});

describe('flotilla doctor', () => {
  it('--json with a good DATABASE_URL: exit 0, tier standalone, every probe green', async () => {
    const r = await runCli(['doctor', '--json'], {
      env: { DATABASE_URL: target.url, FLOTILLA_DATA_DIR: dataDir },
    });
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.tier).toBe('standalone');
    expect(report.ok).toBe(true);
    // The job sandbox row comes last (doctor's own, not the tier's); this machine has
    // bubblewrap, cgroups and slirp4netns (scripts/ensure-system-deps.sh), so it is green too.
    expect(report.probes.map((p: { service: string }) => p.service)).toEqual([
      'data-dir',
      'postgres',
      'job-sandbox',
    ]);
    for (const p of report.probes) {
      expect(p, JSON.stringify(p)).toMatchObject({ ok: true, level: 'green' });
      expect(typeof p.latency_ms).toBe('number');
    }
    expect(report.probes[1]).toMatchObject({ host: '127.0.0.1', port: 5432 });
  }, 60_000);

  it('with an unreachable port: exit 1, red, naming host and port but never the password', async () => {
    const port = await freePort();
    const url = `postgres://flotilla:${encodeURIComponent(PASSWORD)}@127.0.0.1:${port}/flotilla`;
    const r = await runCli(['doctor', '--json'], { env: { DATABASE_URL: url, FLOTILLA_DATA_DIR: dataDir } });
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout);
    expect(report.ok).toBe(false);
    const postgres = report.probes.find((p: { service: string }) => p.service === 'postgres');
    expect(postgres).toMatchObject({ host: '127.0.0.1', port, ok: false, level: 'red', latency_ms: null });
    expect(postgres.message).toContain(`127.0.0.1:${port}`);
    expect(postgres.remedy).toMatch(/DATABASE_URL/);
    for (const text of [r.stdout, r.stderr]) {
      expect(text).not.toContain(PASSWORD);
      expect(text).not.toContain(encodeURIComponent(PASSWORD));
    }

    // The human form says the same.
    const human = await runCli(['doctor', '--database-url', url, '--data-dir', dataDir]);
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(new RegExp(`red\\s+postgres\\s+127\\.0\\.0\\.1:${port}`));
    expect(human.stdout).toMatch(/remedy: /);
    expect(human.stdout + human.stderr).not.toContain(PASSWORD);
  }, 60_000);
});
