// The TierProbes port over the network and the file system.
import type { TierProbes } from '../../core/ports.ts';
import { observeDataDir } from './data-dir-probe.ts';
import { observePostgres } from './postgres-probe.ts';
import { observeS3 } from './s3-probe.ts';
import { observeValkey } from './valkey-probe.ts';

export const createTierProbes = (): TierProbes => ({
  postgres: observePostgres,
  valkey: observeValkey,
  s3: observeS3,
  dataDir: observeDataDir,
});
