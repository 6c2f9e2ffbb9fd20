// A manager stand-in for the re-attach tests: starts one job through the Kubernetes executor
// on the fake API server at argv[2] (namespace argv[3], job id argv[4]) and waits; the test
// kills it with SIGKILL, as a crash would.
import { KubeConfig } from '@kubernetes/client-node';
import { createKubernetesExecutor } from '../../src/adapters/executor-kubernetes/index.ts';

const [url, namespace, jobId] = process.argv.slice(2) as [string, string, string];
const kubeConfig = new KubeConfig();
kubeConfig.loadFromOptions({
  clusters: [{ name: 'fake', server: url, skipTLSVerify: true }],
  users: [{ name: 'u', token: 't' }],
  contexts: [{ name: 'c', cluster: 'fake', user: 'u', namespace }],
  currentContext: 'c',
});
const executor = createKubernetesExecutor({
  kubeConfig,
  namespace,
  resolveService: async () => ({ image: 'alpine' }),
});
await executor.run({
  jobId,
  serviceName: 'svc1',
  script: 'echo hi',
  event: '{}',
  env: { K: 'v' },
  cpuMillis: 200,
  memoryBytes: 256 * 1024 ** 2,
  timeoutMs: 600_000,
});
