// What differs by tier in the composition root: the job queue (the jobs table, or BullMQ on
// Valkey) and who runs the background loops (this process, or the instance holding a
// PostgreSQL advisory lock, taken over by another when it dies). BullMQ and pg load only in
// the tiers that use them.
import { createHash } from 'node:crypto';
import { InProcessElection } from '../adapters/leader-in-process/in-process-election.ts';
import { createDbQueue } from '../adapters/queue-db/db-queue.ts';
import type { Config } from '../config/config.ts';
import type { JobQueue, JobStore, LeaderElection, RateLimiter } from '../core/ports.ts';

export const openQueue = async (config: Config, store: JobStore): Promise<JobQueue> => {
  if (config.tier === 'federated' && config.valkeyUrl) {
    const { createBullmqQueue } = await import('../adapters/queue-bullmq/bullmq-queue.ts');
    return createBullmqQueue({ url: config.valkeyUrl, prefix: `flotilla-${config.clusterId}` });
  }
  return createDbQueue(store);
};

/** Background loops: here at once (one process owns the store), or under a leader lock. */
export const leaderLoopsFor = async (
  config: Config,
  o: {
    onElected: () => void | Promise<void>;
    onDemoted: () => void | Promise<void>;
    logger: { warn(obj: Record<string, unknown>, msg: string): void };
  },
): Promise<LeaderElection> => {
  const onError = (err: Error) =>
    o.logger.warn({ err: err.message.replace(/\/\/[^@/]*@/, '//***@') }, 'leader election');
  if (!config.databaseUrl) {
    // A lock of its own: this process is the only candidate, so it leads at once.
    return new InProcessElection({ key: 'loops', onElected: o.onElected, onDemoted: o.onDemoted, onError });
  }
  // One lock per cluster: replicas of one cluster share it, other clusters on the same
  // database server do not.
  const { LeaderElection: AdvisoryLockElection } = await import(
    '../adapters/store-postgres/advisory-lock.ts'
  );
  const key = createHash('sha256').update(`flotilla-loops:${config.clusterId}`).digest().readInt32BE(0);
  return new AdvisoryLockElection({
    url: config.databaseUrl,
    key,
    onElected: o.onElected,
    onDemoted: o.onDemoted,
    retryMs: 2000,
    onError,
  });
};

/** The per-grant rate limit's counters: in Valkey in the federated tier (every replica counts
 * in the same keys), in this process otherwise. */
export const openRateLimiter = async (config: Config): Promise<RateLimiter> => {
  if (config.tier === 'federated' && config.valkeyUrl) {
    const { createValkeyRateLimiter } = await import('../adapters/rate-valkey/valkey-rate-limiter.ts');
    return createValkeyRateLimiter({ url: config.valkeyUrl, prefix: `flotilla-${config.clusterId}` });
  }
  const { createMemoryRateLimiter } = await import('../adapters/rate-memory/memory-rate-limiter.ts');
  return createMemoryRateLimiter();
};
