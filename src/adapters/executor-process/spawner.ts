// Starting job processes: directly, or through the spawner helper process (see
// spawner-child.mjs for why). Both give the same child-like object to the supervisor.
import { type ChildProcess, fork, type StdioOptions, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { PassThrough, type Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

export interface SpawnRequest {
  file: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  uid?: number;
  gid?: number;
  /** Written to the child's fd 3, which is then closed. */
  fd3?: Buffer;
  /** Start the child inside these cgroups (cgroup.procs files), then return to `leave`. */
  cgroup?: { join: string[]; leave: string[] };
  /** The supervisor keeps at most this much of each stream. */
  maxBytes: number;
}

/** What the supervisor needs of a started process. Events: 'error', 'exit', 'close',
 * 'pid' (the pid became known, through the spawner), and 'unsent' (stdout and stderr bytes
 * the helper stopped forwarding past the cap). */
export interface ChildLike extends EventEmitter {
  readonly pid: number | undefined;
  readonly stdout: Readable;
  readonly stderr: Readable;
}

/** A child started with its fd 3 open and empty: bwrap waits there for its arguments. */
export interface HeldChild extends ChildLike {
  /** Writes fd 3 (then closes it): the child goes on. */
  release(fd3: Buffer): void;
}

export interface Spawner {
  spawn(req: SpawnRequest): ChildLike;
  /** Starts a child that waits for its fd 3 (see HeldChild); the helper only. */
  hold?(req: Omit<SpawnRequest, 'fd3' | 'cgroup'>): HeldChild;
  close(): void;
}

/**
 * Forks the caller itself: simple, slow when the caller's heap is large. It cannot place a
 * job in a cgroup (that would move the caller), so the executor uses rlimits with it.
 */
export const directSpawner: Spawner = {
  spawn(req) {
    if (req.cgroup) throw new Error('process executor: the direct spawner cannot start a job in a cgroup');
    const child = spawn(req.file, req.args, {
      cwd: req.cwd,
      env: req.env,
      uid: req.uid,
      gid: req.gid,
      detached: true, // a new process group, so the whole group can be killed
      stdio: req.fd3 ? ['ignore', 'pipe', 'pipe', 'pipe'] : ['ignore', 'pipe', 'pipe'],
    });
    if (req.fd3) {
      const fd3 = child.stdio[3] as NodeJS.WritableStream & { on(e: 'error', f: () => void): void };
      fd3.on('error', () => {}); // the process may exit before reading it all
      fd3.end(req.fd3);
    }
    return child as ChildProcess & ChildLike;
  },
  close() {},
};

const CHILD = fileURLToPath(new URL('./spawner-child.mjs', import.meta.url));

class RemoteChild extends EventEmitter implements ChildLike {
  pid: number | undefined;
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
}

type Message =
  | { type: 'spawned'; id: number; pid: number }
  | { type: 'out'; id: number; stream: 1 | 2; data: Uint8Array }
  | { type: 'exit'; id: number; code: number | null; signal: NodeJS.Signals | null }
  | { type: 'close'; id: number; unsent?: [number, number] }
  | { type: 'error'; id: number; message: string }
  | { type: 'fatal'; message: string };

export interface RemoteSpawnerOptions {
  /** A command that starts the helper in its namespace (e.g. `unshare --net`); the helper is appended. */
  launcher?: string[];
  /** Runs once per helper, before its first job: e.g. connects its network namespace. */
  onStart?: (pid: number) => Promise<{ close(): void }>;
  onFatal?: (message: string) => void;
}

/** Starts processes through one long-lived helper process, restarted if it dies. */
export const createRemoteSpawner = (opts: RemoteSpawnerOptions = {}): Spawner => {
  type Helper = { process: ChildProcess; ready: Promise<void> };
  let helper: Helper | undefined;
  let nextId = 1;
  const children = new Map<number, RemoteChild>();

  const onMessage = (m: Message) => {
    if (m.type === 'fatal') {
      opts.onFatal?.(m.message);
      return;
    }
    const c = children.get(m.id);
    if (!c) return;
    if (m.type === 'spawned') {
      c.pid = m.pid;
      c.emit('pid');
    } else if (m.type === 'out') (m.stream === 1 ? c.stdout : c.stderr).write(Buffer.from(m.data));
    else if (m.type === 'exit') c.emit('exit', m.code, m.signal);
    else if (m.type === 'error') {
      c.emit('error', new Error(m.message));
      children.delete(m.id);
    } else if (m.type === 'close') {
      if (m.unsent && (m.unsent[0] || m.unsent[1])) c.emit('unsent', m.unsent[0], m.unsent[1]);
      c.stdout.end();
      c.stderr.end();
      c.emit('close');
      children.delete(m.id);
    }
  };

  const failAll = (why: string) => {
    for (const [id, c] of children) {
      c.emit('error', new Error(why));
      children.delete(id);
    }
  };

  const start = () => {
    const stdio: StdioOptions = ['ignore', 'ignore', 'inherit', 'ipc'];
    // Launched: plain node (the helper is plain JavaScript) with no environment of ours.
    const h = opts.launcher
      ? spawn(opts.launcher[0]!, [...opts.launcher.slice(1), process.execPath, CHILD], {
          stdio,
          serialization: 'advanced',
          env: {},
        })
      : fork(CHILD, [], { stdio, serialization: 'advanced' });
    let attached: { close(): void } | undefined;
    const ready = (async () => {
      if (!opts.onStart) return;
      await new Promise<void>((resolve, reject) => {
        if (h.pid) resolve();
        else h.once('error', reject);
      });
      attached = await opts.onStart(h.pid!);
    })();
    ready.catch(() => h.kill('SIGKILL'));
    h.on('message', (m) => onMessage(m as Message));
    h.on('error', (err) => failAll(`the spawner process failed: ${err.message}`));
    h.once('exit', () => {
      attached?.close();
      if (helper?.process === h) helper = undefined;
      // Jobs started through it lose their pipes: report them as failed to start.
      failAll('the spawner process exited');
    });
    // Never keeps the manager alive by itself.
    h.unref();
    (h as unknown as { channel?: { unref(): void } }).channel?.unref();
    return { process: h, ready };
  };

  const ensure = () => {
    if (!helper?.process.connected || helper.process.exitCode !== null) helper = start();
    return helper;
  };

  const send = (
    req: SpawnRequest,
    extra: { hold?: boolean },
  ): { id: number; child: RemoteChild; h: Helper } => {
    const id = nextId++;
    const child = new RemoteChild();
    children.set(id, child);
    const { maxBytes, ...rest } = req;
    const h = ensure();
    const message = {
      type: 'spawn',
      id,
      file: rest.file,
      args: rest.args,
      options: { cwd: rest.cwd, env: rest.env, uid: rest.uid, gid: rest.gid },
      fd3: rest.fd3,
      cgroup: rest.cgroup,
      maxBytes,
      ...extra,
    };
    const fail = (why: string) => {
      if (children.delete(id)) child.emit('error', new Error(why));
    };
    h.ready.then(
      () => {
        if (!h.process.connected) return fail('the spawner process exited');
        h.process.send(message, (err) => err && fail(`the spawner process is gone: ${err.message}`));
      },
      (err: Error) => fail(`the jobs' network could not be set up: ${err.message}`),
    );
    return { id, child, h };
  };

  return {
    spawn: (req) => send(req, {}).child,
    hold(req) {
      const { id, child, h } = send(req, { hold: true });
      return Object.assign(child, {
        release(fd3: Buffer) {
          if (h.process.connected) h.process.send({ type: 'release', id, fd3 });
        },
      });
    },
    close() {
      if (helper?.process.connected) helper.process.disconnect();
      else helper?.process.kill('SIGKILL');
      helper = undefined;
    },
  };
};
