// Picks the Executor by configuration. The Kubernetes client is imported only when asked
// for, so the local tier never loads it.

import type { Logger } from 'pino';
import { createProcessExecutor } from '../adapters/executor-process/index.ts';
import type { Config } from '../config/config.ts';
import type { Executor, ServiceStore } from '../core/ports.ts';

export const createExecutor = async (
  config: Config,
  deps: { services: Pick<ServiceStore, 'getService'>; logger: Logger },
): Promise<Executor> => {
  const { logger } = deps;
  if (config.executor.kind === 'process') {
    return createProcessExecutor({ workRoot: config.workDir, logger, sandbox: 'auto' });
  }
  const { kubeconfig, namespace } = config.executor;
  const { KubeConfig } = await import('@kubernetes/client-node');
  const { createKubernetesExecutor } = await import('../adapters/executor-kubernetes/index.ts');
  const kubeConfig = new KubeConfig();
  if (kubeconfig) kubeConfig.loadFromFile(kubeconfig);
  else kubeConfig.loadFromCluster();
  const server = kubeConfig.getCurrentCluster()?.server;
  logger.info(
    { namespace, server, from: kubeconfig ? 'kubeconfig' : 'in-cluster' },
    'jobs run as Kubernetes Jobs',
  );
  return createKubernetesExecutor({
    kubeConfig,
    namespace,
    resolveService: (name) => deps.services.getService(name),
    logger,
  });
};
