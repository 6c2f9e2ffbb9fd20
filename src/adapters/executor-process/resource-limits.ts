// Declared memory and cpu, enforced (issue #11 item 11). Decided once at start-up:
//   cgroup-v2  a cgroup per job with memory.max (swap off) and cpu.max
//   cgroup-v1  a memory and a cpu cgroup per job: memory.limit_in_bytes (and memsw, so no
//              swap either) and cpu.cfs_quota_us
//   rlimit     no cgroup can be written here (not root, no delegation): RLIMIT_AS and
//              RLIMIT_CPU set by a /bin/sh wrapper before bwrap. Weaker: per process, not per
//              job; cpu is a total (declared cores × timeout), not a rate.
// Job cgroups live under the manager's own cgroup (so they stay inside whatever limits the
// manager runs under), in a directory of this executor: <own>/flotilla-<pid>-<n>/job-<id>.
// The job is in its cgroup before it runs anything of its own: with bubblewrap, a bwrap that
// still waits for its arguments is moved in (job-slots.ts, ahead of the job); otherwise the
// spawner helper moves itself in, starts the job (born there) and moves back.
import {
  accessSync,
  constants,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  writeFileSync,
} from 'node:fs';
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isAlive } from './process-alive.ts';

export type LimitsKind = 'cgroup-v2' | 'cgroup-v1' | 'rlimit';
export type LimitsMode = 'auto' | 'cgroup' | 'rlimit';

export interface JobLimits {
  cpuMillis: number;
  memoryBytes: number;
  timeoutMs: number;
}

/** A job's cgroups (one per hierarchy). */
export interface JobCgroup {
  /** Their cgroup.procs files: the helper starts a job into them (spawner-child.mjs). */
  procsFiles: string[];
  /** Writes the job's memory and cpu limits; before any code of the job runs. */
  setLimits(limits: JobLimits): Promise<void>;
  /** Moves a process in (one that runs nothing of the job yet: a bwrap still reading its arguments). */
  adopt(pid: number): Promise<void>;
  /** Whether the kernel killed something in it for going over the memory limit. */
  oomKilled(): Promise<boolean>;
  /** Kills what is left in it (a daemon the job started included) and removes it. */
  remove(): Promise<void>;
}

export interface ResourceLimiter {
  kind: LimitsKind;
  /** One sentence for /system/info and doctor. */
  note: string;
  /** The helper's own cgroup.procs files, to move back to after starting a job. */
  homeProcsFiles: string[];
  /** Set for the cgroup kinds: an empty cgroup, without limits yet. */
  createCgroup?(name: string): Promise<JobCgroup>;
  /** For 'rlimit': the ulimit values (KiB of address space, cpu seconds). */
  rlimits(limits: JobLimits): { addressSpaceKiB: number; cpuSeconds: number };
  close(): void;
}

const CPU_PERIOD_US = 100_000;
/** The kernel's floor for a quota; also keeps a tiny declared cpu from stalling a job outright. */
const MIN_QUOTA_US = 1_000;

export const cpuQuotaUs = (cpuMillis: number): number =>
  Math.max(MIN_QUOTA_US, Math.round((cpuMillis * CPU_PERIOD_US) / 1000));

export const rlimitsFor = (l: JobLimits): { addressSpaceKiB: number; cpuSeconds: number } => ({
  addressSpaceKiB: Math.max(1, Math.ceil(l.memoryBytes / 1024)),
  cpuSeconds: Math.max(1, Math.ceil((l.cpuMillis / 1000) * (l.timeoutMs / 1000))),
});

interface Mount {
  point: string;
  root: string;
  fstype: string;
  options: string[];
}

function cgroupMounts(): Mount[] {
  const mounts: Mount[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    // id parent major:minor root point options [optional…] - fstype source superoptions
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const l = left.split(' ');
    const [fstype, , superOptions] = right.split(' ');
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    mounts.push({ point: l[4]!, root: l[3]!, fstype, options: (superOptions ?? '').split(',') });
  }
  return mounts;
}

/** Our own cgroup per hierarchy: '' for v2, else the controller list ("cpu,cpuacct"). */
function ownCgroups(): Map<string, string> {
  const own = new Map<string, string>();
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const m = line.match(/^\d+:([^:]*):(.*)$/);
    if (m) own.set(m[1]!, m[2]!);
  }
  return own;
}

/** The directory of path (a cgroup path) under a mount whose root may be a sub-path. */
const onDisk = (mount: Mount, path: string): string => {
  const rel = mount.root !== '/' && path.startsWith(mount.root) ? path.slice(mount.root.length) : path;
  return join(mount.point, rel);
};

let executors = 0;
/** One name per executor, the same in every hierarchy. */
const executorDirName = () => `flotilla-${process.pid}-${++executors}`;

/** Removes the cgroup dirs a manager that died left behind (their jobs died with it). */
function sweepStale(parent: string): void {
  let entries: string[];
  try {
    entries = readdirSync(parent);
  } catch {
    return;
  }
  for (const name of entries) {
    const m = name.match(/^flotilla-(\d+)-\d+$/);
    if (!m || isAlive(Number(m[1]))) continue;
    const dir = join(parent, name);
    try {
      for (const job of readdirSync(dir)) if (job.startsWith('job-')) rmdirSync(join(dir, job));
      rmdirSync(dir);
    } catch {
      // busy or gone: left for the next start
    }
  }
}

type Probe<T> = { ok: true; value: T } | { ok: false; why: string };

interface Layout {
  kind: 'cgroup-v2' | 'cgroup-v1';
  /** This executor's directory per hierarchy: memory then cpu (one entry for v2). */
  dirs: string[];
  home: string[];
}

function probeV2(mounts: Mount[], own: Map<string, string>, dirName: string): Probe<Layout> {
  const mount = mounts.find((m) => m.fstype === 'cgroup2');
  const path = own.get('');
  if (!mount || path === undefined) return { ok: false, why: 'no cgroup v2 hierarchy' };
  const self = onDisk(mount, path);
  // v2 forbids processes in a cgroup that hands controllers to children: ours has the
  // manager in it, so the jobs go beside it, under its parent (or the root, which may).
  const base = path === '/' ? self : join(self, '..');
  try {
    const available = readFileSync(join(base, 'cgroup.controllers'), 'utf8').split(/\s+/);
    if (!available.includes('memory') || !available.includes('cpu'))
      return { ok: false, why: `cgroup v2 at ${base} offers no memory and cpu controllers` };
    const enabled = readFileSync(join(base, 'cgroup.subtree_control'), 'utf8').split(/\s+/);
    if (!enabled.includes('memory') || !enabled.includes('cpu'))
      writeFileSync(join(base, 'cgroup.subtree_control'), '+memory +cpu');
    sweepStale(base);
    const dir = join(base, dirName);
    mkdirSync(dir);
    try {
      writeFileSync(join(dir, 'cgroup.subtree_control'), '+memory +cpu');
      probeJobDir(dir, (d) => {
        writeFileSync(join(d, 'memory.max'), String(64 * 1024 ** 2));
        writeFileSync(join(d, 'cpu.max'), `${MIN_QUOTA_US} ${CPU_PERIOD_US}`);
      });
      accessSync(join(self, 'cgroup.procs'), constants.W_OK);
    } catch (err) {
      rmdirSync(dir);
      throw err;
    }
    return { ok: true, value: { kind: 'cgroup-v2', dirs: [dir], home: [join(self, 'cgroup.procs')] } };
  } catch (err) {
    return { ok: false, why: `cgroup v2 at ${base} is not writable here (${(err as Error).message})` };
  }
}

function probeV1(mounts: Mount[], own: Map<string, string>, dirName: string): Probe<Layout> {
  const dirs: string[] = [];
  const home: string[] = [];
  try {
    for (const controller of ['memory', 'cpu']) {
      const mount = mounts.find((m) => m.fstype === 'cgroup' && m.options.includes(controller));
      const key = [...own.keys()].find((k) => k.split(',').includes(controller));
      if (!mount || key === undefined) throw new Error(`no ${controller} hierarchy`);
      const self = onDisk(mount, own.get(key)!);
      sweepStale(self);
      const dir = join(self, dirName);
      mkdirSync(dir);
      dirs.push(dir);
      home.push(join(self, 'cgroup.procs'));
      accessSync(join(self, 'cgroup.procs'), constants.W_OK);
    }
    probeJobDir(dirs[0]!, (d) => writeFileSync(join(d, 'memory.limit_in_bytes'), String(64 * 1024 ** 2)));
    probeJobDir(dirs[1]!, (d) => writeFileSync(join(d, 'cpu.cfs_quota_us'), String(MIN_QUOTA_US)));
    return { ok: true, value: { kind: 'cgroup-v1', dirs, home } };
  } catch (err) {
    for (const dir of dirs) rmdirQuiet(dir);
    return { ok: false, why: `cgroup v1 memory and cpu are not writable here (${(err as Error).message})` };
  }
}

/** Creates a job-like child, sets a limit in it, removes it: writable in practice, not only by mode. */
function probeJobDir(dir: string, set: (d: string) => void): void {
  const probe = join(dir, 'job-probe');
  mkdirSync(probe);
  try {
    set(probe);
  } finally {
    rmdirSync(probe);
  }
}

function rmdirQuiet(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // busy or gone
  }
}

const RLIMIT_NOTE =
  'memory and cpu: rlimits only (RLIMIT_AS per process, RLIMIT_CPU as declared cores × timeout in total, not a rate)';

/** Decides how limits are enforced. Throws when 'cgroup' is required and cannot work here. */
export function resolveResourceLimits(mode: LimitsMode): ResourceLimiter {
  const rlimit = (why: string): ResourceLimiter => ({
    kind: 'rlimit',
    note: `${RLIMIT_NOTE}: ${why}`,
    homeProcsFiles: [],
    rlimits: rlimitsFor,
    close() {},
  });
  if (mode === 'rlimit') return rlimit("configured (resourceLimits: 'rlimit')");
  let mounts: Mount[];
  let own: Map<string, string>;
  try {
    mounts = cgroupMounts();
    own = ownCgroups();
  } catch (err) {
    if (mode === 'cgroup')
      throw new Error(`process executor: cannot read cgroups: ${(err as Error).message}`);
    return rlimit(`cgroups cannot be read (${(err as Error).message})`);
  }
  const dirName = executorDirName();
  const v2 = probeV2(mounts, own, dirName);
  const found = v2.ok ? v2 : probeV1(mounts, own, dirName);
  if (!found.ok) {
    const why = `${v2.ok ? '' : `${v2.why}; `}${found.why}`;
    if (mode === 'cgroup') throw new Error(`process executor: cgroup limits requested but ${why}`);
    return rlimit(why);
  }
  return cgroupLimiter(found.value);
}

function cgroupLimiter(layout: Layout): ResourceLimiter {
  const v2 = layout.kind === 'cgroup-v2';
  const note = v2
    ? 'memory and cpu: a cgroup v2 per job (memory.max, no swap, cpu.max)'
    : 'memory and cpu: cgroup v1 per job (memory.limit_in_bytes with memsw, cpu.cfs_quota_us)';
  return {
    kind: layout.kind,
    note,
    homeProcsFiles: layout.home,
    rlimits: rlimitsFor,
    async createCgroup(name) {
      const dirs = layout.dirs.map((d) =>
        join(d, `job-${name.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64)}`),
      );
      await Promise.all(dirs.map((d) => mkdir(d)));
      const procsFiles = dirs.map((d) => join(d, 'cgroup.procs'));
      const cgroup: JobCgroup = {
        procsFiles,
        async setLimits(limits) {
          const quota = cpuQuotaUs(limits.cpuMillis);
          const bytes = String(limits.memoryBytes);
          // Synchronous on purpose: a few bytes into cgroupfs take microseconds, a trip through
          // the thread pool each takes more (this is on every job's path). Memory in the order
          // the kernel needs: memsw ≥ limit (equal: no swap beyond it; absent without swap accounting).
          if (v2) {
            writeFileSync(join(dirs[0]!, 'memory.max'), bytes);
            writeQuiet(join(dirs[0]!, 'memory.swap.max'), '0'); // no swap configured
            writeFileSync(join(dirs[0]!, 'cpu.max'), `${quota} ${CPU_PERIOD_US}`);
          } else {
            writeFileSync(join(dirs[0]!, 'memory.limit_in_bytes'), bytes);
            writeQuiet(join(dirs[0]!, 'memory.memsw.limit_in_bytes'), bytes);
            // The period is the default one (100 ms): only the quota is written.
            writeFileSync(join(dirs[1]!, 'cpu.cfs_quota_us'), String(quota));
          }
        },
        async adopt(pid) {
          for (const file of procsFiles) await writeFile(file, String(pid));
        },
        oomKilled: async () => oomKills(dirs[0]!, v2) > 0,
        remove: () => removeCgroup(dirs),
      };
      return cgroup;
    },
    close() {
      for (const dir of layout.dirs) rmdirQuiet(dir);
    },
  };
}

function oomKills(memoryDir: string, v2: boolean): number {
  let text = '';
  try {
    text = readFileSync(join(memoryDir, v2 ? 'memory.events' : 'memory.oom_control'), 'utf8');
  } catch {
    // no counter on this kernel
  }
  return Number(text.match(/^oom_kill (\d+)$/m)?.[1] ?? 0);
}

function writeQuiet(path: string, value: string): void {
  try {
    writeFileSync(path, value);
  } catch {
    // optional file (swap accounting off)
  }
}

/** Everything left in the job's cgroups dies (a daemon it started included), then they go. */
async function removeCgroup(dirs: string[]): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    let busy = false;
    for (const dir of dirs) {
      const pids = (await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => ''))
        .split('\n')
        .filter(Boolean)
        .map(Number);
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      try {
        await rmdir(dir);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') busy = true;
      }
    }
    if (!busy) return;
    // Killed processes leave the cgroup once the kernel has reaped them.
    await new Promise((r) => setTimeout(r, 10));
  }
}
