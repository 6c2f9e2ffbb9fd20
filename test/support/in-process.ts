// An in-process manager on in-memory PGlite, driven with fastify's inject.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PgliteStore } from '../../src/adapters/store-pglite/pglite-store.ts';
import { type Config, loadConfig } from '../../src/config/config.ts';
import type { Store, TokenVerifier } from '../../src/core/ports.ts';
import { createManager, type Manager, type ManagerOptions } from '../../src/main/manager.ts';

export const ADMIN_PASSWORD = 'test-admin-pw';
export const basic = (password = ADMIN_PASSWORD, user = 'oscar') =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

export interface TestManager {
  manager: Manager;
  config: Config;
  store: Store;
  dataDir: string;
  close(): Promise<void>;
}

/** Starts a manager without listening; flags as `flotilla up` takes them. */
export const startInProcess = async (
  flags: Record<string, string> = {},
  opts: {
    store?: Store;
    verifier?: TokenVerifier;
    env?: NodeJS.ProcessEnv;
    /** More of createManager's options (a trace exporter, runJobs). */
    manager?: Omit<ManagerOptions, 'store' | 'verifier'>;
  } = {},
): Promise<TestManager> => {
  const dataDir = await mkdtemp(join(tmpdir(), 'flotilla-test-'));
  const config = loadConfig(
    { dataDir, adminPassword: ADMIN_PASSWORD, logLevel: 'silent', port: '0', ...flags },
    opts.env ?? {},
  );
  const store = opts.store ?? (await PgliteStore.open(undefined));
  const manager = await createManager(config, { ...opts.manager, store, verifier: opts.verifier });
  return {
    manager,
    config,
    store,
    dataDir,
    async close() {
      await manager.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
};
