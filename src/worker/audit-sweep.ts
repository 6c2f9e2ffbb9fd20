// The audit trail's cold move: rows older than the hot age go to audit_cold (same rows, same
// hashes), so the hot table stays small and the chain stays whole. A leader loop runs it.
import type { AuditStore, Clock, Log } from '../core/ports.ts';

export const moveOldAuditRows = async (d: {
  audit: Pick<AuditStore, 'moveToCold'>;
  clock: Clock;
  hotMs: number;
  log: Pick<Log, 'info'>;
}): Promise<number> => {
  const moved = await d.audit.moveToCold(new Date(d.clock.now().getTime() - d.hotMs));
  if (moved > 0) d.log.info({ moved }, 'audit rows moved to the cold table');
  return moved;
};

/** How often to look: half the hot age, between 1 s and 10 min. */
export const auditSweepIntervalMs = (hotMs: number): number => Math.min(600_000, Math.max(1000, hotMs / 2));
