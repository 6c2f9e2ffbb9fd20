// JobQueue on BullMQ over Valkey/Redis (federated tier): every manager instance of a group
// shares one BullMQ queue, so a job published by one instance is offered to all of them and
// wakes the runners of every instance. BullMQ is used as an ordered, deduplicated list of job
// ids only: no BullMQ Worker processes these jobs. Runners peek, claim the job in the store
// (the claim decides who runs it) and `remove` it from the queue.
//
// - publish: `addBulk` with jobId = the Flotilla job id. BullMQ ignores an id that is still
//   in the queue, so publishing twice offers a job once. (An id that was removed can be
//   published again: that is how a released job is offered anew.)
// - peek: the waiting list, oldest first.
// - subscribe: a `QueueEvents` reader ('added'/'waiting' events of the queue's stream),
//   created on the first subscribe. It starts reading from the stream position observed
//   when it was set up and calls subscribers once when it is live, so a job published
//   between `subscribe()` and that moment still wakes them (at worst a wake-up too many).
// - Errors never carry the URL or its password: they are FlotillaError UNAVAILABLE naming
//   host and port.
import { type Job, Queue, QueueEvents } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { FlotillaError } from '../../core/errors.ts';
import type { JobQueue } from '../../core/ports.ts';

export interface BullmqQueueOptions {
  /** redis://, rediss://, valkey:// or valkeys:// (user, password and /db are honoured). */
  url: string;
  /** Key prefix of one manager group; replicas of a group share it. Default 'flotilla'. */
  prefix?: string;
  /** The BullMQ queue name. Default 'jobs'. */
  name?: string;
  /** Cap on the first connection (ms). Default 5000. */
  connectTimeoutMs?: number;
  /** Cap on each queue operation (ms). Default 10000. */
  operationTimeoutMs?: number;
  /** Background errors (lost connection, event reader failures), already redacted. */
  onError?: (err: FlotillaError) => void;
}

export interface BullmqJobQueue extends JobQueue {
  readonly kind: 'bullmq';
  /** Host and port of the server (never credentials), for status output. */
  readonly target: { host: string; port: number; prefix: string; name: string };
  /** Resolves once the event reader started by the first `subscribe` is live (for tests). */
  listening(): Promise<void>;
}

/** Where a queue URL points; the password is kept only to connect and to redact. */
interface QueueTarget {
  host: string;
  port: number;
  tls: boolean;
  username: string | undefined;
  password: string | undefined;
  db: number;
}

const decode = (s: string): string => {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
};

const PROTOCOLS = new Set(['redis:', 'rediss:', 'valkey:', 'valkeys:']);

/** Parses a redis:// or valkey:// URL (valkey is the same protocol). Never echoes the URL. */
export const parseQueueUrl = (raw: string): QueueTarget => {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new FlotillaError('VALIDATION_FAILED', 'the Valkey/Redis URL is not a valid URL');
  }
  if (!PROTOCOLS.has(u.protocol)) {
    throw new FlotillaError(
      'VALIDATION_FAILED',
      `the Valkey/Redis URL must start with redis://, rediss://, valkey:// or valkeys:// (not ${u.protocol}//)`,
    );
  }
  const dbText = u.pathname.replace(/^\//, '');
  const db = dbText === '' ? 0 : Number(dbText);
  if (!Number.isInteger(db) || db < 0) {
    throw new FlotillaError('VALIDATION_FAILED', 'the Valkey/Redis URL path must be a database number');
  }
  return {
    host: (u.hostname || 'localhost').replace(/^\[|\]$/g, ''),
    port: Number(u.port || 6379),
    tls: u.protocol === 'rediss:' || u.protocol === 'valkeys:',
    username: decode(u.username) || undefined,
    password: u.password ? decode(u.password) : undefined,
    db,
  };
};

/** An error's text with every secret replaced. */
const redacted = (err: unknown, secrets: string[]): string => {
  let text = err instanceof Error ? err.message : String(err);
  for (const s of secrets) if (s) text = text.split(s).join('***');
  return text.split(/\r?\n/)[0].slice(0, 300);
};

/** BullMQ refuses integer-looking ids and ids with ':' (they clash with its own keys). */
const checkJobId = (id: string): void => {
  if (id === '' || `${Number.parseInt(id, 10)}` === id || id.includes(':')) {
    throw new FlotillaError(
      'VALIDATION_FAILED',
      `job id ${JSON.stringify(id.slice(0, 80))} cannot be queued in BullMQ (empty, an integer, or contains ":")`,
    );
  }
};

const withTimeout = async <T>(promise: Promise<T>, ms: number, what: string): Promise<T> => {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
        timer.unref();
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
};

/**
 * Connects (or fails within `connectTimeoutMs` with FlotillaError UNAVAILABLE naming host
 * and port) and returns the queue. Call `close()` to release every connection.
 */
export const createBullmqQueue = async (opts: BullmqQueueOptions): Promise<BullmqJobQueue> => {
  const t = parseQueueUrl(opts.url);
  const prefix = opts.prefix ?? 'flotilla';
  const name = opts.name ?? 'jobs';
  if (prefix.includes(':') || prefix === '') {
    throw new FlotillaError('VALIDATION_FAILED', 'the queue prefix must be non-empty and without ":"');
  }
  if (name.includes(':') || name === '') {
    throw new FlotillaError('VALIDATION_FAILED', 'the queue name must be non-empty and without ":"');
  }
  const connectTimeoutMs = opts.connectTimeoutMs ?? 5000;
  const opTimeoutMs = opts.operationTimeoutMs ?? 10_000;
  const secrets = [opts.url, t.password ?? '', t.password ? encodeURIComponent(t.password) : ''];
  const where = `Valkey/Redis at ${t.host}:${t.port}`;
  const unavailable = (detail: string): FlotillaError =>
    new FlotillaError('UNAVAILABLE', `${where}: ${detail}`, {
      service: 'valkey',
      host: t.host,
      port: t.port,
    });
  const report = (prefixText: string, err: unknown): void => {
    if (!opts.onError) return;
    try {
      opts.onError(unavailable(`${prefixText}: ${redacted(err, secrets)}`));
    } catch {
      // the sink's own failure is not ours to handle
    }
  };

  const redisOptions: RedisOptions = {
    host: t.host,
    port: t.port,
    db: t.db,
    lazyConnect: true,
    // BullMQ requires it for blocking connections; QueueEvents duplicates this client.
    maxRetriesPerRequest: null,
    connectTimeout: connectTimeoutMs,
    ...(t.username ? { username: t.username } : {}),
    ...(t.password !== undefined ? { password: t.password } : {}),
    ...(t.tls ? { tls: { servername: t.host } } : {}),
  };
  const client = new Redis(redisOptions);
  // The first connection's own error ('connect' only says "Connection is closed").
  let connectError: unknown;
  let connected = false;
  // Without a listener ioredis prints every connection error to the console.
  client.on('error', (e: unknown) => {
    if (!connected) connectError ??= e;
    else report('connection error', e);
  });
  try {
    await withTimeout(client.connect(), connectTimeoutMs, 'connect');
    connected = true;
  } catch (e) {
    client.disconnect();
    const cause = connectError ?? e;
    const refused = /WRONGPASS|NOAUTH|invalid password|invalid username/i.test(redacted(cause, secrets));
    throw unavailable(
      refused
        ? `refused the credentials${t.username ? ` of user ${t.username}` : ''} (${redacted(cause, secrets)})`
        : `not reachable (${redacted(cause, secrets)})`,
    );
  }

  const queue = new Queue(name, {
    connection: client,
    prefix,
    defaultJobOptions: { removeOnComplete: true, removeOnFail: true },
  });
  queue.on('error', (e: unknown) => report('queue error', e));
  try {
    await withTimeout(queue.waitUntilReady(), connectTimeoutMs, 'handshake');
  } catch (e) {
    await queue.close().catch(() => {});
    client.disconnect();
    throw unavailable(`BullMQ could not use the server (${redacted(e, secrets)})`);
  }

  let closing: Promise<void> | undefined;
  let events: QueueEvents | undefined;
  let listening: Promise<void> | undefined;
  const subscribers = new Set<() => void>();
  let notifyQueued = false;

  /** Calls every subscriber once per burst of events (a bulk add emits two per job). */
  const notify = (): void => {
    if (notifyQueued) return;
    notifyQueued = true;
    queueMicrotask(() => {
      notifyQueued = false;
      for (const cb of [...subscribers]) {
        try {
          cb();
        } catch {
          // one subscriber's failure must not silence the others
        }
      }
    });
  };

  const startListening = async (): Promise<void> => {
    // Read from the stream's current end as seen now, not from '$' when XREAD first
    // runs: whatever is added after this point is delivered.
    const last = await withTimeout(
      client.xrevrange(queue.keys.events, '+', '-', 'COUNT', 1),
      opTimeoutMs,
      'reading the event stream',
    );
    if (closing) return;
    const reader = new QueueEvents(name, {
      connection: client,
      prefix,
      autorun: false,
      lastEventId: last[0]?.[0] ?? '0-0',
    });
    reader.on('error', (e: unknown) => report('event reader error', e));
    reader.on('added', notify);
    reader.on('waiting', notify);
    events = reader;
    reader.run().catch((e: unknown) => {
      if (!closing) report('event reader stopped', e);
    });
    await withTimeout(reader.waitUntilReady(), opTimeoutMs, 'event reader');
    // Catch-up wake-up for jobs published while the reader was being set up.
    notify();
  };

  const guard = async <T>(what: string, op: () => Promise<T>): Promise<T> => {
    if (closing) throw new FlotillaError('UNAVAILABLE', 'the job queue is closed');
    if (client.status !== 'ready')
      throw unavailable(`not connected (${client.status}) while trying to ${what}`);
    try {
      return await withTimeout(op(), opTimeoutMs, what);
    } catch (e) {
      if (e instanceof FlotillaError) throw e;
      throw unavailable(`${what} failed: ${redacted(e, secrets)}`);
    }
  };

  return {
    kind: 'bullmq',
    target: { host: t.host, port: t.port, prefix, name },

    async publish(jobs) {
      const seen = new Set<string>();
      const bulk: Array<{ name: string; data: { service: string }; opts: { jobId: string } }> = [];
      for (const j of jobs) {
        if (seen.has(j.id)) continue;
        checkJobId(j.id);
        seen.add(j.id);
        bulk.push({ name: j.service, data: { service: j.service }, opts: { jobId: j.id } });
      }
      if (bulk.length === 0) return;
      await guard('publish jobs', () => queue.addBulk(bulk));
    },

    async peek(limit) {
      if (limit <= 0) return [];
      const waiting = await guard('read the queue', () => queue.getWaiting(0, Math.floor(limit) - 1));
      return waiting.filter((j): j is Job => Boolean(j?.id)).map((j) => j.id as string);
    },

    async remove(ids) {
      const unique = [...new Set(ids)].filter((id) => id !== '');
      if (unique.length === 0) return;
      // 0 means absent (or locked by a BullMQ worker, which this queue never has): both fine.
      await guard('remove jobs', () => Promise.all(unique.map((id) => queue.remove(id))));
    },

    subscribe(cb) {
      // Wrap so that subscribing the same function twice gives two independent subscriptions.
      const entry = (): void => cb();
      subscribers.add(entry);
      if (!listening && !closing) {
        listening = startListening().catch((e: unknown) => {
          // Let a later subscribe try again; runners still poll meanwhile.
          listening = undefined;
          const reader = events;
          events = undefined;
          void reader?.close().catch(() => {});
          report('could not start the event reader', e);
        });
      }
      return () => {
        subscribers.delete(entry);
      };
    },

    listening() {
      return listening ?? Promise.resolve();
    },

    async size() {
      return guard('count the queue', () => queue.getWaitingCount());
    },

    close() {
      closing ??= (async () => {
        subscribers.clear();
        await listening?.catch(() => {});
        await events?.close().catch((e: unknown) => report('closing the event reader', e));
        await queue.close().catch((e: unknown) => report('closing the queue', e));
        if (client.status === 'end') return;
        // quit() answers before the socket is gone: wait for 'end' so nothing stays open.
        const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
        if (client.status === 'ready') {
          await withTimeout(client.quit(), 2000, 'quit').catch(() => client.disconnect());
        } else {
          client.disconnect();
        }
        await withTimeout(ended, 2000, 'disconnect').catch(() => {});
      })();
      return closing;
    },
  };
};
