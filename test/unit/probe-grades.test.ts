// What the detector makes of observations the machine's own services cannot produce (an old
// PostgreSQL, a user without CREATE, a refused login, an evicting Redis, a full disk): the
// grading is pure, so these are given as the TierProbes port would report them.
import { describe, expect, it } from 'vitest';
import {
  gradeDataDir,
  gradePostgres,
  gradeValkey,
  postgresTarget,
  valkeyTarget,
} from '../../src/app/tier/probe-grades.ts';
import { describePostgresUrl, describeValkeyUrl } from '../../src/core/connection-urls.ts';
import type { PostgresServerFacts, ValkeyObservation } from '../../src/core/ports.ts';

const PASSWORD = 'Pa55-w0rd-secret';
const PG_URL = `postgres://flotilla:${PASSWORD}@db.example:5433/state`;
const pgTarget = describePostgresUrl(PG_URL);
const server: PostgresServerFacts = {
  versionNum: 150004,
  version: '15.4 (Debian 15.4-1)',
  user: 'flotilla',
  database: 'state',
  canCreateTables: true,
  canCreateSchema: true,
  migrated: true,
  hasMigrationSchema: true,
};

const VALKEY_URL = `redis://app:${PASSWORD}@cache.example:6380`;
const valkey = (over: Partial<Extract<ValkeyObservation, { reached: true }>>): ValkeyObservation => ({
  reached: true,
  latencyMs: 3,
  auth: 'accepted',
  database: 'default',
  ping: 'pong',
  product: 'Valkey 8.0.1',
  maxmemoryPolicy: 'noeviction',
  ...over,
});

describe('PostgreSQL grades', () => {
  it('green names server, database, user and version; slow is yellow with a remedy', () => {
    const ok = gradePostgres(PG_URL, pgTarget, { reached: true, latencyMs: 4, server }, 1000);
    expect(ok).toMatchObject({ level: 'green', host: 'db.example', port: 5433, latency_ms: 4 });
    expect(ok.message).toBe('PostgreSQL at db.example:5433 (database state, user flotilla): PostgreSQL 15.4');
    const slow = gradePostgres(PG_URL, pgTarget, { reached: true, latencyMs: 1500, server }, 1000);
    expect(slow.level).toBe('yellow');
    expect(slow.remedy).toMatch(/answered in 1\.5 s \(over 1\.0 s\)/);
  });

  it('an older server is yellow; a user who may not create the missing tables is red', () => {
    const old = gradePostgres(
      PG_URL,
      pgTarget,
      { reached: true, latencyMs: 1, server: { ...server, versionNum: 140009, version: '14.9' } },
      1000,
    );
    expect(old).toMatchObject({ level: 'yellow', remedy: 'upgrade the server to PostgreSQL 15 or newer' });
    const locked = gradePostgres(
      PG_URL,
      pgTarget,
      { reached: true, latencyMs: 1, server: { ...server, migrated: false, canCreateTables: false } },
      1000,
    );
    expect(locked).toMatchObject({ level: 'red', ok: false, latency_ms: 1 });
    expect(locked.message).toMatch(/may not create the tables \(no CREATE on schema public\)/);
    expect(locked.remedy).toMatch(/GRANT CREATE ON SCHEMA public TO flotilla/);
  });

  it('a refused login names user and database, never the password', () => {
    const p = gradePostgres(
      PG_URL,
      pgTarget,
      { reached: false, failure: { kind: 'login-refused', reason: 'wrong-password' } },
      1000,
    );
    expect(p).toMatchObject({ level: 'red', latency_ms: null });
    expect(p.message).toBe(
      'PostgreSQL at db.example:5433 refused user flotilla for database state (wrong password)',
    );
    expect(JSON.stringify(p)).not.toContain(PASSWORD);
  });

  it('a text from the network that carries the password is redacted', () => {
    const p = gradePostgres(
      PG_URL,
      pgTarget,
      { reached: false, failure: { kind: 'network', problem: `failed for ${PG_URL}` } },
      1000,
    );
    expect(JSON.stringify(p)).not.toContain(PASSWORD);
    expect(p.message).toContain('postgres://db.example:5433/state');
  });

  it('a URL that does not parse is red without being probed', () => {
    expect(postgresTarget('not a url')).toMatchObject({
      level: 'red',
      host: 'unknown',
      message: 'DATABASE_URL is not a valid URL',
    });
  });
});

describe('Valkey/Redis grades', () => {
  const t = describeValkeyUrl(VALKEY_URL);

  it('refused credentials are red with the first word of the answer, naming the user', () => {
    const p = gradeValkey(
      VALKEY_URL,
      t,
      valkey({ auth: { refused: 'WRONGPASS invalid username-password pair' } }),
      1000,
    );
    expect(p).toMatchObject({ level: 'red', latency_ms: 3 });
    expect(p.message).toBe(
      'Valkey/Redis at cache.example:6380 refused the credentials of user app (WRONGPASS)',
    );
  });

  it('an evicting policy and an unneeded password are yellow, each with its remedy', () => {
    const p = gradeValkey(
      VALKEY_URL,
      t,
      valkey({ auth: 'not-needed', maxmemoryPolicy: 'allkeys-lru' }),
      1000,
    );
    expect(p.level).toBe('yellow');
    expect(p.message).toMatch(
      /Valkey 8\.0\.1, PING answered; VALKEY_URL carries a password .*; maxmemory-policy is allkeys-lru/,
    );
    expect(p.remedy).toMatch(/requirepass.*; set maxmemory-policy noeviction/);
  });

  it('a server that wants a password, or does not answer PONG, is red', () => {
    expect(gradeValkey(VALKEY_URL, t, valkey({ ping: 'needs-auth' }), 1000).message).toMatch(
      /requires a password/,
    );
    expect(gradeValkey(VALKEY_URL, t, valkey({ ping: 'unexpected' }), 1000).message).toMatch(
      /something other than PONG/,
    );
    expect(valkeyTarget('::')).toMatchObject({ level: 'red', message: 'VALKEY_URL is not a valid URL' });
  });
});

describe('data dir grades', () => {
  it('little free space is yellow; a hung file system is red', () => {
    const low = gradeDataDir({
      path: '/d',
      latencyMs: 1,
      state: 'usable',
      mode: 0o700,
      freeBytes: 100 * 1024 ** 2,
    });
    expect(low).toMatchObject({ level: 'yellow', ok: true, path: '/d', port: null });
    expect(low.message).toBe('data dir /d: only 100 MiB free on its file system');
    const hung = gradeDataDir({
      path: '/d',
      latencyMs: 5000,
      state: 'timed-out',
      problem: 'no answer within 5.0 s',
    });
    expect(hung).toMatchObject({ level: 'red', ok: false, remedy: 'check the disk' });
    expect(hung.message).toBe('data dir /d: no answer within 5.0 s (slow or hung file system?)');
  });

  it('no access names the uid, or "?" where the platform has none', () => {
    expect(gradeDataDir({ path: '/d', latencyMs: 1, state: 'no-access', uid: 1000 }).message).toMatch(
      /uid 1000/,
    );
    expect(gradeDataDir({ path: '/d', latencyMs: 1, state: 'no-access', uid: undefined }).message).toMatch(
      /uid \?/,
    );
  });
});
