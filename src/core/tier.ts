// The storage tiers, where a manager's state lives, and what the tier detector reports about
// the services a tier needs.
import { join } from 'node:path';

export const TIERS = ['local', 'standalone', 'federated'] as const;
export type Tier = (typeof TIERS)[number];

export type ProbeService = 'postgres' | 'valkey' | 's3' | 'data-dir';
export type ProbeLevel = 'green' | 'yellow' | 'red';

/** One service's health, as `flotilla doctor --json` prints it (docs/doctor.md). */
export interface Probe {
  /** 'job-sandbox' only from doctor (probeJobSandbox), not a tier service. */
  service: ProbeService | 'job-sandbox';
  /** Host name or address probed ("localhost" for the data dir). */
  host: string;
  /** TCP port probed; null for the data dir. */
  port: number | null;
  /** Reachable and usable (green or yellow). */
  ok: boolean;
  /** Time to answer; null when there was no answer. */
  latency_ms: number | null;
  level: ProbeLevel;
  /** One sentence naming the service, host and port. */
  message: string;
  /** What to do, for yellow and red. */
  remedy?: string;
  /** The data dir probed (data-dir only). */
  path?: string;
}

export interface ProbeReport {
  tier: Tier;
  /** false when any probe is red. */
  ok: boolean;
  probes: Probe[];
}

/**
 * Where a manager's state lives: the configured PostgreSQL (standalone and federated tiers,
 * or any tier given --database-url), else the embedded PGlite database in the data dir.
 */
export type StoreLocation = { kind: 'postgres'; url: string } | { kind: 'pglite'; dir: string };

export const storeLocation = (c: { databaseUrl: string | undefined; dataDir: string }): StoreLocation =>
  c.databaseUrl ? { kind: 'postgres', url: c.databaseUrl } : { kind: 'pglite', dir: join(c.dataDir, 'db') };
