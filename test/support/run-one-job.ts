// A process that does nothing but run one job through the process executor and print its
// output: the run itself must keep the process alive (test/unit/job-sandbox.test.ts).
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createProcessExecutor } from '../../src/adapters/executor-process/index.ts';

const workRoot = mkdtempSync(join(tmpdir(), 'flotilla-one-job-'));
const executor = createProcessExecutor({ workRoot });
const result = await executor.run({
  jobId: randomUUID(),
  serviceName: 'one',
  script: 'echo ran-to-the-end',
  event: '{}',
  env: {},
  timeoutMs: 30_000,
  cpuMillis: 100,
  memoryBytes: 64 * 1024 ** 2,
});
process.stdout.write(result.stdout);
await result.dispose();
await executor.close();
rmSync(workRoot, { recursive: true, force: true });
