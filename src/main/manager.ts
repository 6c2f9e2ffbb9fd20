// The composition root: picks adapters for the tier and wires use cases, HTTP and loops.
// No singletons: several managers can live in one process (benchmarks, tests).
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { createProcessExecutor } from '../adapters/executor-process/index.ts';
import { createHttpPeerClient } from '../adapters/peer-http/http-peer-client.ts';
import { PgliteStore } from '../adapters/store-pglite/pglite-store.ts';
import { PostgresStore } from '../adapters/store-postgres/postgres-store.ts';
import { resolveAdminPassword } from '../app/admin-password.ts';
import { createAuthenticator } from '../app/authenticate.ts';
import { BucketUseCases } from '../app/buckets.ts';
import { FederationUseCases } from '../app/federation/federation-use-cases.ts';
import { clustersMapResolver } from '../app/federation/peer-resolver.ts';
import { JobIntake } from '../app/jobs/job-intake.ts';
import { JobLogs } from '../app/jobs/job-logs.ts';
import { JobRunner } from '../app/jobs/job-runner.ts';
import { ServiceCache } from '../app/service-cache.ts';
import { ServiceUseCases } from '../app/services.ts';
import { StorageTriggers } from '../app/storage-triggers.ts';
import { SystemUseCases } from '../app/system.ts';
import type { Config } from '../config/config.ts';
import { createNodes } from '../core/capacity.ts';
import type { Executor, Store, TokenVerifier } from '../core/ports.ts';
import { systemClock } from '../core/ports.ts';
import type { HttpContext } from '../http/context.ts';
import { buildHttpServer } from '../http/server.ts';
import { OutboxWorker } from '../worker/outbox-worker.ts';
import { readBuildInfo } from './build-info.ts';
import { createLogger } from './logger.ts';
import { type ObjectStorage, openObjectStorage } from './object-storage.ts';
import { bucketHooks, cacheHooks } from './service-hooks.ts';

export interface Manager {
  readonly config: Config;
  readonly store: Store;
  readonly http: FastifyInstance;
  readonly logger: Logger;
  readonly runner: JobRunner;
  readonly storage: ObjectStorage;
  readonly outbox: OutboxWorker;
  /** Clear admin password, only on the start that generated it (print it once). */
  readonly generatedAdminPassword: string | undefined;
  /** Starts listening; resolves to the bound URL. */
  listen(): Promise<string>;
  close(): Promise<void>;
}

export interface ManagerOptions {
  logger?: Logger;
  /** Overrides the OIDC verifier (tests of other ports). */
  verifier?: TokenVerifier;
  /** A store opened by the caller (several managers in one process, in-memory tests). */
  store?: Store;
  /** An executor made by the caller (benchmarks). */
  executor?: Executor;
  /** false: accept and store jobs but run none (intake benchmarks). */
  runJobs?: boolean;
}

export const openStore = async (config: Config): Promise<Store> => {
  if (config.databaseUrl) return PostgresStore.open(config.databaseUrl);
  return PgliteStore.open(join(config.dataDir, 'db'));
};

const createVerifier = async (config: Config, logger: Logger): Promise<TokenVerifier | undefined> => {
  if (config.oidcIssuers.length === 0) return undefined;
  const { createOidcTokenVerifier } = await import('../adapters/oidc/token-verifier.ts');
  return createOidcTokenVerifier({ issuers: config.oidcIssuers, logger });
};

export const createManager = async (config: Config, opts: ManagerOptions = {}): Promise<Manager> => {
  const logger = opts.logger ?? createLogger({ level: config.logLevel, clusterId: config.clusterId });
  // The data dir holds keys and the database: only the manager may read it.
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const closers: Array<() => Promise<void>> = [];
  const store = opts.store ?? (await openStore(config));
  closers.push(() => store.close());
  try {
    const admin = await resolveAdminPassword(config.adminPassword, store);
    const verifier = opts.verifier ?? (await createVerifier(config, logger));
    const auth = createAuthenticator({ admin: admin.check, verifier });
    const build = readBuildInfo();
    const nodes = createNodes(config.cpusMillis, config.memoryBytes, config.nodes);

    const storage = await openObjectStorage(config, store, logger);
    closers.unshift(() => storage.close());
    const executor =
      opts.executor ?? createProcessExecutor({ workRoot: config.workDir, logger, sandbox: 'auto' });
    closers.unshift(() => executor.close());
    const isolationNote = (executor as { isolationNote?: string }).isolationNote;
    if (executor.isolation !== 'bubblewrap') {
      logger.warn({ isolation: executor.isolation }, `job isolation: ${isolationNote ?? executor.isolation}`);
    }

    const serviceCache = new ServiceCache(store);
    const runner = new JobRunner({
      store,
      services: serviceCache,
      executor,
      storage: storage.resolver,
      nodes,
      clock: systemClock,
      defaultTimeoutMs: config.jobTimeoutMs,
      logger,
    });
    closers.unshift(() => runner.stop());
    const intake = new JobIntake({
      store,
      services: serviceCache,
      auth,
      clusterId: config.clusterId,
      onStored: () => runner.wake(),
    });
    const triggers = new StorageTriggers({ store, intake, clusterId: config.clusterId, logger });
    storage.onObjectCreated((e) => {
      triggers
        .objectCreated(e)
        .catch((err) => logger.error({ err: (err as Error).message }, 'storage trigger failed'));
    });

    const services = new ServiceUseCases({
      store,
      catalog: serviceCache,
      clusterId: config.clusterId,
      hooks: [bucketHooks(storage.local, config.clusterId), cacheHooks(serviceCache, runner)],
    });
    const peers = createHttpPeerClient({ timeoutMs: 10_000 });
    closers.unshift(() => peers.close());
    const outbox = new OutboxWorker({ store, peers, clock: systemClock, logger });
    closers.unshift(() => outbox.stop());
    const federation = new FederationUseCases({
      store,
      services,
      peers,
      resolver: clustersMapResolver(),
      outbox,
      clusterId: config.clusterId,
      publicUrl: config.publicUrl,
    });
    const system = new SystemUseCases({
      build,
      clusterId: config.clusterId,
      publicUrl: config.publicUrl,
      tier: config.tier,
      executor: { kind: executor.kind, isolation: executor.isolation, note: isolationNote },
      oidcIssuers: config.oidcIssuers,
      nodes: () => runner.nodes,
      jobs: store,
      objects: storage.local,
      storageCredentialsFor: async (p) => storage.credentialsFor(p),
    });
    const ctx: HttpContext = {
      services,
      system,
      auth,
      bodyLimitBytes: config.bodyLimitBytes,
      intake,
      logs: new JobLogs({ store, services, runner }),
      sync: { executor, storage: storage.resolver, runner, defaultTimeoutMs: config.jobTimeoutMs },
      buckets: new BucketUseCases({ objects: storage.local, store }),
      federation,
    };
    const http = await buildHttpServer(ctx, { logger, version: build.version });
    closers.unshift(() => http.close());
    if (opts.runJobs !== false) await runner.start();
    outbox.start();

    let closed = false;
    return {
      config,
      store,
      http,
      logger,
      runner,
      storage,
      outbox,
      generatedAdminPassword: admin.generated,
      async listen() {
        return http.listen({ port: config.port, host: config.host });
      },
      async close() {
        if (closed) return;
        closed = true;
        for (const close of closers)
          await close().catch((e) => logger.warn({ err: (e as Error).message }, 'close failed'));
      },
    };
  } catch (e) {
    for (const close of closers) await close().catch(() => {});
    throw e;
  }
};
