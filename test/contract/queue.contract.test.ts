// JobQueue contract: one suite, run against the jobs-table queue (over an in-memory PGlite
// store) and against BullMQ on the machine's real Redis (a random key prefix per run, every
// key removed afterwards). Redis being down FAILS the BullMQ part; it is never skipped.
import { randomBytes } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type BullmqJobQueue,
  createBullmqQueue,
  parseQueueUrl,
} from '../../src/adapters/queue-bullmq/bullmq-queue.ts';
import { createDbQueue } from '../../src/adapters/queue-db/db-queue.ts';
import { PgliteStore } from '../../src/adapters/store-pglite/pglite-store.ts';
import { FlotillaError } from '../../src/core/errors.ts';
import type { JobQueue } from '../../src/core/ports.ts';

const REDIS_URL = process.env.FLOTILLA_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const RUN_PREFIX = `flotilla-test-${randomBytes(4).toString('hex')}`;

interface Published {
  id: string;
  service: string;
}

/** One adapter under test, with fresh state per test. */
interface QueueHarness {
  queue: JobQueue;
  /** Stores the jobs' rows (a job is offered only once stored and published). */
  store(jobs: Published[]): Promise<void>;
  /** The runner's claim in the store (Pending → Running), made before `remove`. */
  claim(id: string): Promise<void>;
  /** Another manager replica over the same shared state (same prefix), when the adapter has replicas. */
  replica?(): Promise<JobQueue>;
  /** Resolves when a subscription of `q` is live. */
  listening(q: JobQueue): Promise<void>;
  cleanup(): Promise<void>;
}

interface Adapter {
  name: string;
  /** Several manager replicas share the queue (and wake each other). */
  replicas: boolean;
  /** Once per suite: fails (never skips) when the backing service is missing. */
  setup?(): Promise<void>;
  open(): Promise<QueueHarness>;
  teardown?(): Promise<void>;
}

let counter = 0;
const ids = (n: number): Published[] =>
  Array.from({ length: n }, (_, i) => ({
    id: `job-${++counter}-${i}-${randomBytes(3).toString('hex')}`,
    service: i % 2 ? 'svc-b' : 'svc-a',
  }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const waitFor = async (what: string, ok: () => boolean, ms = 5000): Promise<void> => {
  const until = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
};

/** Subscribes and counts calls, starting from zero once the subscription is live. */
const counting = async (h: QueueHarness, q: JobQueue) => {
  const c = { calls: 0, unsubscribe: () => {} };
  c.unsubscribe = q.subscribe(() => {
    c.calls++;
  });
  await h.listening(q);
  await sleep(20); // let a catch-up wake-up (BullMQ) land before counting
  c.calls = 0;
  return c;
};

const openSockets = (): number =>
  process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap' || r === 'TCPWrap').length;

function jobQueueContract(adapter: Adapter): void {
  describe(`JobQueue contract: ${adapter.name}`, () => {
    let h: QueueHarness;
    // A missing backing service fails every test with its message (vitest would report the
    // tests of a failed beforeAll as skipped).
    let setupError: unknown;
    beforeAll(async () => {
      await adapter.setup?.().catch((e: unknown) => {
        setupError = e;
      });
    });
    afterAll(async () => {
      if (!setupError) await adapter.teardown?.();
    });
    beforeEach(async () => {
      if (setupError) throw setupError;
      h = await adapter.open();
    });
    afterEach(async () => {
      const done = h;
      h = undefined as unknown as QueueHarness;
      await done?.cleanup();
    });

    const storeAndPublish = async (jobs: Published[]) => {
      await h.store(jobs);
      await h.queue.publish(jobs);
    };

    it('is empty at first', async () => {
      expect(await h.queue.peek(10)).toEqual([]);
      expect(await h.queue.size()).toBe(0);
    });

    it('offers published jobs oldest first, across publish calls', async () => {
      const [a, b, c, d] = ids(4);
      await storeAndPublish([a, b]);
      await storeAndPublish([c]);
      await storeAndPublish([d]);
      expect(await h.queue.peek(10)).toEqual([a.id, b.id, c.id, d.id]);
    });

    it('offers a job published twice once, keeping its first place', async () => {
      const [a, b, c] = ids(3);
      await h.store([a, b, c]);
      await h.queue.publish([a]);
      await h.queue.publish([b, a]);
      await h.queue.publish([c, c, b]);
      await h.queue.publish([a]);
      expect(await h.queue.peek(10)).toEqual([a.id, b.id, c.id]);
      expect(await h.queue.size()).toBe(3);
    });

    it('peeks at most `limit` ids, the oldest ones', async () => {
      const jobs = ids(5);
      await storeAndPublish(jobs);
      expect(await h.queue.peek(2)).toEqual([jobs[0].id, jobs[1].id]);
      expect(await h.queue.peek(1)).toEqual([jobs[0].id]);
      expect(await h.queue.peek(0)).toEqual([]);
      expect(await h.queue.peek(5)).toEqual(jobs.map((j) => j.id));
      expect(await h.queue.peek(100)).toEqual(jobs.map((j) => j.id));
      // peeking does not take anything
      expect(await h.queue.size()).toBe(5);
    });

    it('stops offering a claimed and removed job; removing unknown ids is fine', async () => {
      const [a, b, c] = ids(3);
      await storeAndPublish([a, b, c]);
      await h.claim(b.id);
      await h.queue.remove([b.id]);
      expect(await h.queue.peek(10)).toEqual([a.id, c.id]);
      await h.queue.remove([b.id, 'never-published-job', b.id]);
      await h.queue.remove([]);
      expect(await h.queue.peek(10)).toEqual([a.id, c.id]);
      await h.claim(a.id);
      await h.claim(c.id);
      await h.queue.remove([a.id, c.id]);
      expect(await h.queue.peek(10)).toEqual([]);
    });

    it('counts the offered jobs', async () => {
      expect(await h.queue.size()).toBe(0);
      const jobs = ids(3);
      await storeAndPublish(jobs);
      expect(await h.queue.size()).toBe(3);
      await h.claim(jobs[1].id);
      await h.queue.remove([jobs[1].id]);
      expect(await h.queue.size()).toBe(2);
      await h.queue.publish([]);
      expect(await h.queue.size()).toBe(2);
    });

    it('calls subscribers after publish, until they unsubscribe', async () => {
      const first = await counting(h, h.queue);
      const second = await counting(h, h.queue);
      const [a, b] = ids(2);
      await storeAndPublish([a]);
      await waitFor('both subscribers to be called', () => first.calls > 0 && second.calls > 0);

      first.unsubscribe();
      const before = first.calls;
      second.calls = 0;
      await storeAndPublish([b]);
      await waitFor('the remaining subscriber to be called', () => second.calls > 0);
      await sleep(150);
      expect(first.calls).toBe(before);
      second.unsubscribe();
      second.unsubscribe(); // twice is harmless
    });

    it('closes cleanly, twice', async () => {
      const sub = await counting(h, h.queue);
      await h.queue.close();
      await h.queue.close();
      expect(sub.calls).toBe(0);
    });

    if (adapter.replicas) {
      it('wakes and shares the queue with another replica (same prefix)', async () => {
        const other = await h.replica!();
        try {
          const onOther = await counting(h, other);
          const onSelf = await counting(h, h.queue);
          const [a, b] = ids(2);
          await storeAndPublish([a, b]);
          await waitFor('the other replica to be woken', () => onOther.calls > 0);
          await waitFor('this replica to be woken', () => onSelf.calls > 0);
          expect(await other.peek(10)).toEqual([a.id, b.id]);
          expect(await other.size()).toBe(2);

          // The other replica publishing wakes this one; its remove is seen here.
          onSelf.calls = 0;
          const [c] = ids(1);
          await other.publish([c, a]);
          await waitFor('this replica to be woken by the other', () => onSelf.calls > 0);
          await other.remove([a.id]);
          expect(await h.queue.peek(10)).toEqual([b.id, c.id]);

          onOther.unsubscribe();
          onOther.calls = 0;
          onSelf.calls = 0;
          await h.queue.publish(ids(1));
          await waitFor('this replica to be woken', () => onSelf.calls > 0);
          await sleep(150);
          expect(onOther.calls).toBe(0);
        } finally {
          await other.close();
        }
      });
    }
  });
}

// ---------------------------------------------------------------- jobs table (PGlite)

// One in-memory store for the file (opening PGlite costs seconds); each test empties it.
let pglite: Promise<PgliteStore> | undefined;
const sharedStore = (): Promise<PgliteStore> => {
  pglite ??= PgliteStore.open(undefined);
  return pglite;
};
afterAll(async () => {
  await (await pglite)?.close();
});

let dbStore: PgliteStore | undefined;

jobQueueContract({
  name: 'jobs table (PGlite in memory)',
  replicas: false,
  async setup() {
    dbStore = await sharedStore();
  },
  async open() {
    const store = dbStore!;
    const queue = createDbQueue(store);
    let t = Date.UTC(2024, 0, 1);
    return {
      queue,
      async store(jobs) {
        await store.insertJobs(
          jobs.map((j, i) => ({
            id: j.id,
            service: j.service,
            event: new TextEncoder().encode('{}'),
            owner: 'cluster_admin',
            cpuMillis: 100,
            memoryBytes: 64 * 1024 * 1024,
            createdAt: new Date(t + i * 1000),
          })),
        );
        t += jobs.length * 1000;
      },
      async claim(id) {
        expect(await store.claimJob(id, new Date())).toBe(true);
      },
      listening: async () => {},
      async cleanup() {
        await queue.close();
        for (const service of ['svc-a', 'svc-b']) await store.deleteJobs(service, { all: true });
      },
    };
  },
  async teardown() {
    dbStore = undefined;
  },
});

describe('jobs-table queue specifics', () => {
  let store: PgliteStore;
  beforeAll(async () => {
    store = await sharedStore();
  });

  it('offers a job while its row is Pending: a claim alone stops the offer, a release brings it back', async () => {
    const queue = createDbQueue(store);
    const jobs = ids(3).map((j) => ({
      ...j,
      event: new Uint8Array(),
      owner: 'o',
      cpuMillis: 1,
      memoryBytes: 1,
    }));
    await store.insertJobs(jobs);
    expect(await queue.peek(10)).toEqual(jobs.map((j) => j.id));
    expect(await store.claimJob(jobs[0].id, new Date())).toBe(true);
    expect(await queue.peek(10)).toEqual([jobs[1].id, jobs[2].id]);
    // remove is a no-op: a job still Pending stays offered
    await queue.remove([jobs[1].id]);
    expect(await queue.peek(10)).toEqual([jobs[1].id, jobs[2].id]);
    await store.releaseJob(jobs[0].id);
    expect(await queue.peek(10)).toEqual(jobs.map((j) => j.id));
    await store.deleteJobs('svc-a', { all: true });
    await store.deleteJobs('svc-b', { all: true });
    await queue.close();
  });

  it('does not notify a second queue object (another process): it only sees the rows when it peeks', async () => {
    const here = createDbQueue(store);
    const elsewhere = createDbQueue(store);
    let calls = 0;
    elsewhere.subscribe(() => {
      calls++;
    });
    const [a] = ids(1);
    await store.insertJobs([{ ...a, event: new Uint8Array(), owner: 'o', cpuMillis: 1, memoryBytes: 1 }]);
    await here.publish([a]);
    await sleep(50);
    expect(calls).toBe(0);
    expect(await elsewhere.peek(10)).toEqual([a.id]);
    await store.deleteJobs(a.service, { all: true });
    await here.close();
    await elsewhere.close();
  });
});

// ---------------------------------------------------------------- BullMQ on Redis

/** Removes a test queue's keys the way an operator would (obliterate). */
const obliterate = async (connection: Redis, prefix: string, name: string): Promise<void> => {
  const q = new Queue(name, { connection, prefix });
  try {
    await q.obliterate({ force: true });
  } finally {
    await q.close();
  }
};

const keysOf = async (redis: Redis, pattern: string): Promise<string[]> => {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
    cursor = next;
    found.push(...batch);
  } while (cursor !== '0');
  return found;
};

let admin: Redis | undefined;

/** A plain connection for cleanup; throws (failing the suite, never skipping it) when Redis is down. */
const connectAdmin = async (): Promise<Redis> => {
  const { host, port } = parseQueueUrl(REDIS_URL);
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 3000 });
  let firstError: Error | undefined;
  redis.on('error', (e: Error) => {
    firstError ??= e;
  });
  try {
    await redis.connect();
    await redis.ping();
    return redis;
  } catch (e) {
    redis.disconnect();
    throw new Error(
      `Redis is needed for the BullMQ JobQueue tests but is not reachable at ${host}:${port} ` +
        `(${(firstError ?? (e as Error)).message}). Start it (redis-server) or set FLOTILLA_TEST_REDIS_URL.`,
    );
  }
};

let queueNo = 0;

jobQueueContract({
  name: 'BullMQ on Redis',
  replicas: true,
  async setup() {
    admin = await connectAdmin();
  },
  async open() {
    const name = `t${++queueNo}`;
    const opened: JobQueue[] = [];
    const open = async (): Promise<BullmqJobQueue> => {
      const q = await createBullmqQueue({ url: REDIS_URL, prefix: RUN_PREFIX, name });
      opened.push(q);
      return q;
    };
    const queue = await open();
    return {
      queue,
      store: async () => {},
      claim: async () => {},
      replica: open,
      listening: (q) => (q as BullmqJobQueue).listening(),
      async cleanup() {
        for (const q of opened) await q.close();
        await obliterate(admin!, RUN_PREFIX, name);
      },
    };
  },
  async teardown() {
    if (!admin) return;
    try {
      const left = await keysOf(admin, `${RUN_PREFIX}:*`);
      if (left.length) await admin.del(...left);
      expect(left).toEqual([]);
    } finally {
      await admin.quit();
      admin = undefined;
    }
  },
});

describe('BullMQ queue specifics', () => {
  const prefix = `${RUN_PREFIX}-x`;
  let redis: Redis | undefined;
  let setupError: unknown;
  beforeAll(async () => {
    redis = await connectAdmin().catch((e: unknown) => {
      setupError = e;
      return undefined;
    });
  });
  beforeEach(() => {
    if (setupError) throw setupError;
  });
  afterAll(async () => {
    if (!redis) return; // Redis was not reachable: beforeAll already failed the suite
    try {
      for (const n of [1, 2, 3]) await obliterate(redis, `${prefix}${n}`, 'jobs');
      const left = await keysOf(redis, `${prefix}*`);
      if (left.length) await redis.del(...left);
      expect(left).toEqual([]);
    } finally {
      await redis.quit();
    }
  });

  it('reads redis://, rediss://, valkey:// and valkeys:// URLs alike', () => {
    expect(parseQueueUrl('valkey://u:p%40ss@cache.example:6380/2')).toEqual({
      host: 'cache.example',
      port: 6380,
      tls: false,
      username: 'u',
      password: 'p@ss',
      db: 2,
    });
    expect(parseQueueUrl('valkeys://cache.example')).toMatchObject({ port: 6379, tls: true, db: 0 });
    expect(parseQueueUrl('rediss://[::1]:7000')).toMatchObject({ host: '::1', port: 7000, tls: true });
    for (const bad of ['http://x:1', 'not a url://', 'redis://h/abc']) {
      expect(() => parseQueueUrl(bad)).toThrow(FlotillaError);
    }
  });

  it('fails to connect with host and port, never the password', async () => {
    const err = await createBullmqQueue({
      url: 'redis://alice:sup3r-s3cret@127.0.0.1:1/0',
      connectTimeoutMs: 2000,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FlotillaError);
    const f = err as FlotillaError;
    expect(f.code).toBe('UNAVAILABLE');
    expect(f.message).toContain('127.0.0.1:1');
    const text = [f.message, f.stack, JSON.stringify(f)].join('\n');
    expect(text).not.toContain('sup3r-s3cret');
    expect(f.details).toEqual({ service: 'valkey', host: '127.0.0.1', port: 1 });
  });

  it('reports refused credentials without echoing them', async () => {
    const u = new URL(REDIS_URL);
    u.username = 'nobody';
    u.password = 'wr0ng-pa55';
    const err = await createBullmqQueue({ url: u.toString(), connectTimeoutMs: 2000 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(FlotillaError);
    const f = err as FlotillaError;
    expect(f.message).toMatch(/refused the credentials of user nobody/);
    expect([f.message, f.stack, JSON.stringify(f)].join('\n')).not.toContain('wr0ng-pa55');
  });

  it('keeps groups apart by prefix and stores only {service} per job', async () => {
    const one = await createBullmqQueue({ url: REDIS_URL, prefix: `${prefix}1` });
    const two = await createBullmqQueue({ url: REDIS_URL, prefix: `${prefix}2` });
    try {
      const [a] = ids(1);
      await one.publish([a]);
      expect(await one.peek(5)).toEqual([a.id]);
      expect(await two.peek(5)).toEqual([]);
      const data = await redis!.hget(`${prefix}1:jobs:${a.id}`, 'data');
      expect(JSON.parse(data!)).toEqual({ service: a.service });
      await expect(one.publish([{ id: '42', service: 's' }])).rejects.toThrow(/cannot be queued/);
    } finally {
      await one.close();
      await two.close();
    }
  });

  it('leaves no open connection after close', async () => {
    const before = openSockets();
    const a = await createBullmqQueue({ url: REDIS_URL, prefix: `${prefix}3` });
    const b = await createBullmqQueue({ url: REDIS_URL, prefix: `${prefix}3` });
    a.subscribe(() => {});
    b.subscribe(() => {});
    await Promise.all([a.listening(), b.listening()]);
    await a.publish(ids(2));
    expect(openSockets()).toBeGreaterThanOrEqual(before + 4);
    await Promise.all([a.close(), b.close()]);
    await waitFor('sockets to close', () => openSockets() <= before, 2000);
    await expect(a.size()).rejects.toThrow(/closed/);
  });
});
