// The composition root: picks adapters for the tier and wires use cases, HTTP and loops.
// No singletons: several managers can live in one process (benchmarks, tests).
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { createProcessExecutor } from '../adapters/executor-process/index.ts';
import { PrometheusMetrics } from '../adapters/metrics/prometheus-metrics.ts';
import { AccessTokenCache } from '../adapters/oidc/token-exchange.ts';
import { createHttpPeerClient } from '../adapters/peer-http/http-peer-client.ts';
import { createSecretBox, loadSecretKey } from '../adapters/secret-box/aes-gcm-box.ts';
import { resolveAdminPassword } from '../app/admin-password.ts';
import { createAuthenticator } from '../app/authenticate.ts';
import { BucketUseCases } from '../app/buckets.ts';
import { RefreshTokens, SEALED_PREFIX } from '../app/credentials/refresh-tokens.ts';
import { DelegatedMirror } from '../app/federation/delegated-mirror.ts';
import { createDelegationCredentials } from '../app/federation/delegation-credentials.ts';
import { DelegationTriggers } from '../app/federation/delegation-triggers.ts';
import { Delegator, replicasOf, resolveDelegationToken } from '../app/federation/delegator.ts';
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
import { PeriodicLoop } from '../worker/periodic.ts';
import {
  pruneOutbox,
  reofferWaitingJobs,
  sweepDeadReplicas,
  writeHeartbeat,
} from '../worker/replica-sweeps.ts';
import { StatusCache } from '../worker/status-cache.ts';
import { readBuildInfo } from './build-info.ts';
import { openTransferSecrets, replicaTargets, sharedStatus } from './delegation-wiring.ts';
import { createLogger } from './logger.ts';
import { createStorageResolver, type ObjectStorage, openObjectStorage } from './object-storage.ts';
import { bucketHooks, cacheHooks } from './service-hooks.ts';
import { leaderLoopsFor, openQueue } from './tier-wiring.ts';

export interface Manager {
  readonly config: Config;
  readonly store: Store;
  readonly http: FastifyInstance;
  readonly logger: Logger;
  readonly runner: JobRunner;
  readonly storage: ObjectStorage;
  readonly outbox: OutboxWorker;
  readonly statusCache: StatusCache;
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
  /** Randomness for the random delegation policy (seedable in tests). */
  random?: () => number;
}

// Each tier loads only its own driver: the local tier never loads pg, the others never PGlite.
export const openStore = async (config: Config): Promise<Store> => {
  if (config.databaseUrl) {
    const { PostgresStore } = await import('../adapters/store-postgres/postgres-store.ts');
    return PostgresStore.open(config.databaseUrl);
  }
  const { PgliteStore } = await import('../adapters/store-pglite/pglite-store.ts');
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
    const auth = createAuthenticator({
      admin: admin.check,
      verifier,
      delegation: (token) => resolveDelegationToken(store, token),
    });
    const build = readBuildInfo();
    const nodes = createNodes(config.cpusMillis, config.memoryBytes, config.nodes);
    const box = createSecretBox(await loadSecretKey(config.secretKey, config.dataDir));

    const storage = await openObjectStorage(config, store, logger);
    closers.unshift(() => storage.close());
    const peers = createHttpPeerClient({ timeoutMs: 10_000 });
    closers.unshift(() => peers.close());
    const resolver = createStorageResolver({ local: storage.local, clusterId: config.clusterId, peers });
    closers.unshift(() => resolver.close());
    const executor =
      opts.executor ?? createProcessExecutor({ workRoot: config.workDir, logger, sandbox: 'auto' });
    closers.unshift(() => executor.close());
    const isolationNote = (executor as { isolationNote?: string }).isolationNote;
    if (executor.isolation !== 'bubblewrap') {
      logger.warn({ isolation: executor.isolation }, `job isolation: ${isolationNote ?? executor.isolation}`);
    }

    const serviceCache = new ServiceCache(store);
    const refreshTokens = new RefreshTokens({
      settings: store,
      box,
      issuers: config.oidcIssuers,
      client: config.oidcClient,
      cache: new AccessTokenCache(),
    });
    const credentials = createDelegationCredentials({ refreshTokens, logger });
    const statusCache = new StatusCache({
      peers,
      targets: () => replicaTargets(serviceCache, credentials),
      logger,
      // Replicas sharing a database share one poller: the leader.
      shared: config.databaseUrl ? sharedStatus(store) : undefined,
    });
    closers.unshift(async () => statusCache.stop());
    const metrics = new PrometheusMetrics({
      clusterId: config.clusterId,
      jobs: () => store.countJobs(),
      pendingOutbox: () => store.pendingOutboxCount(),
      services: async () => (await serviceCache.list()).length,
      clusters: () => statusCache.all(),
    });
    const delegator = new Delegator({
      metrics,
      store,
      settings: store,
      cache: statusCache,
      peers,
      credentials,
      clusterId: config.clusterId,
      random: opts.random ?? Math.random,
      logger,
      openSealed: (s) => box.open(s),
    });

    const queue = await openQueue(config, store);
    closers.unshift(() => queue.close());
    const runner = new JobRunner({
      store,
      queue,
      runnerId: config.replicaId,
      services: serviceCache,
      executor,
      storage: resolver,
      nodes,
      clock: systemClock,
      defaultTimeoutMs: config.jobTimeoutMs,
      logger,
      openSealed: (s) => box.open(s),
      metrics,
      canDelegate: async (name) => {
        const svc = await serviceCache.get(name);
        return !!svc && replicasOf(svc).length > 0;
      },
    });
    closers.unshift(() => runner.stop());
    const delegation = new DelegationTriggers({
      store,
      services: serviceCache,
      delegator,
      nodes: () => runner.nodes,
      wakeRunner: () => runner.wake(),
      runnerId: config.replicaId,
      clock: systemClock,
      logger,
    });
    const mirror = new DelegatedMirror({
      store,
      services: serviceCache,
      peers,
      credentials,
      clock: systemClock,
    });
    const sweeps = { store, queue, clock: systemClock, replicaId: config.replicaId, logger };
    // Every replica beats; the leader alone runs the loops that must not run twice.
    const heartbeat = new PeriodicLoop(
      'heartbeat',
      () => writeHeartbeat(store, config.replicaId, systemClock),
      2000,
      logger,
    );
    const leaderLoops = [
      new PeriodicLoop('rescheduler', () => delegation.reschedule(), 1000, logger),
      new PeriodicLoop('delegated-mirror', () => mirror.sync(), 1500, logger),
      new PeriodicLoop('dead-replicas', () => sweepDeadReplicas(sweeps), 5000, logger),
      new PeriodicLoop('re-offer', () => reofferWaitingJobs(sweeps), 5000, logger),
      new PeriodicLoop('outbox-prune', () => pruneOutbox(sweeps), 600_000, logger),
    ];
    const intake = new JobIntake({
      store,
      queue,
      services: serviceCache,
      auth,
      clusterId: config.clusterId,
      onStored: () => runner.wake(),
      delegateAtIntake: (id, svc) => delegation.atIntake(id, svc),
      seal: (plain) => box.seal(plain),
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
      hooks: [
        refreshTokens.hooks(),
        bucketHooks(storage.local, config.clusterId),
        cacheHooks(serviceCache, runner, store),
      ],
    });
    const outbox = new OutboxWorker({
      store,
      peers,
      clock: systemClock,
      logger,
      openPayload: (payload) => openTransferSecrets(payload, refreshTokens),
      resolveTarget: async (t) => {
        if (t.auth.kind !== 'service-owner') return t;
        const token = await refreshTokens.accessToken(t.auth.service).catch(() => undefined);
        return { ...t, auth: token ? { kind: 'bearer', token } : { kind: 'none' } };
      },
    });
    const background = await leaderLoopsFor(config, {
      onElected: () => {
        logger.info({ replica: config.replicaId }, 'this replica leads the background loops');
        statusCache.lead(true);
        outbox.start();
        if (opts.runJobs !== false) for (const l of leaderLoops) l.start();
      },
      onDemoted: async () => {
        statusCache.lead(false);
        await outbox.stop();
        for (const l of leaderLoops) await l.stop();
      },
      logger,
    });
    closers.unshift(async () => {
      await background.stop();
      await heartbeat.stop();
      await outbox.stop();
      for (const l of leaderLoops) await l.stop();
    });
    const federation = new FederationUseCases({
      store,
      services,
      peers,
      resolver: clustersMapResolver(),
      outbox,
      clusterId: config.clusterId,
      // Read at use: with port 0 it is only known after listen().
      get publicUrl() {
        return config.publicUrl;
      },
      ownerToken: {
        seal: (plain) => `${SEALED_PREFIX}${box.seal(plain)}`,
        sealedFor: (service) => refreshTokens.sealedForTransfer(service),
      },
    });
    const buckets = new BucketUseCases({
      objects: storage.local,
      store,
      catalog: { listServices: () => serviceCache.list() },
    });
    const system = new SystemUseCases({
      build,
      clusterId: config.clusterId,
      // Read at use: with port 0 it is only known after listen().
      get publicUrl() {
        return config.publicUrl;
      },
      tier: config.tier,
      executor: { kind: executor.kind, isolation: executor.isolation, note: isolationNote },
      oidcIssuers: config.oidcIssuers,
      nodes: () => runner.nodes,
      jobs: store,
      objects: storage.local,
      storageCredentialsFor: async (p) => storage.credentialsFor(p, (q, bucket) => buckets.mayUse(q, bucket)),
    });
    const ctx: HttpContext = {
      services,
      system,
      auth,
      bodyLimitBytes: config.bodyLimitBytes,
      intake,
      logs: new JobLogs({ store, services, runner, mirror }),
      sync: { executor, storage: resolver, runner, defaultTimeoutMs: config.jobTimeoutMs },
      buckets,
      federation,
      metrics,
    };
    const http = await buildHttpServer(ctx, { logger, version: build.version });
    closers.unshift(() => http.close());
    if (opts.runJobs !== false) await runner.start();
    heartbeat.start();
    statusCache.start();
    await background.start();

    let closed = false;
    return {
      config,
      store,
      http,
      logger,
      runner,
      storage,
      outbox,
      statusCache,
      generatedAdminPassword: admin.generated,
      async listen() {
        const bound = await http.listen({ port: config.port, host: config.host });
        if (!config.publicUrlConfigured && config.port === 0) {
          const { port } = new URL(bound);
          config.publicUrl = config.publicUrl.replace(/:0$/, `:${port}`);
        }
        return bound;
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
