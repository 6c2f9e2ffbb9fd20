export {
  createKubernetesExecutor,
  type KubernetesExecutor,
  type KubernetesExecutorOptions,
  type KubeServiceSpec,
} from './kube-executor.ts';
export { buildJobObjects, DEFAULT_SUPERVISOR, type KubeJobInput, type SupervisorImage } from './objects.ts';
