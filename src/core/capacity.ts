// The capacity that --cpus/--memory/--nodes declare, split evenly over virtual nodes,
// and the requests of running jobs placed on them. Pure state, no I/O.

export interface NodeState {
  name: string;
  cpuCapacityMillis: number;
  memoryCapacityBytes: number;
  cpuRequestedMillis: number;
  memoryRequestedBytes: number;
  /** Measured use (metrics.k8s.io) where known; /system/status shows requests otherwise. */
  cpuUsageMillis?: number;
  memoryUsageBytes?: number;
}

export interface Placement {
  node: string;
  cpuMillis: number;
  memoryBytes: number;
}

export const createNodes = (
  cpuMillis: number,
  memoryBytes: number,
  count: number,
  prefix = 'node',
): NodeState[] => {
  const cpuEach = Math.floor(cpuMillis / count);
  const memEach = Math.floor(memoryBytes / count);
  return Array.from({ length: count }, (_, i) => ({
    name: `${prefix}-${i + 1}`,
    cpuCapacityMillis: cpuEach,
    memoryCapacityBytes: memEach,
    cpuRequestedMillis: 0,
    memoryRequestedBytes: 0,
  }));
};

export const freeCpu = (n: NodeState): number => n.cpuCapacityMillis - n.cpuRequestedMillis;
export const freeMemory = (n: NodeState): number => n.memoryCapacityBytes - n.memoryRequestedBytes;

/** Could a request ever fit on one of these nodes when they are empty? */
export const everFits = (nodes: readonly NodeState[], cpuMillis: number, memoryBytes: number): boolean =>
  nodes.some((n) => n.cpuCapacityMillis >= cpuMillis && n.memoryCapacityBytes >= memoryBytes);

/** The node with the most free cpu among those the request fits on now. */
export const findFit = (
  nodes: readonly NodeState[],
  cpuMillis: number,
  memoryBytes: number,
): NodeState | undefined => {
  let best: NodeState | undefined;
  for (const n of nodes) {
    if (freeCpu(n) < cpuMillis || freeMemory(n) < memoryBytes) continue;
    if (!best || freeCpu(n) > freeCpu(best)) best = n;
  }
  return best;
};

/** Reserves on the best fitting node; undefined when none fits now. Mutates `nodes`. */
export const reserve = (
  nodes: NodeState[],
  cpuMillis: number,
  memoryBytes: number,
): Placement | undefined => {
  const node = findFit(nodes, cpuMillis, memoryBytes);
  if (!node) return undefined;
  node.cpuRequestedMillis += cpuMillis;
  node.memoryRequestedBytes += memoryBytes;
  return { node: node.name, cpuMillis, memoryBytes };
};

export const release = (nodes: NodeState[], p: Placement): void => {
  const node = nodes.find((n) => n.name === p.node);
  if (!node) return;
  node.cpuRequestedMillis = Math.max(0, node.cpuRequestedMillis - p.cpuMillis);
  node.memoryRequestedBytes = Math.max(0, node.memoryRequestedBytes - p.memoryBytes);
};

/** OSCAR's /system/status `cluster` block. CPU in millicores, memory in bytes. */
export const clusterStatus = (nodes: readonly NodeState[]) => ({
  nodes_count: nodes.length,
  metrics: {
    cpu: {
      total_free_cores: nodes.reduce((a, n) => a + freeCpu(n), 0),
      max_free_on_node_cores: Math.max(0, ...nodes.map(freeCpu)),
      total_schedulable_cores: nodes.reduce((a, n) => a + n.cpuCapacityMillis, 0),
      total_schedulable_on_node_cores: Math.max(0, ...nodes.map((n) => n.cpuCapacityMillis)),
    },
    memory: {
      total_free_bytes: nodes.reduce((a, n) => a + freeMemory(n), 0),
      max_free_on_node_bytes: Math.max(0, ...nodes.map(freeMemory)),
      total_schedulable_bytes: nodes.reduce((a, n) => a + n.memoryCapacityBytes, 0),
      max_schedulable_on_node_bytes: Math.max(0, ...nodes.map((n) => n.memoryCapacityBytes)),
    },
    gpu: { total_gpu: 0 },
  },
  nodes: nodes.map((n) => ({
    name: n.name,
    cpu: {
      capacity_cores: n.cpuCapacityMillis,
      usage_cores: n.cpuUsageMillis ?? n.cpuRequestedMillis,
      request_cores: n.cpuRequestedMillis,
    },
    memory: {
      capacity_bytes: n.memoryCapacityBytes,
      usage_bytes: n.memoryUsageBytes ?? n.memoryRequestedBytes,
      request_bytes: n.memoryRequestedBytes,
    },
    gpu: 0,
    is_interlink: false,
    status: 'Ready',
    conditions: [{ type: 'Ready', status: true }],
  })),
});
