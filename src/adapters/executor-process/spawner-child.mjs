// The spawner: a small helper process that starts job processes for the manager. Forking
// the manager itself costs tens of milliseconds once it holds a large heap (the embedded
// database maps gigabytes); forking this process costs a few. Plain JavaScript, no imports
// beyond node:, so it starts fast and stays small.
//
// A job is placed in its cgroups before it runs any code of its own, in one of two ways:
// - held: the child is started but its fd 3 stays open and empty ('hold'); bwrap blocks
//   reading its arguments there, the manager moves it into the job's cgroups, and 'release'
//   writes them (job-slots.ts starts these ahead of the jobs, off their critical path);
// - cgroup.join: this process moves itself into the job's cgroups, starts the job (spawn
//   returns once the child has exec'd, so the job is born there) and moves back.
// It lives in the jobs' network namespace (job-network.ts), which every job it starts shares.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';

const send = (m) => {
  if (process.connected) process.send(m);
};

/** Writing 0 to cgroup.procs moves the writer (all its threads). */
const moveSelf = (procsFile) => writeFileSync(procsFile, '0');

const startIn = (cgroup, start) => {
  if (!cgroup) return start();
  try {
    for (const file of cgroup.join) moveSelf(file);
    return start();
  } finally {
    // Also after a failed join: moving home from home is harmless.
    try {
      for (const file of cgroup.leave) moveSelf(file);
    } catch (err) {
      // Never stay in a job's cgroup: its limits would bind every later job.
      send({ type: 'fatal', message: `cannot leave a job cgroup: ${err?.message}` });
      process.exit(70);
    }
  }
};

/** Held children, waiting for their fd 3. */
const held = new Map();

const writeFd3 = (child, data) => {
  child.stdio[3].on('error', () => {}); // the process may exit before reading it all
  child.stdio[3].end(Buffer.from(data));
};

process.on('message', (m) => {
  if (m?.type === 'release') {
    const child = held.get(m.id);
    held.delete(m.id);
    if (child) writeFd3(child, m.fd3);
    return;
  }
  if (m?.type !== 'spawn') return;
  const { id, file, args, options, maxBytes, fd3, hold, cgroup } = m;
  let child;
  try {
    const stdio = fd3 || hold ? ['ignore', 'pipe', 'pipe', 'pipe'] : ['ignore', 'pipe', 'pipe'];
    child = startIn(cgroup, () => spawn(file, args, { ...options, detached: true, stdio }));
  } catch (err) {
    send({ type: 'error', id, message: String(err?.message) });
    return;
  }
  child.once('error', (err) => send({ type: 'error', id, message: String(err?.message) }));
  if (hold) {
    held.set(id, child);
    child.once('exit', () => held.delete(id));
  } else if (fd3) writeFd3(child, fd3);
  if (child.pid) send({ type: 'spawned', id, pid: child.pid });
  // Forward at most what the manager keeps (plus one chunk to mark the cut); drain the rest.
  const unsent = [0, 0, 0];
  const forward = (stream, which) => {
    let sent = 0;
    stream.on('data', (chunk) => {
      if (sent > maxBytes) {
        unsent[which] += chunk.length;
        return;
      }
      sent += chunk.length;
      send({ type: 'out', id, stream: which, data: chunk });
    });
  };
  forward(child.stdout, 1);
  forward(child.stderr, 2);
  child.once('exit', (code, signal) => send({ type: 'exit', id, code, signal }));
  // The counts of what was not forwarded, so the manager can say how much was cut.
  child.once('close', () => send({ type: 'close', id, unsent: [unsent[1], unsent[2]] }));
});

// The manager going away takes the spawner with it.
process.on('disconnect', () => process.exit(0));
