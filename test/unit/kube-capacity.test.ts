// Capacity from the cluster: Ready, schedulable nodes' allocatable minus other workloads'
// requests (Flotilla's own pods are the runner's to count), merged into the runner's nodes in
// place without losing its reservations; and read through the fake API server.
import { KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { clusterCapacity, mergeCapacity } from '../../src/adapters/executor-kubernetes/capacity.ts';
import { createKubernetesExecutor } from '../../src/adapters/executor-kubernetes/index.ts';
import { clusterStatus, type NodeState } from '../../src/core/capacity.ts';
import { followClusterCapacity } from '../../src/main/executor-wiring.ts';
import { fakeNode, startFakeKubeApi } from '../support/fake-kube-api.ts';

const GiB = 1024 ** 3;
const pod = (node: string, cpu: string, memory: string, extra: Record<string, unknown> = {}) => ({
  metadata: { name: `p-${Math.random()}`, labels: {} as Record<string, string> },
  spec: { nodeName: node, containers: [{ name: 'c', image: 'x', resources: { requests: { cpu, memory } } }] },
  status: { phase: 'Running' },
  ...extra,
});

describe('cluster capacity', () => {
  it('takes allocatable of Ready, schedulable nodes minus what other running pods request', () => {
    const cordoned = { ...fakeNode('n3', '8', '16Gi'), spec: { unschedulable: true } };
    const notReady = fakeNode('n4', '8', '16Gi');
    notReady.status.conditions = [{ type: 'Ready', status: 'False' }];
    const ours = pod('n1', '2', '1Gi');
    ours.metadata.labels['app.kubernetes.io/managed-by'] = 'flotilla';
    const nodes = clusterCapacity(
      [fakeNode('n1', '4', '8Gi'), fakeNode('n2', '3800m', '16318536Ki'), cordoned, notReady] as never,
      [
        pod('n1', '500m', '512Mi'),
        pod('n1', '0.25', '256Mi'),
        ours,
        pod('n2', '1', '1Gi', { status: { phase: 'Succeeded' } }),
        pod('', '1', '1Gi', { status: { phase: 'Pending' } }),
      ] as never,
    );
    expect(nodes).toEqual([
      {
        name: 'n1',
        cpuCapacityMillis: 3250,
        memoryCapacityBytes: 8 * GiB - 768 * 1024 ** 2,
        cpuRequestedMillis: 0,
        memoryRequestedBytes: 0,
      },
      {
        name: 'n2',
        cpuCapacityMillis: 3800,
        memoryCapacityBytes: 16318536 * 1024,
        cpuRequestedMillis: 0,
        memoryRequestedBytes: 0,
      },
    ]);
  });

  it('merges into the runner nodes in place, keeping its reservations; a node that left keeps them until released', () => {
    const target: NodeState[] = [
      {
        name: 'node-1',
        cpuCapacityMillis: 4000,
        memoryCapacityBytes: 4 * GiB,
        cpuRequestedMillis: 0,
        memoryRequestedBytes: 0,
      },
      {
        name: 'n1',
        cpuCapacityMillis: 1000,
        memoryCapacityBytes: GiB,
        cpuRequestedMillis: 500,
        memoryRequestedBytes: 100,
      },
      {
        name: 'gone',
        cpuCapacityMillis: 1000,
        memoryCapacityBytes: GiB,
        cpuRequestedMillis: 200,
        memoryRequestedBytes: 0,
      },
    ];
    const same = target;
    mergeCapacity(target, [
      {
        name: 'n1',
        cpuCapacityMillis: 2000,
        memoryCapacityBytes: 2 * GiB,
        cpuRequestedMillis: 0,
        memoryRequestedBytes: 0,
      },
      {
        name: 'n2',
        cpuCapacityMillis: 3000,
        memoryCapacityBytes: 3 * GiB,
        cpuRequestedMillis: 0,
        memoryRequestedBytes: 0,
      },
    ]);
    expect(target).toBe(same);
    expect(target).toEqual([
      {
        name: 'n1',
        cpuCapacityMillis: 2000,
        memoryCapacityBytes: 2 * GiB,
        cpuRequestedMillis: 500,
        memoryRequestedBytes: 100,
      },
      {
        name: 'gone',
        cpuCapacityMillis: 0,
        memoryCapacityBytes: 0,
        cpuRequestedMillis: 200,
        memoryRequestedBytes: 0,
      },
      {
        name: 'n2',
        cpuCapacityMillis: 3000,
        memoryCapacityBytes: 3 * GiB,
        cpuRequestedMillis: 0,
        memoryRequestedBytes: 0,
      },
    ]);
  });

  it("replaces --cpus/--memory with the fake cluster's nodes, and /system/status shows them", async () => {
    const fake = await startFakeKubeApi({
      kubelet: 'manual',
      nodes: [fakeNode('k1', '4', '8Gi'), fakeNode('k2', '2', '4Gi')],
    });
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromOptions(fake.kubeconfig('svc'));
    const executor = createKubernetesExecutor({
      kubeConfig,
      namespace: 'svc',
      resolveService: async () => ({ image: 'a' }),
    });
    const nodes: NodeState[] = [
      {
        name: 'node-1',
        cpuCapacityMillis: 4000,
        memoryCapacityBytes: 4 * GiB,
        cpuRequestedMillis: 0,
        memoryRequestedBytes: 0,
      },
    ];
    try {
      const stop = await followClusterCapacity(executor, nodes, pino({ level: 'silent' }));
      await stop();
      const status = clusterStatus(nodes);
      expect(status.nodes_count).toBe(2);
      expect(status.nodes.map((n) => n.name)).toEqual(['k1', 'k2']);
      expect(status.metrics.cpu.total_schedulable_cores).toBe(6000);
      expect(status.metrics.memory.total_schedulable_bytes).toBe(12 * GiB);
    } finally {
      await executor.close();
      await fake.close();
    }
  });
});
