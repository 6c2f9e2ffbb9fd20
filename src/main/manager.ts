// The composition root: picks adapters for the tier and wires use cases, HTTP and loops.
// No singletons: several managers can live in one process (benchmarks, tests).
import { mkdir } from 'node:fs/promises';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { PrometheusMetrics } from '../adapters/metrics/prometheus-metrics.ts';
import { AccessTokenCache } from '../adapters/oidc/token-exchange.ts';
import { createPeerClient } from '../adapters/peer-mtls/mtls-peer-client.ts';
import { createSecretBox, loadSecretKey } from '../adapters/secret-box/aes-gcm-box.ts';
import { resolveAdminPassword } from '../app/admin-password.ts';
import { AuditQueries } from '../app/audit/audit-queries.ts';
import { AuditTrail } from '../app/audit/audit-trail.ts';
import { createAuthenticator } from '../app/authenticate.ts';
import { BucketUseCases } from '../app/buckets.ts';
import { RefreshTokens } from '../app/credentials/refresh-tokens.ts';
import { DelegatedMirror } from '../app/federation/delegated-mirror.ts';
import { createDelegationCredentials } from '../app/federation/delegation-credentials.ts';
import { DelegationTriggers } from '../app/federation/delegation-triggers.ts';
import { canDelegateFrom, Delegator, resolveDelegationToken } from '../app/federation/delegator.ts';
import { FederationUseCases } from '../app/federation/federation-use-cases.ts';
import { peerResolver } from '../app/federation/peer-resolver.ts';
import { WorkerTokens } from '../app/federation/worker-tokens.ts';
import { WorkerTombstones } from '../app/federation/worker-tombstones.ts';
import { JobInputs } from '../app/job-inputs.ts';
import { JobIntake } from '../app/jobs/job-intake.ts';
import { JobLogs } from '../app/jobs/job-logs.ts';
import { JobRunner } from '../app/jobs/job-runner.ts';
import { ManagerLog } from '../app/manager-log.ts';
import { PeerFederation } from '../app/peering/peer-federation.ts';
import { QueryRows } from '../app/peering/query-rows.ts';
import { Quotas } from '../app/quotas.ts';
import { RecentRunTimes, recordingRunTimes } from '../app/run-times.ts';
import { ServiceCache } from '../app/service-cache.ts';
import { ServiceDeployment } from '../app/service-deployment.ts';
import { newServiceToken, ServiceUseCases } from '../app/services.ts';
import { StorageTriggers } from '../app/storage-triggers.ts';
import { SystemUseCases } from '../app/system.ts';
import { UsageMetrics } from '../app/usage-metrics.ts';
import { Volumes } from '../app/volumes.ts';
import type { Config } from '../config/config.ts';
import { LoginThrottle } from '../core/auth/login-throttle.ts';
import { createNodes } from '../core/capacity.ts';
import { parsePeerAllow } from '../core/federation/peer-allow.ts';
import type { Executor, RateLimiter, Store, TokenVerifier } from '../core/ports.ts';
import { systemClock } from '../core/ports.ts';
import { boundPublicUrl } from '../core/public-url.ts';
import { storeLocation } from '../core/tier.ts';
import type { Tracing } from '../core/tracing.ts';
import type { HttpContext } from '../http/context.ts';
import { auditRoutes } from '../http/routes/audit.ts';
import { federatedQueryRoutes } from '../http/routes/federated-query.ts';
import { buildHttpServer } from '../http/server.ts';
import { auditSweepIntervalMs, moveOldAuditRows } from '../worker/audit-sweep.ts';
import {
  pruneOutbox,
  reofferWaitingJobs,
  sweepDeadInstances,
  writeHeartbeat,
} from '../worker/instance-sweeps.ts';
import { OutboxWorker } from '../worker/outbox-worker.ts';
import { PeriodicLoop } from '../worker/periodic.ts';
import { StatusCache } from '../worker/status-cache.ts';
import { readBuildInfo } from './build-info.ts';
import { ReplicaIndex, replicaSnapshots, sharedStatus } from './delegation-wiring.ts';
import { createExecutor, followClusterCapacity, kubernetesVersionOf } from './executor-wiring.ts';
import { createLogger, LogRing } from './logger.ts';
import { createStorageResolver, type ObjectStorage, openObjectStorage } from './object-storage.ts';
import { createPeering } from './peering-wiring.ts';
import { bucketHooks, cacheHooks, exposeHooks, namespaceHooks } from './service-hooks.ts';
import { leaderLoopsFor, openQueue, openRateLimiter } from './tier-wiring.ts';
import { createTracing } from './tracing-wiring.ts';

export interface Manager {
  readonly config: Config;
  readonly store: Store;
  readonly http: FastifyInstance;
  readonly logger: Logger;
  readonly runner: JobRunner;
  readonly storage: ObjectStorage;
  readonly outbox: OutboxWorker;
  readonly statusCache: StatusCache;
  /** The manager's tracing (the no-op unless on); forceFlush before reading a test's exporter. */
  readonly tracing: Tracing;
  /** Clear admin password, only on the start that generated it (print it once). */
  readonly generatedAdminPassword: string | undefined;
  /** Starts listening; resolves to the bound URL. */
  listen(): Promise<string>;
  /** The address other clusters reach this manager at (with port 0: the bound port, once listening). */
  publicUrl(): string;
  close(): Promise<void>;
}

export interface ManagerOptions {
  logger?: Logger;
  /** Where the manager's own logger writes (default stdout); its latest lines also go to GET /system/logs. */
  logDestination?: { write(line: string): void };
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
  /** false: nothing records audit rows, neither the peer channel nor the outbox (benchmarks
   * measuring the audit's cost). */
  audit?: boolean;
  /** A rate limiter made by the caller (tests of an unreachable Valkey); else by tier. */
  rateLimit?: RateLimiter;
  /**
   * Tracing on, into this exporter (tests: an in-memory one), whatever the environment says.
   * Without it tracing follows the standard OTEL_* variables (docs/operations.md).
   */
  traceExporter?: SpanExporter;
}

// Each tier loads only its own driver: the local tier never loads pg, the others never PGlite.
export const openStore = async (config: Config): Promise<Store> => {
  const at = storeLocation(config);
  if (at.kind === 'postgres') {
    const { PostgresStore } = await import('../adapters/store-postgres/postgres-store.ts');
    return PostgresStore.open(at.url);
  }
  const { PgliteStore } = await import('../adapters/store-pglite/pglite-store.ts');
  return PgliteStore.open(at.dir);
};

const createVerifier = async (config: Config, logger: Logger): Promise<TokenVerifier | undefined> => {
  if (config.oidcIssuers.length === 0) return undefined;
  const { createOidcTokenVerifier } = await import('../adapters/oidc/token-verifier.ts');
  return createOidcTokenVerifier({ issuers: config.oidcIssuers, logger });
};

export const createManager = async (config: Config, opts: ManagerOptions = {}): Promise<Manager> => {
  const logRing = opts.logger ? undefined : new LogRing();
  const logger =
    opts.logger ??
    createLogger({
      level: config.logLevel,
      clusterId: config.clusterId,
      destination: opts.logDestination,
      ring: logRing,
    });
  // The data dir holds keys and the database: only the manager may read it.
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const closers: Array<() => Promise<void>> = [];
  // Read at use: with port 0 the port is only known once listening.
  let listeningAt: string | undefined;
  const publicUrl = (): string => listeningAt ?? config.publicUrl;
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
    const tracing = await createTracing({
      clusterId: config.clusterId,
      version: build.version,
      env: process.env,
      exporter: opts.traceExporter,
    });
    closers.push(() => tracing.shutdown());
    const nodes = createNodes(config.cpusMillis, config.memoryBytes, config.nodes);
    const box = createSecretBox(await loadSecretKey(config.secretKey, config.dataDir));

    const storage = await openObjectStorage(config, store, logger);
    closers.unshift(() => storage.close());
    // Every peer request and federation change, hash-chained; drops are counted in /metrics
    // (the sink is made below, read at each drop).
    const audit = new AuditTrail({
      store: store.audit,
      log: logger,
      metrics: { auditRows: (outcome, n) => metrics.auditRows(outcome, n) },
    });
    closers.unshift(() => audit.close());
    const rateLimit = opts.rateLimit ?? (await openRateLimiter(config));
    closers.unshift(() => rateLimit.close());
    // Peering first: its peer records are federation targets (mTLS), tried before `clusters`.
    const peering = await createPeering({
      config,
      store,
      box,
      logger,
      publicUrl,
      audit: opts.audit === false ? undefined : audit,
      rateLimit,
      tracing,
    });
    closers.unshift(() => peering.close());
    const peers = createPeerClient({
      timeoutMs: 10_000,
      allow: config.peerAllow ? parsePeerAllow(config.peerAllow.join(',')) : undefined,
      mtls: peering.mtls,
      traceHeaders: tracing.enabled ? () => tracing.outgoingHeaders() : undefined,
    });
    closers.unshift(() => peers.close());
    const inputs = new JobInputs({ buckets: store, clusterId: config.clusterId });
    const resolver = createStorageResolver({
      local: storage.local,
      clusterId: config.clusterId,
      peers,
      inputs,
    });
    closers.unshift(() => resolver.close());
    const executor =
      opts.executor ??
      (await createExecutor(config, {
        services: store,
        logger,
        // A pod reaches the store itself: keys with a delegation's scope (the service's inputs
        // read, outputs written). Called at job time, once `buckets` exists.
        storageFor: async (service) =>
          storage.jobCredentials(service, (access) =>
            buckets.allows({ kind: 'delegation', service }, access),
          ),
      }));
    closers.unshift(() => executor.close());
    closers.unshift(await followClusterCapacity(executor, nodes, logger));
    const kubernetesVersion = await kubernetesVersionOf(executor, logger);
    const isolationNote = (executor as { isolationNote?: string }).isolationNote;
    if (executor.kind === 'process' && executor.isolation !== 'bubblewrap') {
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
    const credentials = createDelegationCredentials({ peers: peering.records, refreshTokens, logger });
    // Keyed by endpoint and credentials: each service sees clusters as it reaches them.
    const replicaIndex = new ReplicaIndex({
      services: serviceCache,
      credentials,
      endpointOf: (service, clusterId) =>
        peering.records.target(clusterId, service)?.endpoint ?? service.clusters?.[clusterId]?.endpoint,
    });
    const statusCache = new StatusCache({
      peers,
      targets: () => replicaIndex.collect(),
      logger,
      // Instances sharing a database share one poller: the leader.
      shared: config.databaseUrl ? sharedStatus(store) : undefined,
    });
    closers.unshift(async () => statusCache.stop());
    const metrics = new PrometheusMetrics({
      clusterId: config.clusterId,
      jobs: () => store.countJobs(),
      pendingOutbox: () => store.pendingOutboxCount(),
      services: async () => (await serviceCache.list()).length,
      clusters: () => statusCache.byCluster(),
    });
    const snapshots = replicaSnapshots(replicaIndex, statusCache);
    const delegator = new Delegator({
      metrics,
      store,
      settings: store,
      cache: snapshots,
      peers,
      credentials,
      clusterId: config.clusterId,
      random: opts.random ?? Math.random,
      logger,
      openSealed: (s) => box.open(s),
      tracing,
      holdSeconds: config.delegationHoldSeconds,
    });

    const runTimes = new RecentRunTimes();
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
      metrics: recordingRunTimes(metrics, runTimes),
      canDelegate: canDelegateFrom(serviceCache),
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
      clusterId: config.clusterId,
      logger,
    });
    const sweeps = { store, queue, clock: systemClock, instanceId: config.replicaId, logger };
    const tombstones = new WorkerTombstones({ settings: store, clock: systemClock });
    // Every instance beats; the leader alone runs the loops that must not run twice.
    const heartbeat = new PeriodicLoop(
      'heartbeat',
      () => writeHeartbeat(store, config.replicaId, systemClock),
      2000,
      logger,
    );
    const leaderLoops = [
      new PeriodicLoop('rescheduler', () => delegation.reschedule(), 1000, logger),
      new PeriodicLoop('delegated-mirror', () => mirror.sync(), 1500, logger),
      new PeriodicLoop('dead-instances', () => sweepDeadInstances(sweeps), 5000, logger),
      new PeriodicLoop('re-offer', () => reofferWaitingJobs(sweeps), 5000, logger),
      new PeriodicLoop('outbox-prune', () => pruneOutbox(sweeps), 600_000, logger),
      new PeriodicLoop('tombstone-prune', async () => void (await tombstones.prune()), 600_000, logger),
      new PeriodicLoop(
        'audit-cold',
        async () => {
          await moveOldAuditRows({
            audit: store.audit,
            clock: systemClock,
            hotMs: config.auditColdAfterMs,
            log: logger,
          });
        },
        auditSweepIntervalMs(config.auditColdAfterMs),
        logger,
      ),
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
      checkEvent: (svc, principal, event, origin) => inputs.checkEventOf(svc, principal, event, origin),
    });
    const triggers = new StorageTriggers({ store, intake, inputs, clusterId: config.clusterId, logger });
    storage.onObjectCreated((e) => {
      triggers
        .objectCreated(e)
        .catch((err) => logger.error({ err: (err as Error).message }, 'storage trigger failed'));
    });

    const services = new ServiceUseCases({
      store,
      catalog: serviceCache,
      clusterId: config.clusterId,
      tombstones,
      hooks: [
        refreshTokens.hooks(),
        bucketHooks({ objects: storage.local, store, clusterId: config.clusterId, log: logger }),
        cacheHooks(serviceCache, runner, store),
        ...(executor.exposed ? [exposeHooks(executor.exposed)] : []),
        namespaceHooks({ executor, services: store, log: logger }),
      ],
    });
    const outbox = new OutboxWorker({
      store,
      peers,
      clock: systemClock,
      logger,
      ownerToken: refreshTokens,
      audit: opts.audit === false ? undefined : audit,
      grantOf: (peer) => {
        const p = peering.records.find(peer);
        return p && { grantId: p.grantId, subject: p.subject };
      },
      tracing,
    });
    const background = await leaderLoopsFor(config, {
      onElected: () => {
        // The line's text is what operators and tests look for; the field names the instance.
        logger.info({ instance: config.replicaId }, 'this replica leads the background loops');
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
      snapshots,
      store,
      services,
      resolver: peerResolver(peering.records),
      applier: outbox,
      workerTokens: new WorkerTokens({
        settings: store,
        newToken: newServiceToken,
        clusterId: config.clusterId,
      }),
      clusterId: config.clusterId,
      publicUrl,
      ownerToken: refreshTokens,
    });
    const buckets = new BucketUseCases({
      objects: storage.local,
      store,
      clusterId: config.clusterId,
      catalog: { listServices: () => serviceCache.list() },
    });
    const system = new SystemUseCases({
      peerChannelUrl: () => peering.peerChannelUrl(),
      build,
      name: config.name,
      clusterId: config.clusterId,
      publicUrl,
      tier: config.tier,
      executor: { kind: executor.kind, isolation: executor.isolation, note: isolationNote },
      kubernetesVersion,
      oidcIssuers: config.oidcIssuers,
      nodes: () => runner.nodes,
      jobs: store,
      objects: storage.local,
      meanRunSeconds: () => runTimes.mean(),
      storageCredentialsFor: async (p) => storage.credentialsFor(p, (q, access) => buckets.allows(q, access)),
    });
    const logs = new JobLogs({ store, services, runner, mirror });
    peering.serveFederation(
      new PeerFederation({
        federation,
        services,
        intake,
        logs,
        status: () => system.status(),
        clusterId: config.clusterId,
        audit: logger,
      }),
      config.bodyLimitBytes,
    );
    const federatedQuery = peering.queries(
      new QueryRows({
        services,
        jobs: store,
        logs,
        buckets,
        status: () => system.status(),
        search: store,
        clusterId: config.clusterId,
      }),
      metrics,
    );
    const ctx: HttpContext = {
      services,
      system,
      auth,
      bodyLimitBytes: config.bodyLimitBytes,
      tracing,
      intake,
      logs,
      sync: { executor, storage: resolver, runner, defaultTimeoutMs: config.jobTimeoutMs },
      buckets,
      federation,
      metrics,
      plugins: [
        peering.routes,
        auditRoutes(new AuditQueries(store.audit)),
        federatedQueryRoutes(federatedQuery),
      ],
      loginThrottle: new LoginThrottle(),
      managerLog: new ManagerLog(logRing),
      usage: new UsageMetrics({ services, jobs: store, clock: systemClock }),
      quotas: new Quotas(executor),
      volumes: new Volumes(executor),
      deployment: new ServiceDeployment({
        services,
        executor,
        namespace: config.executor.kind === 'kubernetes' ? config.executor.namespace : 'flotilla-svc',
      }),
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
      tracing,
      generatedAdminPassword: admin.generated,
      publicUrl,
      async listen() {
        const bound = await http.listen({ port: config.port, host: config.host });
        listeningAt = boundPublicUrl(config, bound);
        await peering.listen();
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
