// LeaderElection contract: one suite, run against every adapter — the PostgreSQL advisory
// lock (federated and standalone tiers, on the machine's real PostgreSQL) and the in-process
// lock (local tier). What only a lock on a server can do (lose the session and fail over)
// is in advisory-lock.test.ts.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  InProcessElection,
  InProcessLocks,
} from '../../src/adapters/leader-in-process/in-process-election.ts';
import { LeaderElection as AdvisoryLockElection } from '../../src/adapters/store-postgres/advisory-lock.ts';
import type { DemotionReason, LeaderElection } from '../../src/core/ports.ts';
import { createTempDatabase, type TempDatabase } from '../support/postgres.ts';

interface Callbacks {
  onElected: () => void | Promise<void>;
  onDemoted: (reason: DemotionReason) => void | Promise<void>;
  onError: (err: Error) => void;
}

interface Adapter {
  name: string;
  setup?(): Promise<void>;
  teardown?(): Promise<void>;
  /** A new lock; candidates made by the returned function share it. */
  lock(): (cb: Callbacks) => LeaderElection;
}

let db: TempDatabase | undefined;

const adapters: Adapter[] = [
  {
    name: 'PostgreSQL advisory lock',
    async setup() {
      // Fails (does not skip) with a message naming host and port when PostgreSQL is missing.
      db = await createTempDatabase('flotilla_leader');
    },
    async teardown() {
      await db?.drop();
    },
    lock() {
      const key = randomBytes(6).readUIntBE(0, 6);
      return (cb) => new AdvisoryLockElection({ url: db!.url, key, retryMs: 100, heartbeatMs: 500, ...cb });
    },
  },
  {
    name: 'in-process lock',
    lock() {
      const locks = new InProcessLocks();
      return (cb) => new InProcessElection({ locks, key: 'loops', ...cb });
    },
  },
];

const waitFor = async (what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> => {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

/** A candidate that records what happens to it. */
const recorded = (make: (cb: Callbacks) => LeaderElection, name: string, events: string[]) => {
  const errors: Error[] = [];
  const election = make({
    onElected: () => {
      events.push(`${name}:elected`);
    },
    onDemoted: (reason) => {
      events.push(`${name}:demoted:${reason}`);
    },
    onError: (err) => errors.push(err),
  });
  return { election, errors };
};

for (const adapter of adapters) {
  describe(`LeaderElection contract: ${adapter.name}`, () => {
    beforeAll(async () => adapter.setup?.());
    afterAll(async () => adapter.teardown?.());

    it('a lone candidate leads once started, and is demoted (stopped) by stop()', async () => {
      const events: string[] = [];
      const { election } = recorded(adapter.lock(), 'a', events);
      expect(election.isLeader).toBe(false);
      await election.start();
      expect(election.isLeader).toBe(true);
      expect(events).toEqual(['a:elected']);
      await election.stop();
      expect(election.isLeader).toBe(false);
      expect(events).toEqual(['a:elected', 'a:demoted:stopped']);
    });

    it('of two candidates sharing a lock one leads; when it stops, the other takes over', async () => {
      const events: string[] = [];
      const make = adapter.lock();
      const a = recorded(make, 'a', events).election;
      const b = recorded(make, 'b', events).election;
      try {
        await a.start();
        await b.start();
        expect(a.isLeader).toBe(true);
        expect(b.isLeader).toBe(false);
        await new Promise((r) => setTimeout(r, 300));
        expect(b.isLeader).toBe(false);
        await a.stop();
        await waitFor('b to lead', () => b.isLeader);
        // The old leader's work stopped before the new one's started.
        expect(events).toEqual(['a:elected', 'a:demoted:stopped', 'b:elected']);
      } finally {
        await a.stop();
        await b.stop();
      }
    });

    it('start and stop are idempotent, stop before start is harmless, and a stopped candidate can run again', async () => {
      const events: string[] = [];
      const { election } = recorded(adapter.lock(), 'a', events);
      await election.stop();
      await election.start();
      await election.start();
      expect(events).toEqual(['a:elected']);
      await election.stop();
      await election.stop();
      expect(events).toEqual(['a:elected', 'a:demoted:stopped']);
      await election.start();
      expect(election.isLeader).toBe(true);
      await election.stop();
      expect(events).toEqual(['a:elected', 'a:demoted:stopped', 'a:elected', 'a:demoted:stopped']);
    });

    it('reports a callback that throws and goes on leading', async () => {
      const errors: Error[] = [];
      const election = adapter.lock()({
        onElected: () => {
          throw new Error('loops failed to start');
        },
        onDemoted: () => {},
        onError: (err) => errors.push(err),
      });
      try {
        await election.start();
        await waitFor('the error report', () => errors.length > 0);
        expect(errors[0].message).toBe('loops failed to start');
        expect(election.isLeader).toBe(true);
      } finally {
        await election.stop();
      }
      expect(election.isLeader).toBe(false);
    });
  });
}
