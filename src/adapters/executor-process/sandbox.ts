// Chooses how job scripts are isolated and builds the command that runs one.
//
// Order of preference (sandbox: 'auto'):
//   bubblewrap     new mount/pid/ipc/uts/user namespaces: the script sees a read-only
//                  system, a private /tmp and only its own work dir, as an unprivileged uid.
//   separate-user  no bwrap but we are root: the script runs as an unprivileged uid. It can
//                  still read world-readable files, which is why the manager creates its data
//                  dir 0700 (assumption this mode relies on).
//   none           neither: the script runs as the manager's own user.
//
// When the manager is root every job gets a uid of its own (uid-pool.ts); otherwise all jobs
// run as the manager's uid (seen as 65534 inside bwrap's user namespace) and only the
// namespaces keep them apart. bwrap itself starts with an empty environment: its arguments,
// the job's variables among them (--setenv), come through a pipe (--args), so no variable
// acts on bwrap (LD_PRELOAD…) and no secret shows in a command line.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, realpathSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export type SandboxMode = 'auto' | 'bubblewrap' | 'user' | 'none';
export type Isolation = 'bubblewrap' | 'separate-user' | 'none';

export interface SandboxUser {
  uid: number;
  gid: number;
}

/** `nobody`/`nogroup` on Debian: the uid a non-root manager's jobs see inside bwrap. */
export const NOBODY: SandboxUser = { uid: 65534, gid: 65534 };

export interface Sandbox {
  isolation: Isolation;
  /** One sentence for the start-up log and /system/info: what protects the manager, or why nothing does. */
  note: string;
  /** Set for 'bubblewrap'. */
  bwrapPath?: string;
  /** We are root: each job is spawned as its own unprivileged uid. */
  switchesUser: boolean;
}

export interface SpawnCommand {
  file: string;
  args: string[];
  /** Where the spawned process starts; bubblewrap changes directory itself. */
  cwd: string;
  /** The spawned process's environment: empty for bwrap, which sets the job's itself. */
  env: Record<string, string>;
  /** Written to the process's fd 3, then closed (bwrap reads its arguments there). */
  fd3?: Buffer;
  uid?: number;
  gid?: number;
}

export interface JobCommand {
  workDir: string;
  /** The job's environment (already cleaned of the hijack list). */
  env: Record<string, string>;
  /** The job's own uid, when we are root. */
  user?: SandboxUser;
  /** Mounted on the host's resolv.conf path in the sandbox (the isolated network's resolver). */
  resolvConf?: string;
  /** Set by the rlimit fallback: applied by a /bin/sh wrapper before anything of the job runs. */
  rlimits?: { addressSpaceKiB: number; cpuSeconds: number };
}

/** bwrap's whole command line: the rest of its arguments come through fd 3. */
export const BWRAP_COMMAND_LINE = ['--args', '3', '--', '/bin/sh', 'script.sh'];

const INSTALL_HINT = 'install bubblewrap (scripts/ensure-system-deps.sh) for full isolation';

/** Decides the isolation once, at start-up. Throws when the requested mode cannot work here. */
export function resolveSandbox(
  mode: SandboxMode,
  workRoot: string,
  probeUser: SandboxUser = NOBODY,
): Sandbox {
  const root = isRoot();
  const perJob = root
    ? 'as a uid of its own per job'
    : "as the manager's own uid (not root: one uid for all jobs)";
  if (mode === 'none') {
    return {
      isolation: 'none',
      switchesUser: false,
      note: "sandbox disabled by configuration (sandbox: 'none'): scripts run as the manager's own user and can read what it can",
    };
  }
  if (root) assertReachable(workRoot, probeUser);

  const bwrap: Probe =
    mode === 'user'
      ? { ok: false, why: "sandbox 'user' configured" }
      : probeBubblewrap(workRoot, root ? probeUser : undefined);
  if (bwrap.ok) {
    return {
      isolation: 'bubblewrap',
      bwrapPath: bwrap.path,
      switchesUser: root,
      note: `scripts run in a bubblewrap sandbox ${perJob}: empty environment for bwrap itself, read-only /usr and /etc, private /tmp, only their own work dir writable`,
    };
  }
  if (mode === 'bubblewrap')
    throw new Error(`process executor: sandbox 'bubblewrap' requested but ${bwrap.why}; ${INSTALL_HINT}`);

  if (root) {
    return {
      isolation: 'separate-user',
      switchesUser: true,
      note: `${bwrap.why}: scripts run ${perJob} without a filesystem sandbox; they can read world-readable files, so the manager's data dir must stay mode 0700; ${INSTALL_HINT}`,
    };
  }
  if (mode === 'user')
    throw new Error("process executor: sandbox 'user' needs the manager to run as root (to switch uid)");
  return {
    isolation: 'none',
    switchesUser: false,
    note: `${bwrap.why} and the manager is not root: scripts run unsandboxed as the manager's own user and can read its data dir; ${INSTALL_HINT}`,
  };
}

/** The command that runs `/bin/sh script.sh` inside workDir under the chosen sandbox. */
export function buildCommand(sandbox: Sandbox, job: JobCommand): SpawnCommand {
  const ids = job.user ? { uid: job.user.uid, gid: job.user.gid } : {};
  let command: SpawnCommand;
  if (sandbox.isolation === 'bubblewrap') {
    const inside = job.user ?? NOBODY;
    const bwrapArgs = [
      ...bubblewrapArgs(job.workDir, inside, job.resolvConf),
      '--clearenv',
      ...Object.entries(job.env).flatMap(([name, value]) => ['--setenv', name, value]),
    ];
    command = {
      file: sandbox.bwrapPath!,
      args: BWRAP_COMMAND_LINE,
      cwd: '/',
      env: {},
      fd3: Buffer.from(`${bwrapArgs.join('\0')}\0`),
      ...ids,
    };
  } else {
    command = { file: '/bin/sh', args: ['script.sh'], cwd: job.workDir, env: job.env, ...ids };
  }
  return job.rlimits ? withRlimits(command, job.rlimits) : command;
}

/**
 * Prefixes a /bin/sh that sets the limits (soft and hard, so the job cannot raise them) and
 * execs the command. Its own environment is empty, so it reads no startup file.
 */
function withRlimits(
  command: SpawnCommand,
  l: { addressSpaceKiB: number; cpuSeconds: number },
): SpawnCommand {
  const script = `ulimit -v ${l.addressSpaceKiB} && ulimit -t ${l.cpuSeconds} && exec "$@"`;
  const wrapperEnv = command.file === '/bin/sh' ? command.env : {};
  return {
    ...command,
    file: '/bin/sh',
    args: ['-c', script, 'flotilla-limits', command.file, ...command.args],
    env: wrapperEnv,
  };
}

function bubblewrapArgs(workDir: string, user: SandboxUser, resolvConf?: string): string[] {
  // /etc is bound whole: the script's uid is unprivileged outside the namespace too, so
  // file modes still protect /etc/shadow and friends (verified by the isolation test).
  const systemDirs = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/etc'];
  return [
    '--unshare-all',
    // The spawner helper already sits in the jobs' network namespace (job-network.ts).
    '--share-net',
    '--die-with-parent',
    '--new-session',
    ...systemDirs.flatMap((dir) => ['--ro-bind-try', dir, dir]),
    ...(resolvConf ? ['--ro-bind', resolvConf, resolvConfTarget()] : []),
    ...['--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp'],
    ...['--bind', workDir, workDir, '--chdir', workDir],
    ...['--uid', String(user.uid), '--gid', String(user.gid)],
  ];
}

/** Where /etc/resolv.conf really is (often a link into /run), so the bind lands on it. */
let resolvTarget: string | undefined;
function resolvConfTarget(): string {
  if (resolvTarget) return resolvTarget;
  try {
    resolvTarget = realpathSync('/etc/resolv.conf');
  } catch {
    resolvTarget = '/etc/resolv.conf';
  }
  return resolvTarget;
}

type Probe = { ok: true; path: string } | { ok: false; why: string };

/** Runs `true` in a real sandbox: bwrap may be installed yet unusable (user namespaces off). */
function probeBubblewrap(workRoot: string, spawnAs?: SandboxUser): Probe {
  const path = findExecutable('bwrap');
  if (!path) return { ok: false, why: 'bubblewrap (bwrap) is not installed' };
  const run = spawnSync(path, [...bubblewrapArgs(workRoot, spawnAs ?? NOBODY), '--', '/bin/true'], {
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

export function findExecutable(name: string): string | undefined {
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
