// The composition root: picks adapters for the tier and wires use cases, HTTP and loops.
// No singletons: several managers can live in one process (benchmarks, tests).
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { PgliteStore } from '../adapters/store-pglite/pglite-store.ts';
import { PostgresStore } from '../adapters/store-postgres/postgres-store.ts';
import { resolveAdminPassword } from '../app/admin-password.ts';
import { createAuthenticator } from '../app/authenticate.ts';
import { ServiceUseCases } from '../app/services.ts';
import { SystemUseCases } from '../app/system.ts';
import type { Config } from '../config/config.ts';
import { createNodes } from '../core/capacity.ts';
import type { Store, TokenVerifier } from '../core/ports.ts';
import type { HttpContext } from '../http/context.ts';
import { buildHttpServer } from '../http/server.ts';
import { readBuildInfo } from './build-info.ts';
import { createLogger } from './logger.ts';

export interface Manager {
  readonly config: Config;
  readonly store: Store;
  readonly http: FastifyInstance;
  readonly logger: Logger;
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
  const store = opts.store ?? (await openStore(config));
  try {
    const admin = await resolveAdminPassword(config.adminPassword, store);
    const verifier = opts.verifier ?? (await createVerifier(config, logger));
    const build = readBuildInfo();
    const nodes = createNodes(config.cpusMillis, config.memoryBytes, config.nodes);

    const services = new ServiceUseCases({ store, clusterId: config.clusterId });
    const system = new SystemUseCases({
      build,
      clusterId: config.clusterId,
      publicUrl: config.publicUrl,
      tier: config.tier,
      executor: { kind: 'process', isolation: 'none' },
      oidcIssuers: config.oidcIssuers,
      nodes: () => nodes,
      jobs: store,
    });
    const ctx: HttpContext = {
      services,
      system,
      auth: createAuthenticator({ admin: admin.check, verifier }),
      bodyLimitBytes: config.bodyLimitBytes,
    };
    const http = await buildHttpServer(ctx, { logger, version: build.version });

    return {
      config,
      store,
      http,
      logger,
      generatedAdminPassword: admin.generated,
      async listen() {
        return http.listen({ port: config.port, host: config.host });
      },
      async close() {
        await http.close();
        await store.close();
      },
    };
  } catch (e) {
    await store.close();
    throw e;
  }
};
