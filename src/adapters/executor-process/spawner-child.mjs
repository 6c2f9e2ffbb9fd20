// The spawner: a small helper process that starts job processes for the manager. Forking
// the manager itself costs tens of milliseconds once it holds a large heap (the embedded
// database maps gigabytes); forking this process costs a few. Plain JavaScript, no imports
// beyond node:, so it starts fast and stays small.
import { spawn } from 'node:child_process';

const send = (m) => {
  if (process.connected) process.send(m);
};

process.on('message', (m) => {
  if (m?.type !== 'spawn') return;
  const { id, file, args, options, maxBytes } = m;
  let child;
  try {
    child = spawn(file, args, { ...options, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    send({ type: 'error', id, message: String(err?.message) });
    return;
  }
  child.once('error', (err) => send({ type: 'error', id, message: String(err?.message) }));
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
