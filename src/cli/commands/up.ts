// `flotilla up`: starts a manager with the flags of DESIGN §2.
import type { Command } from 'commander';
import { formatProbe, TierNotReadyError } from '../../app/tier/detector.ts';
import { ConfigError, FLAGS, type FlagValues, loadConfig } from '../../config/config.ts';
import type { Manager } from '../../main/manager.ts';
import { collectStartupGarbage, tuneForSmallFootprint } from '../../main/runtime-tuning.ts';
import { assertTierReady } from '../../main/tier-tools.ts';

const optionName = (flag: string): string =>
  flag.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

export const registerUp = (program: Command): void => {
  const cmd = program.command('up').description('start a manager for this cluster');
  for (const [key, spec] of Object.entries(FLAGS)) {
    const dflt = spec.default !== undefined ? ` (default ${spec.default})` : '';
    cmd.option(`${spec.flag} <value>`, `env ${spec.env.join(' or ')}${dflt}`);
    void key;
  }
  cmd.action(async (opts: Record<string, string>) => {
    const flags: FlagValues = {};
    for (const [key, spec] of Object.entries(FLAGS)) {
      const v = opts[optionName(spec.flag)];
      if (v !== undefined) flags[key as keyof typeof FLAGS] = v;
    }
    let config: ReturnType<typeof loadConfig>;
    try {
      config = loadConfig(flags);
    } catch (e) {
      if (e instanceof ConfigError) {
        process.stderr.write(`flotilla up: ${e.message}\n`);
        process.exit(2);
      }
      throw e;
    }
    // Fail fast, naming what is missing, before anything is opened.
    try {
      const report = await assertTierReady(config);
      for (const p of report.probes.filter((x) => x.level === 'yellow')) {
        process.stderr.write(`flotilla up: warning: ${formatProbe(p)}\n`);
      }
    } catch (e) {
      if (e instanceof TierNotReadyError) {
        process.stderr.write(`flotilla up: ${e.message}\n`);
        process.exit(1);
      }
      throw e;
    }
    // Before the manager and its dependencies load: some settings act only on what comes after.
    tuneForSmallFootprint();
    let manager: Manager;
    try {
      const { createManager } = await import('../../main/manager.ts');
      manager = await createManager(config);
    } catch (e) {
      process.stderr.write(`flotilla up: cannot start: ${(e as Error).message}\n`);
      process.exit(1);
    }
    const url = await manager.listen().catch((e: Error) => {
      process.stderr.write(`flotilla up: cannot listen on ${config.host}:${config.port}: ${e.message}\n`);
      process.exit(1);
    });
    if (manager.generatedAdminPassword) {
      // Printed once: the next start finds the stored hash and prints nothing.
      process.stdout.write(
        `admin password (user oscar), shown only once: ${manager.generatedAdminPassword}\n`,
      );
    }
    process.stdout.write(
      `flotilla ${config.clusterId} listening on ${url} (tier ${config.tier}, data ${config.dataDir})\n`,
    );
    collectStartupGarbage();
    let closing = false;
    const shutdown = async (signal: string) => {
      if (closing) return;
      closing = true;
      manager.logger.info({ signal }, 'shutting down');
      const force = setTimeout(() => process.exit(1), 10_000);
      force.unref();
      await manager.close().catch(() => {});
      process.exit(0);
    };
    process.on('SIGINT', () => void shutdown('SIGINT'));
    process.on('SIGTERM', () => void shutdown('SIGTERM'));
  });
};
