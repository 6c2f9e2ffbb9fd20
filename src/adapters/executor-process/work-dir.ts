// A job's work dir: <workRoot>/job-<id>-XXXXXX/{script.sh,input/,output/}, mode 0700 and
// owned by the sandbox user, so no other job's uid can look inside.
import { chmodSync, constants, createWriteStream, mkdirSync } from 'node:fs';
import {
  chmod,
  chown,
  lstat,
  mkdir,
  mkdtemp,
  open,
  readdir,
  realpath,
  rm,
  writeFile,
} from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
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
 * the manager reads these files, so a link to a host file would leak it. An output dir the
 * script replaced by a symlink lists nothing.
 */
export async function listOutputs(outputDir: string): Promise<ExecutionOutput[]> {
  const outputs: ExecutionOutput[] = [];
  const top = await lstat(outputDir).catch(() => undefined);
  if (!top?.isDirectory()) return outputs;
  const walk = async (dir: string, prefix: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const absPath = join(dir, entry.name);
      const relPath = prefix ? `${prefix}/${entry.name}` : entry.name;
      if (entry.isDirectory()) await walk(absPath, relPath);
      else if (entry.isFile()) {
        const st = await lstat(absPath);
        if (!st.isFile()) continue;
        const listed = { dev: st.dev, ino: st.ino };
        outputs.push({
          relPath,
          size: st.size,
          modifiedAt: st.mtime,
          mode: st.mode,
          open: () => openOutput(outputDir, relPath, listed),
        });
      }
    }
  };
  await walk(outputDir, '');
  return outputs;
}

/**
 * Opens an output listed by listOutputs, only while it is still that regular file inside
 * output/: every directory on the way must resolve to where it lies under the work dir (whose
 * own entry, in the manager's work root, the script cannot replace), the file itself is opened
 * without following a symlink (O_NOFOLLOW; O_NONBLOCK so a FIFO cannot hang it) and must be
 * the inode listed.
 */
async function openOutput(outputDir: string, relPath: string, listed: { dev: number; ino: number }) {
  const parts = relPath.split('/');
  const path = join(outputDir, ...parts);
  const refuse = (why: string) => new Error(`output ${relPath} not opened: ${why}`);
  const [workDir, parent] = await Promise.all([
    realpath(dirname(outputDir)),
    realpath(dirname(path)).catch(() => undefined),
  ]);
  if (parent !== join(workDir, basename(outputDir), ...parts.slice(0, -1))) {
    throw refuse('it is no longer inside the output dir');
  }
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch(
    (err: NodeJS.ErrnoException) => {
      throw refuse(err.code === 'ELOOP' ? 'it is a symlink' : err.message);
    },
  );
  try {
    const st = await handle.stat();
    if (!st.isFile() || st.dev !== listed.dev || st.ino !== listed.ino) {
      throw refuse('it is no longer the file the job left');
    }
  } catch (err) {
    await handle.close();
    throw err;
  }
  return handle.createReadStream();
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
