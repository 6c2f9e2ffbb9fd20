// PostgreSQL session-level advisory locks on a dedicated session, and a leader election
// built on them.
//
// A session-level lock lives exactly as long as the session that took it: when the process
// holding it dies, or its connection is cut, or an admin runs pg_terminate_backend, the
// server frees the lock and another session can take it. That makes it the right tool for
// "this background loop runs on one instance at a time" and for "one migrate-tier at a time".
//
// The holder learns that its session is gone through the connection's error/end events
// and, for connections that die silently (a network partition), through a heartbeat query.
// Between the server freeing the lock and the old holder noticing there is a short window
// in which both sides may believe they lead (at most one heartbeat period plus its
// timeout): work done under the lock must stay idempotent, as the outbox already is.
import pg from 'pg';
import type { DemotionReason, LeaderElection as LeaderElectionPort } from '../../core/ports.ts';

export type LockKey = bigint | number;

/** Anything that runs a query: pg.Pool, pg.Client, a pool client. */
export interface Queryable {
  query(text: string, params?: unknown[]): Promise<{ rows: any[] }>;
}

export interface AdvisoryLock {
  readonly key: bigint;
  /** Backend pid of the session that holds the lock (for pg_terminate_backend, pg_locks). */
  readonly pid: number;
  /**
   * Resolves when the session holding the lock is gone without release() (connection
   * error, server restart, pg_terminate_backend, failed heartbeat): the lock is then free
   * for others. Never rejects; never resolves after release().
   */
  readonly lost: Promise<void>;
  readonly isLost: boolean;
  /** Unlocks and closes the session. Safe to call more than once, and after a loss. */
  release(): Promise<void>;
}

export interface AdvisoryLockOptions {
  /** How often the holder checks its session is alive; 0 turns it off. Default 5000 ms. */
  heartbeatMs?: number;
  /** Connect timeout for a URL target. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** application_name of the lock session (shown in pg_stat_activity). */
  applicationName?: string;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** A lock key as a signed 64-bit bigint; throws for anything PostgreSQL cannot take. */
export const toLockKey = (key: LockKey): bigint => {
  if (typeof key === 'number') {
    if (!Number.isSafeInteger(key)) throw new RangeError(`advisory lock key ${key} is not a safe integer`);
    return BigInt(key);
  }
  if (key < INT64_MIN || key > INT64_MAX) {
    throw new RangeError(`advisory lock key ${key} does not fit in a signed 64-bit integer`);
  }
  return key;
};

/** pg_locks shows a bigint key split into classid (high 32 bits) and objid (low 32 bits). */
const lockKeyParts = (key: bigint): { hi: string; lo: string } => {
  const u = BigInt.asUintN(64, key);
  return { hi: String(u >> 32n), lo: String(u & 0xffffffffn) };
};

export interface LockHolder {
  pid: number;
  applicationName: string | null;
  clientAddr: string | null;
  backendStart: Date | null;
}

/** The session holding a session-level advisory lock on `key` in this database, if any. */
export const findAdvisoryLockHolder = async (
  db: Queryable,
  key: LockKey,
): Promise<LockHolder | undefined> => {
  const { hi, lo } = lockKeyParts(toLockKey(key));
  const { rows } = await db.query(
    `SELECT l.pid, a.application_name, a.client_addr::text AS client_addr, a.backend_start
       FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
        AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      LIMIT 1`,
    [hi, lo],
  );
  const r = rows[0];
  if (!r) return undefined;
  return {
    pid: Number(r.pid),
    applicationName: r.application_name || null,
    clientAddr: r.client_addr ?? null,
    backendStart: r.backend_start ?? null,
  };
};

interface Session {
  query: Queryable['query'];
  onGone(cb: (err?: Error) => void): void;
  /** Closes the session cleanly. */
  close(): Promise<void>;
  /** Drops the session without waiting (it is broken or hanging). */
  destroy(): void;
}

const openSession = async (target: pg.Pool | string, opts: AdvisoryLockOptions): Promise<Session> => {
  if (typeof target === 'string') {
    const client = new pg.Client({
      connectionString: target,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 5_000,
      keepAlive: true,
      application_name: opts.applicationName ?? 'flotilla-lock',
    });
    // A lost connection must not crash the process: it is reported through `lost`.
    const goneCallbacks: Array<(err?: Error) => void> = [];
    const gone = (err?: Error) => {
      for (const cb of goneCallbacks.splice(0)) cb(err);
    };
    client.on('error', gone);
    client.on('end', () => gone());
    await client.connect();
    return {
      query: (text, params) => client.query(text, params as unknown[]),
      onGone: (cb) => goneCallbacks.push(cb),
      close: () => client.end().catch(() => {}),
      destroy: () => {
        const stream = (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection
          ?.stream;
        stream?.destroy();
        client.end().catch(() => {});
      },
    };
  }
  const client = await target.connect();
  const goneCallbacks: Array<(err?: Error) => void> = [];
  const gone = (err?: Error) => {
    for (const cb of goneCallbacks.splice(0)) cb(err);
  };
  // A checked-out client has no pool listener: without ours, its error would crash us.
  client.on('error', gone);
  client.on('end', () => gone());
  let released = false;
  const give = (err?: Error) => {
    if (released) return;
    released = true;
    client.removeListener('error', gone);
    // true/an error: the pool destroys the connection instead of reusing it.
    client.release(err ?? true);
  };
  return {
    query: (text, params) => client.query(text, params as unknown[]),
    onGone: (cb) => goneCallbacks.push(cb),
    close: async () => give(),
    destroy: () => give(new Error('advisory lock session dropped')),
  };
};

/**
 * Tries once to take a session-level advisory lock on a dedicated session (a new
 * connection for a URL, a pool connection held until release for a pool). Resolves to
 * undefined when another session holds it; rejects when PostgreSQL cannot be reached.
 */
export const tryAdvisoryLock = async (
  target: pg.Pool | string,
  key: LockKey,
  opts: AdvisoryLockOptions = {},
): Promise<AdvisoryLock | undefined> => {
  const k = toLockKey(key);
  const session = await openSession(target, opts);
  let pid: number;
  try {
    const { rows } = await session.query(
      'SELECT pg_try_advisory_lock($1::bigint) AS locked, pg_backend_pid() AS pid',
      [String(k)],
    );
    if (!rows[0]?.locked) {
      await session.close();
      return undefined;
    }
    pid = Number(rows[0].pid);
  } catch (e) {
    session.destroy();
    throw e;
  }

  let state: 'held' | 'lost' | 'released' = 'held';
  let resolveLost!: () => void;
  const lost = new Promise<void>((r) => {
    resolveLost = r;
  });
  let heartbeat: NodeJS.Timeout | undefined;
  const markLost = () => {
    if (state !== 'held') return;
    state = 'lost';
    if (heartbeat) clearInterval(heartbeat);
    session.destroy();
    resolveLost();
  };
  session.onGone(markLost);

  const heartbeatMs = opts.heartbeatMs ?? 5_000;
  if (heartbeatMs > 0) {
    let inFlight = false;
    heartbeat = setInterval(() => {
      if (inFlight || state !== 'held') return;
      inFlight = true;
      // A silent network partition shows as a heartbeat that never answers.
      const timer = setTimeout(markLost, heartbeatMs);
      session
        .query('SELECT 1')
        .then(
          () => undefined,
          () => markLost(),
        )
        .finally(() => {
          clearTimeout(timer);
          inFlight = false;
        });
    }, heartbeatMs);
    heartbeat.unref();
  }

  return {
    key: k,
    pid,
    lost,
    get isLost() {
      return state === 'lost';
    },
    async release() {
      if (state !== 'held') return;
      state = 'released';
      if (heartbeat) clearInterval(heartbeat);
      try {
        await session.query('SELECT pg_advisory_unlock($1::bigint)', [String(k)]);
        await session.close();
      } catch {
        // The session is broken: dropping it frees the lock anyway.
        session.destroy();
      }
    },
  };
};

export interface LeaderElectionOptions {
  /** PostgreSQL URL: the election opens its own session (recommended). */
  url?: string;
  /** Or a pool: one of its connections is held while leading. */
  pool?: pg.Pool;
  key: LockKey;
  /** Called when this process becomes the leader: start the background loops. */
  onElected?: () => void | Promise<void>;
  /** Called when leadership ends (session lost, or stop()): stop the loops. */
  onDemoted?: (reason: DemotionReason) => void | Promise<void>;
  /** Pause between attempts while another holds the lock, with ±20 % jitter. Default 5000 ms. */
  retryMs?: number;
  /** Heartbeat of the leader's session. Default 2000 ms. */
  heartbeatMs?: number;
  /** Connection failures and callback errors (the election keeps going). */
  onError?: (err: Error) => void;
  applicationName?: string;
}

/**
 * Keeps trying to take an advisory lock so that exactly one process leads at a time; the
 * lock moves to another process when the leader's session dies.
 *
 *   const election = new LeaderElection({ url, key, onElected: start, onDemoted: stop });
 *   await election.start();   // resolves after the first attempt
 *   …
 *   await election.stop();    // demotes (onDemoted('stopped')), then releases the lock
 */
export class LeaderElection implements LeaderElectionPort {
  private readonly key: bigint;
  private readonly retryMs: number;
  private running = false;
  private leader = false;
  private lock: AdvisoryLock | undefined;
  private loopDone: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private stopSignal: Promise<void> = Promise.resolve();
  private signalStop: () => void = () => {};

  constructor(private readonly opts: LeaderElectionOptions) {
    if (!opts.url === !opts.pool) throw new Error('LeaderElection needs exactly one of url or pool');
    this.key = toLockKey(opts.key);
    this.retryMs = opts.retryMs ?? 5_000;
  }

  get isLeader(): boolean {
    return this.leader;
  }

  /** Backend pid of the session holding the lock while leading. */
  get sessionPid(): number | undefined {
    return this.leader ? this.lock?.pid : undefined;
  }

  /** Starts campaigning; resolves once the first attempt is over (isLeader tells the result). */
  start(): Promise<void> {
    if (this.running) return Promise.resolve();
    this.running = true;
    this.stopSignal = new Promise<void>((r) => {
      this.signalStop = r;
    });
    let firstAttempt!: () => void;
    const first = new Promise<void>((r) => {
      firstAttempt = r;
    });
    this.loopDone = this.loop(firstAttempt).finally(firstAttempt);
    return first;
  }

  /** Stops campaigning; a leader is demoted first, then its lock is released. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.signalStop();
    this.wake?.();
    await this.loopDone;
  }

  private report(e: unknown): void {
    try {
      this.opts.onError?.(e instanceof Error ? e : new Error(String(e)));
    } catch {
      // a failing error hook must not stop the election
    }
  }

  private async call(fn: (() => void | Promise<void>) | undefined): Promise<void> {
    if (!fn) return;
    try {
      await fn();
    } catch (e) {
      this.report(e);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    }).finally(() => {
      this.wake = undefined;
    });
  }

  private async loop(firstAttempt: () => void): Promise<void> {
    const target = (this.opts.url ?? this.opts.pool)!;
    while (this.running) {
      let lock: AdvisoryLock | undefined;
      try {
        lock = await tryAdvisoryLock(target, this.key, {
          heartbeatMs: this.opts.heartbeatMs ?? 2_000,
          applicationName: this.opts.applicationName ?? 'flotilla-leader',
        });
      } catch (e) {
        this.report(e);
      }
      if (lock && !this.running) {
        await lock.release();
        lock = undefined;
      }
      if (lock) {
        this.lock = lock;
        this.leader = true;
        firstAttempt();
        await this.call(this.opts.onElected);
        const outcome = await Promise.race([
          lock.lost.then(() => 'lost' as const),
          this.stopSignal.then(() => 'stopped' as const),
        ]);
        this.leader = false;
        // Stop the work first, then free the lock, so two leaders never overlap here.
        await this.call(() => this.opts.onDemoted?.(outcome));
        await lock.release();
        this.lock = undefined;
        if (outcome === 'stopped') break;
      }
      firstAttempt();
      if (!this.running) break;
      await this.sleep(Math.round(this.retryMs * (0.8 + Math.random() * 0.4)));
    }
  }
}
