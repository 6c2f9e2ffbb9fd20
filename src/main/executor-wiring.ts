// Picks the Executor by configuration. The Kubernetes client is imported only when asked
// for, so the local tier never loads it.

import type { Logger } from 'pino';
import type { KubernetesExecutor } from '../adapters/executor-kubernetes/index.ts';
import { createProcessExecutor } from '../adapters/executor-process/index.ts';
import type { Config } from '../config/config.ts';
import type { NodeState } from '../core/capacity.ts';
import type { Executor, ServiceStore, StorageCredentials } from '../core/ports.ts';

export const createExecutor = async (
  config: Config,
  deps: {
    services: Pick<ServiceStore, 'getService'>;
    logger: Logger;
    /** This cluster's store keys for a service's jobs (scoped), for pods that reach it themselves. */
    storageFor?: (service: string) => Promise<StorageCredentials | undefined>;
  },
): Promise<Executor> => {
  const { logger } = deps;
  if (config.executor.kind === 'process') {
    return createProcessExecutor({
      workRoot: config.workDir,
      logger,
      sandbox: 'auto',
      network: config.jobNetwork,
      jobUids: config.jobUids,
    });
  }
  const { kubeconfig, namespace } = config.executor;
  const { KubeConfig } = await import('@kubernetes/client-node');
  const { createKubernetesExecutor } = await import('../adapters/executor-kubernetes/index.ts');
  const kubeConfig = new KubeConfig();
  if (kubeconfig) kubeConfig.loadFromFile(kubeconfig);
  else kubeConfig.loadFromCluster();
  const server = kubeConfig.getCurrentCluster()?.server;
  if (config.executor.jobStorageKeys === 'manager' && config.s3) {
    logger.warn(
      '--job-storage-keys manager: job pods get the S3 keys of the manager, not keys scoped to their service',
    );
  }
  logger.info(
    { namespace, server, from: kubeconfig ? 'kubeconfig' : 'in-cluster' },
    'jobs run as Kubernetes Jobs',
  );
  return createKubernetesExecutor({
    kubeConfig,
    namespace,
    resolveService: (name) => deps.services.getService(name),
    storageFor: deps.storageFor,
    ingressHost: config.executor.ingressHost,
    logger,
  });
};

/**
 * With the Kubernetes executor, the runner's nodes follow the cluster's (first read awaited,
 * then every `intervalMs`); if the cluster cannot be read, the declared --cpus/--memory stay.
 * Returns the stop function.
 */
export const followClusterCapacity = async (
  executor: Executor,
  nodes: NodeState[],
  logger: Logger,
  intervalMs = 30_000,
): Promise<() => Promise<void>> => {
  const kube = executor as Partial<KubernetesExecutor>;
  if (executor.kind !== 'kubernetes' || !kube.clusterNodes) return async () => undefined;
  const { mergeCapacity } = await import('../adapters/executor-kubernetes/capacity.ts');
  const sync = async () => {
    try {
      const fresh = await kube.clusterNodes!();
      if (fresh.length === 0) throw new Error('no Ready, schedulable node');
      mergeCapacity(nodes, fresh);
    } catch (e) {
      logger.warn({ err: (e as Error).message }, 'cannot read the cluster nodes; capacity unchanged');
    }
  };
  await sync();
  const timer = setInterval(sync, intervalMs);
  timer.unref();
  return async () => clearInterval(timer);
};

/** The API server's version for /system/info (empty when not on Kubernetes or unreadable). */
export const kubernetesVersionOf = async (executor: Executor, logger: Logger): Promise<string> => {
  const kube = executor as Partial<KubernetesExecutor>;
  if (executor.kind !== 'kubernetes' || !kube.serverVersion) return '';
  try {
    return await kube.serverVersion();
  } catch (e) {
    logger.warn({ err: (e as Error).message }, 'cannot read the API server version');
    return '';
  }
};
