export { type JobNetworkMode, resolveJobNetwork } from './job-network.ts';
export {
  createProcessExecutor,
  type ExecutorLogger,
  type ProcessExecutor,
  type ProcessExecutorOptions,
} from './process-executor.ts';
export { type LimitsKind, type LimitsMode, resolveResourceLimits } from './resource-limits.ts';
export type { Isolation, SandboxMode, SandboxUser } from './sandbox.ts';
export { DEFAULT_UID_RANGE, type UidRange } from './uid-pool.ts';
