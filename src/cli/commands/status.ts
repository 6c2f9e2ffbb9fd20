// `flotilla status`: this cluster's capacity, jobs and storage, from /system/status.
import type { Command } from 'commander';
import { type ClientFlags, clientFrom, printJson, printTable, run, withClientOptions } from '../common.ts';

const cores = (millis: number): string => (millis / 1000).toFixed(2);
const gib = (bytes: number): string => `${(bytes / 1024 ** 3).toFixed(2)}Gi`;

export const registerStatus = (program: Command): void => {
  withClientOptions(
    program.command('status').description('capacity, jobs and storage of the cluster'),
  ).action(
    run(async (opts: ClientFlags) => {
      const client = clientFrom(opts);
      const [status, info] = await Promise.all([client.status(), client.info()]);
      if (opts.json) return printJson({ info, status });
      const cpu = status.cluster.metrics.cpu;
      const mem = status.cluster.metrics.memory;
      process.stdout.write(
        `cluster ${info.cluster_id} (tier ${info.tier}, executor ${(info.executor as { isolation?: string })?.isolation ?? '?'})\n` +
          `cpu free ${cores(cpu.total_free_cores)} of ${cores(cpu.total_schedulable_cores)} cores; ` +
          `memory free ${gib(mem.total_free_bytes)} of ${gib(mem.total_schedulable_bytes)}\n` +
          `jobs ${status.oscar.jobs_count} (${Object.entries(status.oscar.pods.states)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')}); buckets ${status.minio.buckets_count}, objects ${status.minio.total_objects}\n`,
      );
      printTable(
        ['NODE', 'CPU REQUESTED', 'CPU CAPACITY', 'MEMORY REQUESTED', 'MEMORY CAPACITY'],
        (status.cluster.nodes as Array<Record<string, any>>).map((n) => [
          n.name,
          cores(n.cpu.request_cores),
          cores(n.cpu.capacity_cores),
          gib(n.memory.request_bytes),
          gib(n.memory.capacity_bytes),
        ]),
      );
    }),
  );
};
