// What differs by tier in the composition root: the job queue (the jobs table, or BullMQ on
// Valkey) and who runs the background loops (this process, or the replica holding a
// PostgreSQL advisory lock, taken over by another when it dies). BullMQ and pg load only in
// the tiers that use them.
import { createHash } from 'node:crypto';
import { createDbQueue } from '../adapters/queue-db/db-queue.ts';
import type { Config } from '../config/config.ts';
import type { JobQueue, JobStore } from '../core/ports.ts';

export const openQueue = async (config: Config, store: JobStore): Promise<JobQueue> => {
  if (config.tier === 'federated' && config.valkeyUrl) {
    const { createBullmqQueue } = await import('../adapters/queue-bullmq/bullmq-queue.ts');
    return createBullmqQueue({ url: config.valkeyUrl, prefix: `flotilla-${config.clusterId}` });
  }
  return createDbQueue(store);
};

export interface Background {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Background loops: here at once (one process owns the store), or under a leader lock. */
export const leaderLoopsFor = async (
  config: Config,
  o: {
    onElected: () => void | Promise<void>;
    onDemoted: () => void | Promise<void>;
    logger: { warn(obj: Record<string, unknown>, msg: string): void };
  },
): Promise<Background> => {
  if (!config.databaseUrl) {
    return { start: async () => o.onElected(), stop: async () => o.onDemoted() };
  }
  // One lock per cluster: replicas of one cluster share it, other clusters on the same
  // database server do not.
  const { LeaderElection } = await import('../adapters/store-postgres/advisory-lock.ts');
  const key = createHash('sha256').update(`flotilla-loops:${config.clusterId}`).digest().readInt32BE(0);
  const election = new LeaderElection({
    url: config.databaseUrl,
    key,
    onElected: o.onElected,
    onDemoted: o.onDemoted,
    retryMs: 2000,
    onError: (err) => o.logger.warn({ err: err.message.replace(/\/\/[^@/]*@/, '//***@') }, 'leader election'),
  });
  return { start: () => election.start(), stop: () => election.stop() };
};
