// `--executor process|kubernetes`, `--kubeconfig`, `--namespace`: parsed by the config, and the
// composition root's pick runs a job on the fake API server through a kubeconfig file.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.ts';
import { createExecutor } from '../../src/main/executor-wiring.ts';
import { startFakeKubeApi } from '../support/fake-kube-api.ts';

const dir = mkdtempSync(join(tmpdir(), 'flotilla-wiring-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const base = { dataDir: join(dir, 'data') };

describe('executor selection', () => {
  it('defaults to the process executor', () => {
    expect(loadConfig(base, {}).executor).toEqual({ kind: 'process' });
  });

  it('reads --executor kubernetes with --kubeconfig and --namespace, or their environment twins', () => {
    expect(
      loadConfig({ ...base, executor: 'kubernetes', kubeconfig: '/k/config', namespace: 'jobs-a' }, {})
        .executor,
    ).toEqual({
      kind: 'kubernetes',
      kubeconfig: '/k/config',
      namespace: 'jobs-a',
      jobStorageKeys: 'scoped',
    });
    expect(
      loadConfig(base, { FLOTILLA_EXECUTOR: 'kubernetes', KUBECONFIG: '/e/kc', FLOTILLA_NAMESPACE: 'ns-e' })
        .executor,
    ).toEqual({ kind: 'kubernetes', kubeconfig: '/e/kc', namespace: 'ns-e', jobStorageKeys: 'scoped' });
    // no kubeconfig: in-cluster, which needs the service host Kubernetes sets in every pod
    expect(() => loadConfig({ ...base, executor: 'kubernetes' }, {})).toThrow(
      /--executor kubernetes needs --kubeconfig \(KUBECONFIG\) when not running inside a cluster/,
    );
    expect(
      loadConfig({ ...base, executor: 'kubernetes' }, { KUBERNETES_SERVICE_HOST: '10.0.0.1' }).executor,
    ).toEqual({
      kind: 'kubernetes',
      kubeconfig: undefined,
      namespace: 'flotilla-svc',
      jobStorageKeys: 'scoped',
    });
  });

  it('reads --ingress-host (FLOTILLA_INGRESS_HOST) for exposed services and refuses one that is not a DNS name', () => {
    const kube = { ...base, executor: 'kubernetes', kubeconfig: '/k/config' };
    expect(loadConfig({ ...kube, ingressHost: 'oscar.example.org' }, {}).executor).toMatchObject({
      ingressHost: 'oscar.example.org',
    });
    expect(loadConfig(kube, { FLOTILLA_INGRESS_HOST: 'apps.example.org' }).executor).toMatchObject({
      ingressHost: 'apps.example.org',
    });
    for (const bad of ['Oscar.Example.org', 'a..b', 'host/path', '-x.org', 'a b']) {
      expect(() => loadConfig({ ...kube, ingressHost: bad }, {})).toThrow(
        /--ingress-host \(FLOTILLA_INGRESS_HOST\) must be a DNS name/,
      );
    }
  });

  it('refuses an unknown executor and a namespace that is not a DNS label, naming the flag', () => {
    expect(() => loadConfig({ ...base, executor: 'docker' }, {})).toThrow(ConfigError);
    expect(() => loadConfig({ ...base, executor: 'docker' }, {})).toThrow(/--executor \(FLOTILLA_EXECUTOR\)/);
    expect(() => loadConfig({ ...base, executor: 'kubernetes', namespace: 'Bad_NS' }, {})).toThrow(
      /--namespace \(FLOTILLA_NAMESPACE\) must be a DNS label/,
    );
  });

  it('the composition root runs a job on the cluster a kubeconfig file names', async () => {
    const fake = await startFakeKubeApi({ kubelet: 'shell' });
    const kubeconfigPath = join(dir, 'kubeconfig.yaml');
    fake.writeKubeconfig(kubeconfigPath, 'jobs-a');
    const config = loadConfig(
      { ...base, executor: 'kubernetes', kubeconfig: kubeconfigPath, namespace: 'jobs-a' },
      {},
    );
    const executor = await createExecutor(config, {
      services: { getService: async () => ({ image: 'alpine' }) as never },
      logger: pino({ level: 'silent' }),
    });
    try {
      expect(executor.kind).toBe('kubernetes');
      const result = await executor.run({
        jobId: randomUUID(),
        serviceName: 's',
        cpuMillis: 200,
        memoryBytes: 256 * 1024 ** 2,
        script: 'echo "from $OSCAR_SERVICE_NAME"',
        event: '{}',
        env: {},
        timeoutMs: 10_000,
      });
      expect(result).toMatchObject({ exitCode: 0, stdout: 'from s\n' });
      expect(fake.received.map((r) => r.object.metadata.namespace)).toEqual(['jobs-a', 'jobs-a']);
    } finally {
      await executor.close();
      await fake.close();
    }
  });
});
