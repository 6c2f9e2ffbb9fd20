// POST /run/{service}: runs the script now and answers as faas-supervisor does — one output
// file: that file base64-encoded; several: a base64 zip of them; none: the script's stdout.
import { randomUUID } from 'node:crypto';
import yazl from 'yazl';
import { FlotillaError } from '../../core/errors.ts';
import { type Service, serviceCpuMillis, serviceMemoryBytes } from '../../core/fdl/service.ts';
import type { ExecutionOutput, Executor } from '../../core/ports.ts';
import { failureReason, InputMissingError, invoke, type StorageResolver } from './job-execution.ts';
import { type JobRunner, serviceTimeoutMs } from './job-runner.ts';

export interface SyncRunDeps {
  executor: Executor;
  storage: StorageResolver;
  runner: JobRunner;
  defaultTimeoutMs: number;
}

const zipOutputs = (outputs: ExecutionOutput[]): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const zip = new yazl.ZipFile();
    // One file open at a time, as addFile did; its mtime and mode as addFile recorded them.
    for (const o of outputs) {
      zip.addReadStreamLazy(o.relPath, { mtime: o.modifiedAt, mode: o.mode, size: o.size }, (cb) => {
        o.open().then(
          (stream) => cb(null, stream),
          (err: Error) => cb(err, undefined as never),
        );
      });
    }
    zip.end();
    const chunks: Buffer[] = [];
    zip.outputStream.on('data', (c: Buffer) => chunks.push(c));
    zip.outputStream.on('end', () => resolve(Buffer.concat(chunks)));
    zip.outputStream.on('error', reject);
  });

const readAll = async (stream: AsyncIterable<Uint8Array>): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
};

const tail = (text: string, max = 2000): string => (text.length > max ? `…${text.slice(-max)}` : text);

/** The answer body of a synchronous run, as text. */
export const runSync = async (
  deps: SyncRunDeps,
  req: { service: Service; body: Uint8Array; signal: AbortSignal },
): Promise<string> => {
  const { service } = req;
  let releaseCapacity: () => void;
  try {
    releaseCapacity = await deps.runner.reserveForRun(
      serviceCpuMillis(service),
      serviceMemoryBytes(service),
      req.signal,
    );
  } catch (e) {
    if (req.signal.aborted)
      throw new FlotillaError('TIMEOUT', 'the caller went away before the run could start');
    throw new FlotillaError('UNAVAILABLE', (e as Error).message);
  }
  const timeoutMs = serviceTimeoutMs(service, deps.defaultTimeoutMs);
  try {
    const outcome = await invoke(
      { executor: deps.executor, storage: deps.storage },
      { jobId: randomUUID(), service, event: req.body, timeoutMs, signal: req.signal, uploadOutputs: true },
    ).catch((e) => {
      if (e instanceof InputMissingError) throw new FlotillaError('BAD_REQUEST', e.message);
      throw e;
    });
    try {
      const reason = failureReason(outcome, timeoutMs);
      if (outcome.result.timedOut) throw new FlotillaError('TIMEOUT', `run of ${service.name} ${reason}`);
      if (reason) {
        throw new FlotillaError('JOB_FAILED', `run of ${service.name} failed: ${reason}`, {
          exit_code: outcome.result.exitCode,
          stderr: tail(outcome.result.stderr),
          stdout: tail(outcome.result.stdout),
        });
      }
      const outputs = outcome.result.outputs;
      if (outputs.length === 1) return (await readAll(await outputs[0].open())).toString('base64');
      if (outputs.length > 1) return (await zipOutputs(outputs)).toString('base64');
      return outcome.result.stdout;
    } finally {
      await outcome.result.dispose();
    }
  } finally {
    releaseCapacity();
  }
};
