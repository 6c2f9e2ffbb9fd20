// What the job sandbox would be on this machine, for `flotilla doctor`: the same probes the
// executor runs at start-up (bubblewrap, cgroups, the jobs' network), without starting it.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type JobNetworkMode, resolveJobNetwork } from './job-network.ts';
import { resolveResourceLimits } from './resource-limits.ts';
import { resolveSandbox } from './sandbox.ts';
import type { UidRange } from './uid-pool.ts';

export interface JobSandboxCheck {
  /** green: bubblewrap, a uid per job, cgroup limits and the requested network; yellow: a fallback is in use; red: the executor would not start. */
  level: 'green' | 'yellow' | 'red';
  message: string;
  remedy?: string;
}

export function inspectJobSandbox(opts: { network: JobNetworkMode; jobUids: UidRange }): JobSandboxCheck {
  const probeRoot = mkdtempSync(join(tmpdir(), 'flotilla-doctor-'));
  chmodSync(probeRoot, 0o711); // as a work root: the job uids walk through it
  try {
    const sandbox = resolveSandbox('auto', probeRoot, { uid: opts.jobUids.first, gid: opts.jobUids.first });
    const limits = resolveResourceLimits('auto');
    limits.close();
    const network = resolveJobNetwork(opts.network);
    const remedies: string[] = [];
    if (sandbox.isolation !== 'bubblewrap')
      remedies.push('install bubblewrap (scripts/ensure-system-deps.sh)');
    if (!sandbox.switchesUser && sandbox.isolation !== 'none')
      remedies.push('run the manager as root for a uid per job');
    if (limits.kind === 'rlimit')
      remedies.push('run the manager as root, or give it a delegated cgroup v2 subtree, for per-job cgroups');
    if (network.mode !== opts.network) remedies.push('install slirp4netns (scripts/ensure-system-deps.sh)');
    const uids = sandbox.switchesUser
      ? `one uid per job from ${opts.jobUids.first}-${opts.jobUids.last}`
      : 'not root: one uid for all jobs';
    const message = `jobs: ${sandbox.isolation}, ${uids}; limits: ${limits.kind}; network: ${network.mode} — ${[sandbox.note, limits.note, network.note].join('; ')}`;
    return remedies.length
      ? { level: 'yellow', message, remedy: remedies.join('; ') }
      : { level: 'green', message };
  } catch (err) {
    return { level: 'red', message: (err as Error).message, remedy: 'see docs/security.md, "Job sandbox"' };
  } finally {
    rmSync(probeRoot, { recursive: true, force: true });
  }
}
