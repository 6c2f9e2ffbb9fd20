// Starting job processes: directly, or through the spawner helper process (see
// spawner-child.mjs for why). Both give the same child-like object to the supervisor.
import { type ChildProcess, fork, spawn } from 'node:child_process';
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

export interface Spawner {
  spawn(req: SpawnRequest): ChildLike;
  close(): void;
}

/** Forks the caller itself: simple, slow when the caller's heap is large. */
export const directSpawner: Spawner = {
  spawn(req) {
    return spawn(req.file, req.args, {
      cwd: req.cwd,
      env: req.env,
      uid: req.uid,
      gid: req.gid,
      detached: true, // a new process group, so the whole group can be killed
      stdio: ['ignore', 'pipe', 'pipe'],
    }) as ChildProcess & ChildLike;
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
  | { type: 'error'; id: number; message: string };

/** Starts processes through one long-lived helper process, restarted if it dies. */
export const createRemoteSpawner = (): Spawner => {
  let helper: ChildProcess | undefined;
  let nextId = 1;
  const children = new Map<number, RemoteChild>();

  const onMessage = (m: Message) => {
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

  const ensure = (): ChildProcess => {
    if (helper?.connected) return helper;
    const h = fork(CHILD, [], { serialization: 'advanced', stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    h.on('message', (m) => onMessage(m as Message));
    h.once('exit', () => {
      if (helper === h) helper = undefined;
      // Jobs started through it lose their pipes: report them as failed to start.
      for (const [id, c] of children) {
        c.emit('error', new Error('the spawner process exited'));
        children.delete(id);
      }
    });
    // Never keeps the manager alive by itself.
    h.unref();
    (h as unknown as { channel?: { unref(): void } }).channel?.unref();
    helper = h;
    return h;
  };

  return {
    spawn(req) {
      const id = nextId++;
      const child = new RemoteChild();
      children.set(id, child);
      const { maxBytes, ...rest } = req;
      ensure().send({
        type: 'spawn',
        id,
        file: rest.file,
        args: rest.args,
        options: { cwd: rest.cwd, env: rest.env, uid: rest.uid, gid: rest.gid },
        maxBytes,
      });
      return child;
    },
    close() {
      helper?.disconnect();
      helper = undefined;
    },
  };
};
