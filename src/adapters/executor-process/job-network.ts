// The jobs' network (issue #11 item 12): the outside, but none of the host's loopback services
// (an unauthenticated Redis on 127.0.0.1:6379, PostgreSQL, the manager itself).
//   isolated  the spawner helper starts in a network namespace of its own (`unshare --net`)
//             and slirp4netns connects it to the outside with --disable-host-loopback: jobs
//             reach other machines (through the host's routing, as the manager would), never
//             an address of the host's loopback, which in there is the namespace's own.
//   none      the same namespace without slirp4netns: loopback only.
//   host      the host's network, loopback included: only when configured (--job-network host).
// One namespace and one slirp4netns per helper, shared by the jobs it starts: per job they
// would cost a process and 5–11 ms more per job (measured with pasta and slirp4netns, see
// docs/benchmarks.md). Jobs running at the same time can therefore reach each other's
// listening sockets; they still cannot reach the host's.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import type { Readable } from 'node:stream';
import { findExecutable } from './sandbox.ts';

export type JobNetworkMode = 'isolated' | 'host' | 'none';

export interface JobNetwork {
  /** What is in effect (may be less than requested, see note). */
  mode: JobNetworkMode;
  note: string;
  /** The command that starts the spawner helper in the jobs' namespace. */
  launcher?: string[];
  /** Connects the helper's namespace to the outside; resolves once it is usable. */
  attach?: (pid: number) => Promise<{ close(): void }>;
  /** The resolver jobs must use (slirp4netns's, which forwards to the host's). */
  nameserver?: string;
}

const SLIRP_NAMESERVER = '10.0.2.3';
const ATTACH_TIMEOUT_MS = 10_000;

const isRoot = () => process.getuid?.() === 0;

/** Decides the jobs' network once, at start-up (runs a namespace probe). */
export function resolveJobNetwork(requested: JobNetworkMode): JobNetwork {
  if (requested === 'host') {
    return {
      mode: 'host',
      note: "network: the host's, loopback services included (--job-network host)",
    };
  }
  const unshare = findExecutable('unshare');
  // Not root: the namespace needs a user namespace of its own (root in there, to bring lo up).
  const ip = findExecutable('ip');
  const launcher = unshare
    ? [
        unshare,
        ...(isRoot() ? [] : ['--user', '--map-root-user']),
        '--net',
        // A new namespace's loopback is down: jobs that talk to themselves on 127.0.0.1 need it.
        ...(ip ? ['/bin/sh', '-c', `${ip} link set lo up; exec "$0" "$@"`] : []),
      ]
    : undefined;
  const probe = launcher
    ? spawnSync(launcher[0]!, [...launcher.slice(1), '/bin/true'], {
        env: {},
        encoding: 'utf8',
        timeout: 10_000,
      })
    : undefined;
  if (!launcher || probe?.status !== 0) {
    const why = launcher
      ? (probe?.stderr || probe?.error?.message || `exit ${probe?.status}`).trim()
      : 'unshare (util-linux) is not installed';
    return {
      mode: 'host',
      note: `network: the host's, loopback services included — no network namespace can be created here (${why})`,
    };
  }
  if (requested === 'none')
    return {
      mode: 'none',
      launcher,
      note: 'network: none (a loopback of their own only; --job-network none)',
    };
  const slirp = findExecutable('slirp4netns');
  if (!slirp) {
    return {
      mode: 'none',
      launcher,
      note: "network: none — slirp4netns is not installed, so jobs get a loopback of their own and no outside (never the host's); install slirp4netns (scripts/ensure-system-deps.sh)",
    };
  }
  try {
    // slirp4netns opens it inside the namespace, as our uid (some hosts make it root-only).
    accessSync('/dev/net/tun', constants.R_OK | constants.W_OK);
  } catch (err) {
    return {
      mode: 'none',
      launcher,
      note: `network: none — slirp4netns cannot open /dev/net/tun (${(err as NodeJS.ErrnoException).code}), so jobs get a loopback of their own and no outside (never the host's); make /dev/net/tun 0666 (its usual mode) or run as root`,
    };
  }
  return {
    mode: 'isolated',
    launcher,
    attach: (pid) => attachSlirp(slirp, pid),
    nameserver: SLIRP_NAMESERVER,
    note: "network: isolated (a namespace of their own, outside through slirp4netns --disable-host-loopback; none of the host's loopback services; IPv4 only)",
  };
}

/** Runs slirp4netns for the namespace of pid; resolves when it has configured the interface. */
function attachSlirp(slirp: string, pid: number): Promise<{ close(): void }> {
  return new Promise((resolve, reject) => {
    const args = [
      '--configure',
      '--mtu=65520',
      '--disable-host-loopback',
      '--enable-sandbox',
      // fd 3: it writes there when ready; fd 4: it exits when we go (our end closes).
      '--ready-fd=3',
      '--exit-fd=4',
      String(pid),
      'tap0',
    ];
    const p: ChildProcess = spawn(slirp, args, {
      stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'],
      env: {},
    });
    let stderr = '';
    p.stderr?.on('data', (d: Buffer) => {
      if (stderr.length < 2000) stderr += d.toString();
    });
    const close = () => {
      p.kill('SIGTERM');
    };
    const timer = setTimeout(() => {
      close();
      reject(new Error(`slirp4netns did not get ready in ${ATTACH_TIMEOUT_MS} ms`));
    }, ATTACH_TIMEOUT_MS);
    const ready = p.stdio[3] as Readable;
    ready.once('data', () => {
      clearTimeout(timer);
      resolve({ close });
    });
    p.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    p.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`slirp4netns exited (${signal ?? code}): ${stderr.trim()}`));
    });
    // Neither it nor its pipes keep the manager alive.
    p.unref();
    for (const s of [p.stderr, p.stdio[3], p.stdio[4]])
      (s as unknown as { unref?(): void } | null)?.unref?.();
  });
}
