// Housekeeping that runs on the leading manager instance ("replica" is kept for delegation
// targets): every instance writes a heartbeat; the leader fails the Running jobs of an
// instance that stopped beating (it died mid-job: the job
// ran once and ends Failed, it is never run a second time), offers again any stored job the
// queue lost (a crash between store and publish), and prunes applied outbox rows.
import type { Clock, JobQueue, JobStore, OutboxStore, SettingsStore } from '../core/ports.ts';

// The settings key keeps its first name: instances of two versions share one store while a
// cluster is upgraded, and each must see the other's beat.
const HEARTBEAT = (id: string) => `replica:${id}`;

export const writeHeartbeat = (settings: SettingsStore, instanceId: string, clock: Clock): Promise<void> =>
  settings.setSetting(HEARTBEAT(instanceId), String(clock.now().getTime()));

export interface SweepDeps {
  store: JobStore & SettingsStore & OutboxStore;
  queue: JobQueue;
  clock: Clock;
  instanceId: string;
  /** An instance silent this long is dead. */
  deadAfterMs?: number;
  logger: { warn(obj: Record<string, unknown>, msg: string): void };
}

export const sweepDeadInstances = async (d: SweepDeps): Promise<void> => {
  const now = d.clock.now().getTime();
  for (const runner of await d.store.runnersWithRunningJobs()) {
    if (runner === d.instanceId) continue;
    const beat = Number((await d.store.getSetting(HEARTBEAT(runner))) ?? 0);
    if (now - beat < (d.deadAfterMs ?? 15_000)) continue;
    // The reason as users have read it so far (docs/operations.md).
    const failed = await d.store.failRunningJobs(
      `manager replica ${runner} stopped while the job was running`,
      d.clock.now(),
      runner,
    );
    if (failed.length)
      d.logger.warn({ instance: runner, jobs: failed.length }, 'failed the jobs of an instance that stopped');
  }
};

/** Stored jobs waiting for a while are offered again (publishing is idempotent). */
export const reofferWaitingJobs = async (d: SweepDeps, olderThanMs = 5000): Promise<void> => {
  const now = d.clock.now().getTime();
  const waiting = (await d.store.pendingJobs(1000)).filter((j) => now - j.createdAt.getTime() > olderThanMs);
  if (waiting.length) await d.queue.publish(waiting.map((j) => ({ id: j.id, service: j.service })));
};

export const pruneOutbox = async (d: SweepDeps, keepMs = 3600_000): Promise<void> => {
  await d.store.pruneOutbox(new Date(d.clock.now().getTime() - keepMs));
};
