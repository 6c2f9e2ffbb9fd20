// A job's work dir: <workRoot>/job-<id>-XXXXXX/{script.sh,input/,output/}, mode 0700 and
// owned by the sandbox user, so no other job's uid can look inside.
import { chmodSync, createWriteStream, mkdirSync } from 'node:fs';
import { chmod, chown, lstat, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ExecutionInput, ExecutionOutput } from '../../core/ports.ts';
import type { SandboxUser } from './sandbox.ts';

export interface WorkDir {
  dir: string;
  inputDir: string;
  outputDir: string;
  scriptPath: string;
}

/** Creates the work root itself: traversable by the sandbox user (x) but not listable. Start-up only. */
export function ensureWorkRoot(workRoot: string): void {
  try {
    mkdirSync(workRoot, { recursive: true });
    chmodSync(workRoot, 0o711);
  } catch (err) {
    throw new Error(`process executor: cannot create work root ${workRoot}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

export async function createWorkDir(workRoot: string, jobId: string): Promise<WorkDir> {
  const safeId = jobId.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64);
  const dir = await mkdtemp(join(workRoot, `job-${safeId}-`));
  const work = {
    dir,
    inputDir: join(dir, 'input'),
    outputDir: join(dir, 'output'),
    scriptPath: join(dir, 'script.sh'),
  };
  await mkdir(work.inputDir, { mode: 0o755 });
  await mkdir(work.outputDir, { mode: 0o755 });
  return work;
}

export async function writeScript(work: WorkDir, script: string): Promise<void> {
  await writeFile(work.scriptPath, script, { mode: 0o644 });
}

/** Writes the input to input/<name>; returns its path. Streams are never held in memory. */
export async function writeInput(
  work: WorkDir,
  input: ExecutionInput,
  signal?: AbortSignal,
): Promise<string> {
  const path = join(work.inputDir, safeFileName(input.fileName));
  const { body } = input;
  if (body instanceof Uint8Array) {
    await writeFile(path, body, { mode: 0o644, flag: 'wx', signal });
  } else {
    await pipeline(Readable.from(body), createWriteStream(path, { mode: 0o644, flags: 'wx' }), { signal });
  }
  return path;
}

/** An object key such as "in/photo.jpg" becomes "photo.jpg": the name must stay inside input/. */
function safeFileName(fileName: string): string {
  const name = basename(fileName.replaceAll('\\', '/'));
  if (name === '' || name === '.' || name === '..')
    throw new Error(`invalid input file name ${JSON.stringify(fileName)}`);
  return name;
}

/** Hands everything the executor created to the sandbox user (we are root when `owner` is set). */
export async function handOver(work: WorkDir, owner: SandboxUser, inputFile?: string): Promise<void> {
  const paths = [work.dir, work.inputDir, work.outputDir, work.scriptPath, ...(inputFile ? [inputFile] : [])];
  await Promise.all(paths.map((path) => chown(path, owner.uid, owner.gid)));
}

/**
 * Every regular file under output/, recursively. Symlinks are skipped and never followed:
 * the uploader reads these paths as the manager, so a link to a host file would leak it.
 */
export async function listOutputs(outputDir: string): Promise<ExecutionOutput[]> {
  const outputs: ExecutionOutput[] = [];
  const walk = async (dir: string, prefix: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const absPath = join(dir, entry.name);
      const relPath = prefix ? `${prefix}/${entry.name}` : entry.name;
      if (entry.isDirectory()) await walk(absPath, relPath);
      else if (entry.isFile()) outputs.push({ relPath, absPath, size: (await lstat(absPath)).size });
    }
  };
  await walk(outputDir, '');
  return outputs;
}

/** rm -rf; tolerant of a dir already gone, and of a script that chmod-ed its dirs read-only. */
export async function removeWorkDir(dir: string): Promise<void> {
  const remove = () => rm(dir, { recursive: true, force: true, maxRetries: 3 });
  await remove().catch(async () => {
    await reopenDirs(dir);
    await remove().catch(() => undefined);
  });
}

async function reopenDirs(dir: string): Promise<void> {
  await chmod(dir, 0o700).catch(() => undefined);
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) if (entry.isDirectory()) await reopenDirs(join(dir, entry.name));
}
