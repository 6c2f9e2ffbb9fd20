// One unprivileged uid (and gid of the same number) per running job, from a configured range,
// so that no job can read another running job's files or /proc (issue #11 item 4). Only a
// root manager can switch uid; it holds each uid through a lock file in a root-only
// directory, so several managers on one host (and several executors in one process) never
// hand out the same uid at the same time. A lock left by a manager that died is taken over.
// Uids are handed out round-robin from a random start: a uid comes back into use as late as
// the range allows, after its previous job's work dir is gone.
import { lstatSync, mkdirSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { open, readFile, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAlive } from './process-alive.ts';
import type { SandboxUser } from './sandbox.ts';

export interface UidRange {
  first: number;
  last: number;
}

export interface UidPool {
  readonly range: UidRange;
  /** A uid no other running job (of any manager on this host) has. Throws when none is free. */
  acquire(): Promise<SandboxUser>;
  release(user: SandboxUser): Promise<void>;
}

export const DEFAULT_UID_RANGE: UidRange = { first: 10_000_000, last: 10_065_535 };

/** Where the locks live: /run (root-only) when we may write it, else a private dir in the temp dir. */
export function defaultUidLockDir(): string {
  return process.getuid?.() === 0
    ? '/run/flotilla/job-uids'
    : join(tmpdir(), `flotilla-job-uids-${process.getuid?.()}`);
}

/** Drops the locks of managers that died (start-up only; a lock is also taken over when met). */
function sweepStaleLocks(dir: string): void {
  for (const name of readdirSync(dir)) {
    try {
      const owner = Number(readFileSync(join(dir, name), 'utf8').trim());
      if (!(owner > 0 && isAlive(owner))) unlinkSync(join(dir, name));
    } catch {
      // taken or freed meanwhile
    }
  }
}

/** Creates the lock dir (0700) and refuses one that others could write or that is a link. Start-up only. */
function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (!st.isDirectory() || st.uid !== process.getuid?.() || (st.mode & 0o022) !== 0) {
    throw new Error(
      `process executor: job uid lock dir ${dir} must be a directory owned by this user and not writable by others`,
    );
  }
}

export function createUidPool(range: UidRange, lockDir = defaultUidLockDir()): UidPool {
  if (!Number.isSafeInteger(range.first) || !Number.isSafeInteger(range.last) || range.first < 1)
    throw new Error(`process executor: invalid job uid range ${range.first}-${range.last}`);
  if (range.last < range.first || range.last > 2 ** 31 - 2)
    throw new Error(`process executor: invalid job uid range ${range.first}-${range.last}`);
  const own = process.getuid?.() ?? -1;
  if (own >= range.first && own <= range.last)
    throw new Error(
      `process executor: the job uid range ${range.first}-${range.last} contains the manager's own uid ${own}`,
    );
  ensurePrivateDir(lockDir);
  sweepStaleLocks(lockDir);

  const size = range.last - range.first + 1;
  const held = new Set<number>();
  let cursor = Math.floor(Math.random() * size);

  /** Takes uid's lock file; true when it is ours now. */
  const lock = async (uid: number): Promise<boolean> => {
    const path = join(lockDir, String(uid));
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fh = await open(path, 'wx', 0o600);
        await fh.writeFile(String(process.pid));
        await fh.close();
        return true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      // Held: by a live process (another manager, or another executor here), or stale.
      const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (owner > 0 && isAlive(owner)) return false;
      await unlink(path).catch(() => undefined);
    }
    return false;
  };

  return {
    range,
    async acquire() {
      for (let tried = 0; tried < size; tried++) {
        const uid = range.first + ((cursor + tried) % size);
        if (held.has(uid)) continue;
        held.add(uid);
        if (await lock(uid)) {
          cursor = (cursor + tried + 1) % size;
          return { uid, gid: uid };
        }
        held.delete(uid);
      }
      throw new Error(
        `process executor: no free job uid in ${range.first}-${range.last} (${held.size} held here); widen --job-uids`,
      );
    },
    async release(user) {
      if (!held.delete(user.uid)) return;
      await unlink(join(lockDir, String(user.uid))).catch(() => undefined);
    },
  };
}
