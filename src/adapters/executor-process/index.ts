export {
  createProcessExecutor,
  type ExecutorLogger,
  type ProcessExecutor,
  type ProcessExecutorOptions,
} from './process-executor.ts';
export type { Isolation, SandboxMode, SandboxUser } from './sandbox.ts';
