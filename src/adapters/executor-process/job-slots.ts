// Jobs start in their cgroups without waiting on the kernel. Moving a process into a cgroup
// waits for an RCU grace period when no move happened just before (measured here: 6–15 ms
// between jobs that come one at a time, most of what the cgroups cost a job). So the
// executor keeps a few slots ready ahead of the jobs: a uid, an empty cgroup, and a bwrap
// started as that uid, already moved into the cgroup and blocked reading its arguments
// (it has run nothing of any job). A job takes a slot, writes its limits into the cgroup and
// hands bwrap its arguments; the next slot is prepared behind it, off the job's path. When
// jobs come faster than slots are made, a job waits for the one being made for it.
import type { JobCgroup, ResourceLimiter } from './resource-limits.ts';
import type { SandboxUser } from './sandbox.ts';
import type { HeldChild, Spawner } from './spawner.ts';
import type { UidPool } from './uid-pool.ts';

export interface JobSlot {
  user?: SandboxUser;
  cgroup: JobCgroup;
  child: HeldChild;
}

export interface SlotPool {
  take(): Promise<JobSlot>;
  close(): Promise<void>;
}

export interface SlotPoolOptions {
  size: number;
  bwrapPath: string;
  /** bwrap's arguments on its command line; the rest comes through fd 3 (sandbox.ts). */
  bwrapArgs: string[];
  spawner: Spawner & Required<Pick<Spawner, 'hold'>>;
  limiter: ResourceLimiter & Required<Pick<ResourceLimiter, 'createCgroup'>>;
  uids?: UidPool;
  maxBytes: number;
}

let slots = 0;

export function createSlotPool(opts: SlotPoolOptions): SlotPool {
  const ready: Array<Promise<JobSlot>> = [];
  const dead = new WeakSet<JobSlot>();
  let closed = false;

  const discard = async (slot: JobSlot) => {
    try {
      if (slot.child.pid) process.kill(-slot.child.pid, 'SIGKILL');
    } catch {
      // gone already
    }
    await slot.cgroup.remove();
    if (slot.user) await opts.uids?.release(slot.user);
  };

  const make = async (): Promise<JobSlot> => {
    const user = await opts.uids?.acquire();
    let cgroup: JobCgroup | undefined;
    let child: HeldChild | undefined;
    try {
      cgroup = await opts.limiter.createCgroup(`slot-${process.pid}-${++slots}`);
      child = opts.spawner.hold({
        file: opts.bwrapPath,
        args: opts.bwrapArgs,
        cwd: '/',
        env: {},
        uid: user?.uid,
        gid: user?.gid,
        maxBytes: opts.maxBytes,
      });
      const started = child;
      await new Promise<void>((resolve, reject) => {
        if (started.pid) return resolve();
        started.once('pid', () => resolve());
        started.once('error', reject);
      });
      await cgroup.adopt(child.pid!);
      const slot: JobSlot = { user, cgroup, child };
      child.once('exit', () => dead.add(slot));
      child.once('error', () => dead.add(slot));
      return slot;
    } catch (err) {
      if (cgroup && child) await discard({ user, cgroup, child });
      else {
        await cgroup?.remove();
        if (user) await opts.uids?.release(user);
      }
      throw err;
    }
  };

  const refill = () => {
    while (!closed && ready.length < opts.size) {
      const next = make();
      next.catch(() => undefined); // reported to the job that takes it
      ready.push(next);
    }
  };

  return {
    async take() {
      if (closed) throw new Error('process executor: closed');
      refill();
      const next = ready.shift()!;
      refill();
      // One made in advance that failed (say, the helper restarted meanwhile): one more try.
      const slot = await next.catch(() => make());
      if (!dead.has(slot)) return slot;
      // Its bwrap died while waiting (the spawner restarted): a fresh one.
      await discard(slot);
      return make();
    },
    async close() {
      closed = true;
      const waiting = ready.splice(0);
      await Promise.all(waiting.map((p) => p.then(discard, () => undefined)));
    },
  };
}
