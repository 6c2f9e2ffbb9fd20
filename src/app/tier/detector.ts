// The tier detector: probes what the configured tier needs (PostgreSQL, Valkey/Redis, S3,
// the data dir), each within a time cap, and says for every failure which service, where
// (host and port) and what to do about it. Used by `flotilla doctor` and at start-up
// (assertTierReady), so a manager refuses to start with a message an operator can act on.
// The probing itself is the TierProbes port; here are the decisions: which probes a tier
// needs, and (probe-grades.ts) what each answer means.
import type { TierProbes } from '../../core/ports.ts';
import { redact, urlSecrets } from '../../core/redaction.ts';
import type { Probe, ProbeLevel, ProbeReport, ProbeService, Tier } from '../../core/tier.ts';
import {
  gradeDataDir,
  gradePostgres,
  gradeS3,
  gradeValkey,
  postgresTarget,
  red,
  s3Target,
  valkeyTarget,
} from './probe-grades.ts';

export interface ProbeOptions {
  /** Cap per probe. Default 5000 ms. */
  timeoutMs?: number;
  /** Latency above which a reachable service is yellow. Default 1000 ms. */
  slowMs?: number;
}

/** What the detector needs to know of the configuration. */
export interface TierSettings {
  tier: Tier;
  dataDir: string;
  databaseUrl: string | undefined;
  valkeyUrl: string | undefined;
  s3: { endpoint: string; secretKey: string } | undefined;
}

const DEFAULT_TIMEOUT_MS = 5_000;
const DEFAULT_SLOW_MS = 1_000;

/** Which probes a tier needs, in report order. */
export const probesFor = (settings: TierSettings): ProbeService[] => {
  const out: ProbeService[] = ['data-dir'];
  // The manager uses DATABASE_URL whenever it is set (standalone and federated require it).
  if (settings.databaseUrl || settings.tier !== 'local') out.push('postgres');
  if (settings.tier === 'federated') out.push('valkey');
  if (settings.s3) out.push('s3');
  return out;
};

/** One line per probe, for logs and error messages. */
export const formatProbe = (p: Probe): string =>
  `${p.level.toUpperCase()} ${p.service} ${p.port === null ? p.host : `${p.host}:${p.port}`}: ${p.message}${
    p.remedy ? ` (remedy: ${p.remedy})` : ''
  }`;

export class TierNotReadyError extends Error {
  constructor(readonly report: ProbeReport) {
    const reds = report.probes.filter((p) => p.level === 'red');
    super(
      `tier ${report.tier} is not ready: ${reds.length} service${reds.length === 1 ? '' : 's'} failed\n` +
        reds
          .map(
            (p) =>
              `  - ${p.service} at ${p.port === null ? (p.path ?? p.host) : `${p.host}:${p.port}`}: ${p.message}` +
              (p.remedy ? `\n    remedy: ${p.remedy}` : ''),
          )
          .join('\n'),
    );
    this.name = 'TierNotReadyError';
  }
}

export interface TierDetector {
  probePostgres(url: string, opts?: ProbeOptions): Promise<Probe>;
  probeValkey(url: string, opts?: ProbeOptions): Promise<Probe>;
  /** Reachability of an S3 endpoint: an unauthenticated GET; any HTTP answer counts. */
  probeS3(endpoint: string, opts?: ProbeOptions): Promise<Probe>;
  probeDataDir(dir: string, opts?: ProbeOptions): Promise<Probe>;
  /** Runs every probe the tier needs, in parallel, each within the time cap. */
  probeTier(settings: TierSettings, opts?: ProbeOptions): Promise<ProbeReport>;
  /**
   * Probes the tier and throws TierNotReadyError (listing every red probe with service,
   * host, port and remedy) when something it needs is missing. Resolves to the report
   * otherwise, so the caller can log the yellow ones.
   */
  assertTierReady(settings: TierSettings, opts?: ProbeOptions): Promise<ProbeReport>;
}

export const createTierDetector = (probes: TierProbes): TierDetector => {
  const caps = (opts: ProbeOptions) => ({
    timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    slowMs: opts.slowMs ?? DEFAULT_SLOW_MS,
  });

  const detector: TierDetector = {
    async probePostgres(url, opts = {}) {
      const target = postgresTarget(url);
      if ('service' in target) return target;
      const { timeoutMs, slowMs } = caps(opts);
      return gradePostgres(url, target, await probes.postgres(url, { timeoutMs }), slowMs);
    },
    async probeValkey(url, opts = {}) {
      const target = valkeyTarget(url);
      if ('service' in target) return target;
      const { timeoutMs, slowMs } = caps(opts);
      return gradeValkey(url, target, await probes.valkey(url, { timeoutMs }), slowMs);
    },
    async probeS3(endpoint, opts = {}) {
      const target = s3Target(endpoint);
      if ('service' in target) return target;
      const { timeoutMs, slowMs } = caps(opts);
      return gradeS3(endpoint, target, await probes.s3(endpoint, { timeoutMs }), slowMs);
    },
    async probeDataDir(dir, opts = {}) {
      return gradeDataDir(await probes.dataDir(dir, { timeoutMs: caps(opts).timeoutMs }));
    },
    async probeTier(settings, opts = {}) {
      const run = (s: ProbeService): Promise<Probe> => {
        switch (s) {
          case 'data-dir':
            return detector.probeDataDir(settings.dataDir, opts);
          case 'postgres':
            return settings.databaseUrl
              ? detector.probePostgres(settings.databaseUrl, opts)
              : Promise.resolve(
                  red(
                    'postgres',
                    'unknown',
                    null,
                    `tier ${settings.tier} needs PostgreSQL but DATABASE_URL is not set`,
                    'set DATABASE_URL (--database-url)',
                  ),
                );
          case 'valkey':
            return settings.valkeyUrl
              ? detector.probeValkey(settings.valkeyUrl, opts)
              : Promise.resolve(
                  red(
                    'valkey',
                    'unknown',
                    null,
                    'tier federated needs Valkey/Redis but VALKEY_URL is not set',
                    'set VALKEY_URL or REDIS_URL (--valkey-url)',
                  ),
                );
          case 's3':
            return detector.probeS3(settings.s3!.endpoint, opts);
        }
      };
      const secrets = [
        ...urlSecrets(settings.databaseUrl),
        ...urlSecrets(settings.valkeyUrl),
        ...urlSecrets(settings.s3?.endpoint),
        settings.s3?.secretKey,
      ];
      const found = (await Promise.all(probesFor(settings).map(run))).map((p) => ({
        ...p,
        message: redact(p.message, secrets),
        ...(p.remedy ? { remedy: redact(p.remedy, secrets) } : {}),
      }));
      return { tier: settings.tier, ok: found.every((p) => p.level !== 'red'), probes: found };
    },
    async assertTierReady(settings, opts = {}) {
      const report = await detector.probeTier(settings, opts);
      if (!report.ok) throw new TierNotReadyError(report);
      return report;
    },
  };
  return detector;
};

/**
 * The job sandbox as doctor reports it: yellow names the fallback in use (the manager starts
 * with it), red what would stop the executor. The check is the process executor's own
 * (src/adapters/executor-process/inspect.ts), passed in.
 */
export const probeJobSandbox = (
  check: () => { level: ProbeLevel; message: string; remedy?: string },
): Probe => {
  const started = Date.now();
  const { level, message, remedy } = check();
  return {
    service: 'job-sandbox',
    host: 'localhost',
    port: null,
    ok: level !== 'red',
    latency_ms: Date.now() - started,
    level,
    message,
    ...(remedy ? { remedy } : {}),
  };
};
