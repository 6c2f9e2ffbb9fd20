// The composition root of the tier tools (`flotilla up`'s readiness check, `flotilla
// doctor`, `flotilla storage migrate-tier`): the detector and the copy use case over their
// adapters, so the CLI never reaches for an adapter itself.
import { inspectJobSandbox } from '../adapters/executor-process/inspect.ts';
import { createTierProbes } from '../adapters/tier-probes/tier-probes.ts';
import {
  createTierDetector,
  type ProbeOptions,
  probeJobSandbox,
  type TierDetector,
} from '../app/tier/detector.ts';
import {
  type MigrateTierOutcome,
  type MigrateTierRequest,
  type MigrateTierUi,
  migrateTier,
} from '../app/tier/migrate-tier.ts';
import type { Config } from '../config/config.ts';
import { type Probe, type ProbeReport, storeLocation } from '../core/tier.ts';

export type TierConfig = Pick<Config, 'tier' | 'databaseUrl' | 'valkeyUrl' | 's3' | 'dataDir'>;

/** The detector over the network and file-system probes. */
export const openTierDetector = (): TierDetector => createTierDetector(createTierProbes());

export const probePostgres = (url: string, opts?: ProbeOptions): Promise<Probe> =>
  openTierDetector().probePostgres(url, opts);
export const probeValkey = (url: string, opts?: ProbeOptions): Promise<Probe> =>
  openTierDetector().probeValkey(url, opts);
export const probeS3 = (endpoint: string, opts?: ProbeOptions): Promise<Probe> =>
  openTierDetector().probeS3(endpoint, opts);
export const probeDataDir = (dir: string, opts?: ProbeOptions): Promise<Probe> =>
  openTierDetector().probeDataDir(dir, opts);
export const probeTier = (config: TierConfig, opts?: ProbeOptions): Promise<ProbeReport> =>
  openTierDetector().probeTier(config, opts);
export const assertTierReady = (config: TierConfig, opts?: ProbeOptions): Promise<ProbeReport> =>
  openTierDetector().assertTierReady(config, opts);

export type MigrateTierOptions = Omit<
  MigrateTierRequest,
  'sourceUrl' | 'valkeyUrl' | 's3Configured' | 'dataDir'
>;

/** What `flotilla doctor` and `flotilla storage migrate-tier` run, for one configuration. */
export interface TierTools {
  /** Every probe the configured tier needs. */
  doctor(opts?: ProbeOptions): Promise<ProbeReport>;
  /** Copies the configured store (PGlite in the data dir, or DATABASE_URL) into the target. */
  migrateTier(opts: MigrateTierOptions, ui: MigrateTierUi): Promise<MigrateTierOutcome>;
}

/** The job sandbox this configuration would get (doctor's job-sandbox row). */
export const jobSandboxProbe = (config: Pick<Config, 'jobNetwork' | 'jobUids'>): Probe =>
  probeJobSandbox(() => inspectJobSandbox({ network: config.jobNetwork, jobUids: config.jobUids }));

export const openTierTools = (config: Config): TierTools => {
  const detector = openTierDetector();
  return {
    doctor: (opts) => detector.probeTier(config, opts),
    // The copier (PGlite and pg both) loads only for a copy: `up` and `doctor` never need it.
    migrateTier: async (opts, ui) => {
      const { createSqlStateCopier } = await import('../adapters/tier-copy/sql-state-copier.ts');
      return migrateTier(
        {
          copier: createSqlStateCopier(storeLocation(config)),
          detector,
        },
        {
          ...opts,
          sourceUrl: config.databaseUrl,
          valkeyUrl: config.valkeyUrl,
          s3Configured: config.s3 !== undefined,
          dataDir: config.dataDir,
        },
        ui,
      );
    },
  };
};
