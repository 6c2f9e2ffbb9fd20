// Running one invocation: stage the input (payload or object download), run the script
// through the Executor, upload every output file to each output path. Shared by async jobs
// and synchronous runs.
import { isFlotillaError } from '../../core/errors.ts';
import { isOwnerTokenKey } from '../../core/fdl/owner-token.ts';
import type { Service, StorageIO } from '../../core/fdl/service.ts';
import { serviceCpuMillis, serviceMemoryBytes } from '../../core/fdl/service.ts';
import { inputFileName, type ParsedEvent, parseEvent } from '../../core/jobs/event.ts';
import type { ExecutionResult, Executor, ObjectStore } from '../../core/ports.ts';
import type { CoveredInput, InputRef } from '../../core/storage/job-input.ts';
import { objectKeyProblem } from '../../core/storage/object-key.ts';
import { outputKey } from '../../core/storage/paths.ts';

/** A delegated job's origin: its storage is where inputs come from and outputs go. */
export interface JobOrigin {
  cluster: string;
  /** The token the origin gave for its storage keys. */
  token: string | undefined;
}

/** Finds the object store behind a storage provider reference ("minio.default", "s3.x"). */
export interface StorageResolver {
  resolve(provider: string, service: Service, origin?: JobOrigin): Promise<ObjectStore | undefined>;
  /**
   * The store holding a job's input object, once the one input check (DESIGN §3.2) allows the
   * service to read it; throws a 400 FlotillaError naming the object otherwise.
   */
  resolveInput(
    ref: InputRef,
    service: Service,
    origin?: JobOrigin,
  ): Promise<{ store: ObjectStore | undefined; input: CoveredInput }>;
}

export interface InvocationOutcome {
  result: ExecutionResult;
  event: ParsedEvent;
  /** Lines about uploads, appended to the job log. */
  notes: string[];
  uploadFailed: boolean;
}

export class InputMissingError extends Error {}

/**
 * The event names an object the job may not read (DESIGN §3.2): nothing is downloaded. A kind
 * of InputMissingError, so the runner fails the job with the reason and a sync run answers 400.
 */
export class InputRefusedError extends InputMissingError {}

/** The environment a script sees from its service: variables and secrets, never the refresh token. */
export const serviceEnvironment = (service: Service): Record<string, string> => {
  const env: Record<string, string> = { ...(service.environment?.variables ?? {}) };
  for (const [k, v] of Object.entries(service.environment?.secrets ?? {})) {
    if (isOwnerTokenKey(k)) continue;
    env[k] = v;
  }
  return env;
};

const uploadOutputs = async (
  storage: StorageResolver,
  service: Service,
  result: ExecutionResult,
  notes: string[],
  origin: JobOrigin | undefined,
  /** A job of a user's isolated bucket writes its outputs to that bucket (OSCAR's output folders there). */
  isolated: { bucket: string; provider: string } | undefined,
): Promise<boolean> => {
  let failed = false;
  for (const io of (service.output ?? []) as StorageIO[]) {
    const store = await storage.resolve(io.storage_provider, service, origin).catch((e: Error) => {
      notes.push(`output ${io.storage_provider}:${io.path}: ${e.message}`);
      return undefined;
    });
    if (!store) {
      notes.push(`output ${io.storage_provider}:${io.path} skipped: storage provider not configured`);
      failed = true;
      continue;
    }
    const inBucket = isolated?.provider === io.storage_provider ? isolated.bucket : undefined;
    for (const out of result.outputs) {
      const target = outputKey(io, out.relPath, inBucket);
      if (!target) continue;
      const problem = objectKeyProblem(target.key);
      if (problem) {
        failed = true;
        notes.push(`output ${out.relPath} not uploaded: key ${JSON.stringify(target.key)} ${problem}`);
        continue;
      }
      try {
        const body = await out.open();
        // Closed even when the store gives up before reading it all.
        await store.putObject(target.bucket, target.key, body, out.size).finally(() => body.destroy());
        notes.push(`uploaded ${out.relPath} to ${io.storage_provider}:${target.bucket}/${target.key}`);
      } catch (e) {
        failed = true;
        notes.push(
          `upload of ${out.relPath} to ${target.bucket}/${target.key} failed: ${(e as Error).message}`,
        );
      }
    }
  }
  return failed;
};

export interface InvokeRequest {
  jobId: string;
  service: Service;
  event: Uint8Array;
  timeoutMs: number;
  signal?: AbortSignal;
  onLog?: (chunk: string) => void;
  /** Upload outputs to the service's output paths (sync runs do too, as faas-supervisor). */
  uploadOutputs: boolean;
  origin?: JobOrigin;
  /** See ExecutionRequest.resumable. */
  resumable?: boolean;
}

/** Runs one invocation to its end. Throws InputMissingError when the input object is gone. */
export const invoke = async (
  deps: { executor: Executor; storage: StorageResolver },
  req: InvokeRequest,
): Promise<InvocationOutcome> => {
  const event = parseEvent(req.event);
  const notes: string[] = [];
  let input: { fileName: string; body: Uint8Array | AsyncIterable<Uint8Array> };
  const extraEnv: Record<string, string> = {};
  let isolated: { bucket: string; provider: string } | undefined;
  if (event.kind === 'storage') {
    // The input check runs again here, right before the download: whatever path the job
    // came by, nothing is read that its service may not read.
    const { store, input: covered } = await deps.storage
      .resolveInput(event, req.service, req.origin)
      .catch((e: Error) => {
        if (isFlotillaError(e) && e.status === 400) throw new InputRefusedError(e.message);
        throw new InputMissingError(`input storage ${event.provider} is not reachable: ${e.message}`);
      });
    if (!store) throw new InputMissingError(`input storage provider ${event.provider} is not configured`);
    if (covered.isolatedFor !== undefined) {
      isolated = { bucket: event.bucket, provider: covered.io.storage_provider };
    }
    try {
      input = {
        fileName: inputFileName(event, req.jobId),
        body: await store.getObject(event.bucket, event.key),
      };
    } catch (e) {
      if (isFlotillaError(e) && (e.code === 'OBJECT_NOT_FOUND' || e.code === 'BUCKET_NOT_FOUND')) {
        throw new InputMissingError(`input object ${event.bucket}/${event.key} no longer exists`);
      }
      throw e;
    }
    extraEnv.STORAGE_OBJECT_KEY = event.key.split('/').pop() ?? event.key;
    extraEnv.STORAGE_BUCKET = event.bucket;
  } else {
    input = { fileName: inputFileName(event, req.jobId), body: event.fileBytes };
  }
  const result = await deps.executor.run({
    jobId: req.jobId,
    serviceName: req.service.name,
    script: req.service.script,
    event: event.eventText,
    env: serviceEnvironment(req.service),
    extraEnv,
    input,
    timeoutMs: req.timeoutMs,
    cpuMillis: serviceCpuMillis(req.service),
    memoryBytes: serviceMemoryBytes(req.service),
    signal: req.signal,
    onLog: req.onLog,
    resumable: req.resumable,
  });
  let uploadFailed = false;
  if (req.uploadOutputs && !result.timedOut && !result.cancelled) {
    uploadFailed = await uploadOutputs(deps.storage, req.service, result, notes, req.origin, isolated);
  }
  return { result, event, notes, uploadFailed };
};

/** The log text stored for a job: stdout, then stderr, then the manager's notes. */
export const jobLog = (o: Pick<InvocationOutcome, 'result' | 'notes'>): string => {
  const parts = [o.result.stdout, o.result.stderr];
  if (o.result.truncated) parts.push('[flotilla] output was longer than the log limit and was cut');
  for (const n of o.notes) parts.push(`[flotilla] ${n}`);
  return parts
    .filter(Boolean)
    .map((p) => (p.endsWith('\n') ? p : `${p}\n`))
    .join('');
};

/** Why a finished invocation failed, or null when it succeeded. */
export const failureReason = (
  o: Pick<InvocationOutcome, 'result' | 'uploadFailed'>,
  timeoutMs: number,
): string | null => {
  const r = o.result;
  if (r.timedOut) return `timed out after ${Math.round(timeoutMs / 1000)} s and was killed`;
  if (r.cancelled) return 'cancelled';
  if (r.exitCode !== 0) return r.signal ? `killed by ${r.signal}` : `exit code ${r.exitCode}`;
  if (o.uploadFailed) return 'output upload failed';
  return null;
};
