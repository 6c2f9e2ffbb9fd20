// Advisory locks and leader election against the machine's real PostgreSQL (no mock: the
// point is what the server does when a session dies).
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AdvisoryLock,
  findAdvisoryLockHolder,
  LeaderElection,
  toLockKey,
  tryAdvisoryLock,
} from '../../src/adapters/store-postgres/advisory-lock.ts';
import { createTempDatabase, type TempDatabase } from '../support/postgres.ts';

let db: TempDatabase;
let admin: pg.Client;

const terminate = async (pid: number): Promise<void> => {
  const { rows } = await admin.query('SELECT pg_terminate_backend($1) AS ok', [pid]);
  expect(rows[0].ok, `pg_terminate_backend(${pid})`).toBe(true);
};

const waitFor = async (what: string, cond: () => boolean, timeoutMs: number): Promise<number> => {
  const started = Date.now();
  while (!cond()) {
    if (Date.now() - started > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Date.now() - started;
};

beforeAll(async () => {
  // Fails (does not skip) with a message naming host and port when PostgreSQL is missing.
  db = await createTempDatabase('flotilla_lock');
  admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
});

afterAll(async () => {
  await admin?.end();
  await db?.drop();
});

describe('tryAdvisoryLock', () => {
  it('gives the lock to one session at a time and frees it on release', async () => {
    const a = await tryAdvisoryLock(db.url, 4242);
    expect(a).toBeDefined();
    expect(await tryAdvisoryLock(db.url, 4242)).toBeUndefined();
    // Another key is independent.
    const other = await tryAdvisoryLock(db.url, 4243);
    expect(other).toBeDefined();
    const holder = await findAdvisoryLockHolder(admin, 4242);
    expect(holder?.pid).toBe(a!.pid);
    await a!.release();
    await a!.release(); // idempotent
    expect(await findAdvisoryLockHolder(admin, 4242)).toBeUndefined();
    const b = await tryAdvisoryLock(db.url, 4242);
    expect(b).toBeDefined();
    await b!.release();
    await other!.release();
  });

  it('takes keys over the whole signed 64-bit range, bigint or number', async () => {
    for (const key of [2n ** 63n - 1n, -(2n ** 63n), -1n, 2 ** 53 - 1]) {
      const lock = await tryAdvisoryLock(db.url, key);
      expect(lock, `key ${key}`).toBeDefined();
      expect(await tryAdvisoryLock(db.url, key)).toBeUndefined();
      expect((await findAdvisoryLockHolder(admin, key))?.pid).toBe(lock!.pid);
      await lock!.release();
    }
    expect(() => toLockKey(2n ** 63n)).toThrow(/64-bit/);
    expect(() => toLockKey(1.5)).toThrow(/safe integer/);
  });

  it('works on a pool and gives the connection back on release', async () => {
    const pool = new pg.Pool({ connectionString: db.url, max: 2 });
    try {
      const lock = await tryAdvisoryLock(pool, 77);
      expect(lock).toBeDefined();
      // The pool's other connection is a different session: it cannot take it.
      expect(await tryAdvisoryLock(pool, 77)).toBeUndefined();
      await lock!.release();
      expect(pool.totalCount).toBeLessThanOrEqual(2);
      const again = await tryAdvisoryLock(pool, 77);
      expect(again).toBeDefined();
      await again!.release();
    } finally {
      await pool.end();
    }
  });

  it('reports the loss when the session is terminated, and the lock becomes free', async () => {
    const lock = (await tryAdvisoryLock(db.url, 99, { heartbeatMs: 200 })) as AdvisoryLock;
    expect(lock.isLost).toBe(false);
    await terminate(lock.pid);
    await Promise.race([
      lock.lost,
      new Promise((_, reject) => setTimeout(() => reject(new Error('lost did not resolve in 3 s')), 3000)),
    ]);
    expect(lock.isLost).toBe(true);
    const next = await tryAdvisoryLock(db.url, 99);
    expect(next).toBeDefined();
    await next!.release();
    await lock.release(); // harmless after a loss
  });

  it('rejects, without the password, when PostgreSQL cannot be reached', async () => {
    const err = await tryAdvisoryLock('postgres://u:S3cretPw@127.0.0.1:1/x', 1, {
      connectTimeoutMs: 2000,
    }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect(String((err as Error).message)).not.toContain('S3cretPw');
  });
});

describe('LeaderElection', () => {
  it('elects exactly one leader and moves leadership when the leader session dies', async () => {
    const events: string[] = [];
    const make = (name: string) =>
      new LeaderElection({
        url: db.url,
        key: 0x6c656164n,
        retryMs: 200,
        heartbeatMs: 500,
        onElected: () => {
          events.push(`${name}:elected`);
        },
        onDemoted: (reason) => {
          events.push(`${name}:demoted:${reason}`);
        },
      });
    const a = make('a');
    const b = make('b');
    try {
      await Promise.all([a.start(), b.start()]);
      await waitFor('a leader', () => a.isLeader || b.isLeader, 3000);
      // Let both retry a few times: the follower must stay a follower.
      await new Promise((r) => setTimeout(r, 800));
      expect([a.isLeader, b.isLeader].filter(Boolean)).toHaveLength(1);
      expect(events.filter((e) => e.endsWith(':elected'))).toHaveLength(1);

      const [leader, follower] = a.isLeader ? [a, b] : [b, a];
      const leaderName = leader === a ? 'a' : 'b';
      const followerName = leader === a ? 'b' : 'a';
      const pid = leader.sessionPid!;
      expect((await findAdvisoryLockHolder(admin, 0x6c656164n))?.pid).toBe(pid);

      await terminate(pid);
      const tookMs = await waitFor('the follower to take over', () => follower.isLeader, 5000);
      expect(tookMs).toBeLessThan(5000);
      await waitFor('the old leader to step down', () => !leader.isLeader, 3000);
      expect(events).toContain(`${leaderName}:demoted:lost`);
      expect(events).toContain(`${followerName}:elected`);

      // The old leader keeps campaigning but stays a follower while the new one lives.
      await new Promise((r) => setTimeout(r, 800));
      expect([a.isLeader, b.isLeader].filter(Boolean)).toHaveLength(1);
      expect(follower.isLeader).toBe(true);

      // A clean stop hands over too: the stopped leader steps down first (the other may be
      // elected before stop() resolves, as soon as the lock is free).
      const before = events.length;
      await follower.stop();
      await waitFor('the first leader to lead again', () => leader.isLeader, 3000);
      expect(events.slice(before)).toEqual([`${followerName}:demoted:stopped`, `${leaderName}:elected`]);
    } finally {
      await a.stop();
      await b.stop();
    }
    expect(await findAdvisoryLockHolder(admin, 0x6c656164n)).toBeUndefined();
  });

  it('keeps campaigning while PostgreSQL is unreachable and reports the errors', async () => {
    const errors: Error[] = [];
    const e = new LeaderElection({
      url: 'postgres://u:pw@127.0.0.1:1/x',
      key: 1,
      retryMs: 100,
      onError: (err) => errors.push(err),
    });
    await e.start();
    expect(e.isLeader).toBe(false);
    await waitFor('two failed attempts', () => errors.length >= 2, 3000);
    await e.stop();
  });
});
