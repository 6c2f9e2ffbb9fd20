// Chooses how job scripts are isolated and builds the command that runs one.
//
// Order of preference (sandbox: 'auto'):
//   bubblewrap     new mount/pid/ipc/uts/user namespaces: the script sees a read-only
//                  system, a private /tmp and only its own work dir, as an unprivileged uid.
//   separate-user  no bwrap but we are root: the script runs as an unprivileged uid. It can
//                  still read world-readable files, which is why the manager creates its data
//                  dir 0700 (assumption this mode relies on).
//   none           neither: the script runs as the manager's own user.
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export type SandboxMode = 'auto' | 'bubblewrap' | 'user' | 'none';
export type Isolation = 'bubblewrap' | 'separate-user' | 'none';

export interface SandboxUser {
  uid: number;
  gid: number;
}

/** `nobody`/`nogroup` on Debian; owns nothing, so it can read only world-readable files. */
export const NOBODY: SandboxUser = { uid: 65534, gid: 65534 };

export interface Sandbox {
  isolation: Isolation;
  /** One sentence for the start-up log and /system/info: what protects the manager, or why nothing does. */
  note: string;
  /** Set for 'bubblewrap'. */
  bwrapPath?: string;
  /** The uid/gid the child is spawned as; set only when we are root (we can switch). */
  spawnAs?: SandboxUser;
  /** The uid/gid the script sees. */
  user: SandboxUser;
}

export interface SpawnCommand {
  file: string;
  args: string[];
  /** Where the spawned process starts; bubblewrap changes directory itself. */
  cwd: string;
  uid?: number;
  gid?: number;
}

const INSTALL_HINT = 'install bubblewrap (scripts/ensure-system-deps.sh) for full isolation';

/** Decides the isolation once, at start-up. Throws when the requested mode cannot work here. */
export function resolveSandbox(mode: SandboxMode, workRoot: string, user: SandboxUser = NOBODY): Sandbox {
  const root = isRoot();
  const spawnAs = root ? user : undefined;
  if (mode === 'none') {
    return {
      isolation: 'none',
      user,
      note: "sandbox disabled by configuration (sandbox: 'none'): scripts run as the manager's own user and can read what it can",
    };
  }
  if (spawnAs) assertReachable(workRoot, spawnAs);

  const bwrap: Probe =
    mode === 'user'
      ? { ok: false, why: "sandbox 'user' configured" }
      : probeBubblewrap(workRoot, user, spawnAs);
  if (bwrap.ok) {
    return {
      isolation: 'bubblewrap',
      bwrapPath: bwrap.path,
      spawnAs,
      user,
      note: `scripts run in a bubblewrap sandbox as uid ${user.uid}: read-only /usr and /etc, private /tmp, only their own work dir writable, network shared`,
    };
  }
  if (mode === 'bubblewrap')
    throw new Error(`process executor: sandbox 'bubblewrap' requested but ${bwrap.why}; ${INSTALL_HINT}`);

  if (spawnAs) {
    return {
      isolation: 'separate-user',
      spawnAs,
      user,
      note: `${bwrap.why}: scripts run as uid ${user.uid} without a filesystem sandbox; they can read world-readable files, so the manager's data dir must stay mode 0700; ${INSTALL_HINT}`,
    };
  }
  if (mode === 'user')
    throw new Error("process executor: sandbox 'user' needs the manager to run as root (to switch uid)");
  return {
    isolation: 'none',
    user,
    note: `${bwrap.why} and the manager is not root: scripts run unsandboxed as the manager's own user and can read its data dir; ${INSTALL_HINT}`,
  };
}

/** The command that runs `/bin/sh script.sh` inside workDir under the chosen sandbox. */
export function buildCommand(sandbox: Sandbox, workDir: string): SpawnCommand {
  const ids = sandbox.spawnAs ? { uid: sandbox.spawnAs.uid, gid: sandbox.spawnAs.gid } : {};
  if (sandbox.isolation === 'bubblewrap') {
    const args = [...bubblewrapArgs(workDir, sandbox.user), '--', '/bin/sh', 'script.sh'];
    return { file: sandbox.bwrapPath!, args, cwd: '/', ...ids };
  }
  return { file: '/bin/sh', args: ['script.sh'], cwd: workDir, ...ids };
}

function bubblewrapArgs(workDir: string, user: SandboxUser): string[] {
  // /etc is bound whole: the script's uid is unprivileged outside the namespace too, so
  // file modes still protect /etc/shadow and friends (verified by the isolation test).
  const systemDirs = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/etc'];
  return [
    '--unshare-all',
    '--share-net',
    '--die-with-parent',
    '--new-session',
    ...systemDirs.flatMap((dir) => ['--ro-bind-try', dir, dir]),
    ...['--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp'],
    ...['--bind', workDir, workDir, '--chdir', workDir],
    ...['--uid', String(user.uid), '--gid', String(user.gid)],
  ];
}

type Probe = { ok: true; path: string } | { ok: false; why: string };

/** Runs `true` in a real sandbox: bwrap may be installed yet unusable (user namespaces off). */
function probeBubblewrap(workRoot: string, user: SandboxUser, spawnAs?: SandboxUser): Probe {
  const path = findExecutable('bwrap');
  if (!path) return { ok: false, why: 'bubblewrap (bwrap) is not installed' };
  const run = spawnSync(path, [...bubblewrapArgs(workRoot, user), '--', '/bin/true'], {
    env: {},
    timeout: 10_000,
    encoding: 'utf8',
    ...(spawnAs ?? {}),
  });
  if (run.status === 0) return { ok: true, path };
  const detail = (run.stderr || run.error?.message || `exit ${run.status ?? run.signal}`).trim();
  return { ok: false, why: `bubblewrap is installed but cannot create a sandbox here (${detail})` };
}

/** The sandbox user must be able to walk down to its work dir; a 0700 parent would stop it. */
function assertReachable(workRoot: string, user: SandboxUser): void {
  const run = spawnSync('/bin/sh', ['-c', 'cd -- "$1"', 'probe', workRoot], {
    env: {},
    ...user,
    timeout: 10_000,
  });
  if (run.status === 0) return;
  throw new Error(
    `process executor: work root ${workRoot} is not reachable by the sandbox user (uid ${user.uid}); ` +
      'every parent directory needs search (x) permission for others, so keep the work root outside the 0700 data dir',
  );
}

function findExecutable(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/bin', '/bin'];
  for (const dir of dirs.filter(Boolean)) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  return undefined;
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
}
