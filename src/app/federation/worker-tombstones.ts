// What a member keeps of its coordinators' proven deletes (DESIGN §3.2, ADR 3): the sha256 of
// the worker's name with each token a delete proved with, for an hour. A create of that worker sent before the delete
// and landing after it (slow on a busy member, or its answer lost and the undo sent at once)
// proves with one of them and is refused, so it cannot leave a worker no coordinator lists.
// A coordinator never makes a worker with a token it deleted one with: a federation made
// again, or a member removed with its service and added back, gets fresh tokens.
// The order closes the race: a delete records before it reads the service, a create checks
// after it stored its own (and is undone), so whichever of the two runs second sees the
// other's write. Not checked before as well: a late create is rare, a query per create is not.
import { createHash } from 'node:crypto';
import type { Clock, StampedSettingsStore } from '../../core/ports.ts';

const PREFIX = 'worker-deleted:';
/** Far longer than a create can be in flight (the coordinator's call gives up after seconds). */
export const TOMBSTONE_KEEP_MS = 3_600_000;

const keyOf = (service: string, token: string): string =>
  PREFIX + createHash('sha256').update(`${service}\n${token}`, 'utf8').digest('hex');

export class WorkerTombstones {
  constructor(private readonly d: { settings: StampedSettingsStore; clock: Clock }) {}

  /** A proven delete is about to look for its worker: the tokens it proves with are spent on it. */
  async record(service: string, tokens: readonly string[]): Promise<void> {
    const at = String(this.d.clock.now().getTime());
    for (const token of new Set(tokens)) await this.d.settings.setSetting(keyOf(service, token), at);
  }

  /** true when a proven delete of `service` spent this token (a create proving with it is late). */
  async spent(service: string, token: string): Promise<boolean> {
    return (await this.d.settings.getSetting(keyOf(service, token))) !== undefined;
  }

  /** Drops tombstones older than the keep time; the number dropped. */
  prune(): Promise<number> {
    return this.d.settings.pruneSettings(PREFIX, new Date(this.d.clock.now().getTime() - TOMBSTONE_KEEP_MS));
  }
}
