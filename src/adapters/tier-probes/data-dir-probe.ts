// The data dir probe: is it there (or can start-up make it), is it a directory this user
// may use, how open are its permissions, how much room is left on its file system.
import { constants as fsConstants } from 'node:fs';
import { access, stat, statfs } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { DataDirObservation, DataDirState } from '../../core/ports.ts';
import { errCode, withTimeout } from './probe-support.ts';

const look = async (path: string): Promise<DataDirState> => {
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(path);
  } catch (e) {
    if (errCode(e) !== 'ENOENT') return { state: 'stat-failed', error: (e as Error).message };
    // Not there yet: the manager creates it if the nearest parent is writable.
    let parent = dirname(path);
    while (parent !== dirname(parent)) {
      try {
        await stat(parent);
        break;
      } catch {
        parent = dirname(parent);
      }
    }
    try {
      await access(parent, fsConstants.W_OK | fsConstants.X_OK);
      return { state: 'absent', parent, parentWritable: true };
    } catch {
      return { state: 'absent', parent, parentWritable: false };
    }
  }
  if (!st.isDirectory()) return { state: 'not-a-directory' };
  try {
    await access(path, fsConstants.R_OK | fsConstants.W_OK | fsConstants.X_OK);
  } catch {
    return { state: 'no-access', uid: process.getuid?.() };
  }
  let freeBytes: number | undefined;
  try {
    const fs = await statfs(path);
    freeBytes = Number(fs.bavail) * Number(fs.bsize);
  } catch {
    // statfs is not available everywhere; free space is advisory only.
  }
  return { state: 'usable', mode: st.mode & 0o777, freeBytes };
};

export const observeDataDir = async (
  dir: string,
  opts: { timeoutMs: number },
): Promise<DataDirObservation> => {
  const path = resolve(dir);
  const started = Date.now();
  let state: DataDirState;
  try {
    state = await withTimeout(look(path), opts.timeoutMs);
  } catch (e) {
    state = { state: 'timed-out', problem: (e as Error).message };
  }
  return { path, latencyMs: Date.now() - started, ...state };
};
