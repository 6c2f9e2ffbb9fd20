// Capacity from the cluster's nodes, for the runner's placement and /system/status: each Ready,
// schedulable node's allocatable cpu/memory, minus what other workloads' running pods request
// there. Flotilla's own pods are left out: the runner counts their requests itself. Pure.
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import type { NodeState } from '../../core/capacity.ts';
import { parseCpuMillis, parseMemoryBytes } from '../../core/fdl/quantity.ts';
import { MANAGED_BY_LABEL } from './objects.ts';

const quantity = (parse: (v: string) => number | undefined, v: unknown): number =>
  typeof v === 'string' || typeof v === 'number' ? (parse(String(v)) ?? 0) : 0;

/** Measured use per node name (metrics.k8s.io NodeMetrics), when the cluster serves it. */
export type NodeUsage = ReadonlyMap<string, { cpu?: string; memory?: string }>;

export function clusterCapacity(
  nodes: readonly V1Node[],
  pods: readonly V1Pod[],
  usage?: NodeUsage,
): NodeState[] {
  const others = new Map<string, { cpu: number; memory: number }>();
  for (const pod of pods) {
    const phase = pod.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') continue;
    if (pod.metadata?.labels?.[MANAGED_BY_LABEL] === 'flotilla') continue;
    const node = pod.spec?.nodeName;
    if (!node) continue;
    const used = others.get(node) ?? { cpu: 0, memory: 0 };
    for (const c of pod.spec?.containers ?? []) {
      used.cpu += quantity(parseCpuMillis, c.resources?.requests?.cpu);
      used.memory += quantity(parseMemoryBytes, c.resources?.requests?.memory);
    }
    others.set(node, used);
  }
  return nodes
    .filter(
      (n) =>
        !n.spec?.unschedulable &&
        n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    )
    .map((n) => {
      const name = n.metadata?.name ?? '';
      const used = others.get(name) ?? { cpu: 0, memory: 0 };
      const alloc = n.status?.allocatable ?? n.status?.capacity ?? {};
      const measured = usage?.get(name);
      return {
        name,
        cpuCapacityMillis: Math.max(0, quantity(parseCpuMillis, alloc.cpu) - used.cpu),
        memoryCapacityBytes: Math.max(0, quantity(parseMemoryBytes, alloc.memory) - used.memory),
        cpuRequestedMillis: 0,
        memoryRequestedBytes: 0,
        ...(measured
          ? {
              cpuUsageMillis: quantity(parseCpuMillis, measured.cpu),
              memoryUsageBytes: quantity(parseMemoryBytes, measured.memory),
            }
          : {}),
      };
    });
}

/**
 * Updates the runner's nodes in place: capacities from `fresh`, the runner's own requests kept
 * (its placements name nodes); a node that left gets no capacity but stays until released.
 */
export function mergeCapacity(target: NodeState[], fresh: readonly NodeState[]): void {
  const byName = new Map(fresh.map((n) => [n.name, n]));
  for (const node of target) {
    const f = byName.get(node.name);
    node.cpuCapacityMillis = f?.cpuCapacityMillis ?? 0;
    node.memoryCapacityBytes = f?.memoryCapacityBytes ?? 0;
    node.cpuUsageMillis = f?.cpuUsageMillis;
    node.memoryUsageBytes = f?.memoryUsageBytes;
    byName.delete(node.name);
  }
  for (const f of byName.values()) target.push({ ...f });
  // Nodes that left and hold nothing are dropped.
  for (let i = target.length - 1; i >= 0; i--) {
    const n = target[i]!;
    if (
      n.cpuCapacityMillis === 0 &&
      n.memoryCapacityBytes === 0 &&
      n.cpuRequestedMillis === 0 &&
      n.memoryRequestedBytes === 0
    ) {
      if (!fresh.some((f) => f.name === n.name)) target.splice(i, 1);
    }
  }
}
