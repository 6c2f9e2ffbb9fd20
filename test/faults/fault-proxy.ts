// A TCP proxy in front of one manager's public port, through which the other managers reach
// it: a network fault between them is a mode of this proxy. `pass` forwards; `drop` cuts
// every connection and refuses new ones (a partition); `delay` holds every chunk for a while
// in both directions (a slow link: calls time out while the bytes still arrive); `lose-answers`
// forwards requests but never the answers, cutting each connection after a moment (the
// request went through, its answer was lost).
import { connect, createServer, type Server, type Socket } from 'node:net';

export type ProxyMode =
  | { kind: 'pass' }
  | { kind: 'drop' }
  | { kind: 'delay'; ms: number }
  | { kind: 'lose-answers' };

export interface FaultProxy {
  readonly url: string;
  mode: ProxyMode;
  /** Connections opened through it so far. */
  readonly connections: number;
  close(): Promise<void>;
}

export const startFaultProxy = async (targetPort: number): Promise<FaultProxy> => {
  let mode: ProxyMode = { kind: 'pass' };
  let connections = 0;
  const open = new Set<Socket>();
  const server: Server = createServer((client) => {
    connections += 1;
    if (mode.kind === 'drop') {
      client.destroy();
      return;
    }
    const upstream = connect(targetPort, '127.0.0.1');
    open.add(client);
    open.add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    // Each chunk is sent as the mode is when it arrives.
    const relay = (from: Socket, to: Socket, answers: boolean) => {
      from.on('data', (chunk: Buffer) => {
        const m = mode;
        if (m.kind === 'drop') return end();
        if (m.kind === 'lose-answers' && answers) {
          // The answer never reaches the caller; the connection dies soon after.
          setTimeout(end, 50);
          return;
        }
        if (m.kind === 'delay') {
          from.pause();
          setTimeout(() => {
            if (!to.destroyed) to.write(chunk);
            from.resume();
          }, m.ms);
          return;
        }
        if (!to.destroyed) to.write(chunk);
      });
    };
    relay(client, upstream, false);
    relay(upstream, client, true);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    get mode() {
      return mode;
    },
    set mode(m: ProxyMode) {
      mode = m;
      // A partition cuts what is open now, too.
      if (m.kind === 'drop') for (const s of open) s.destroy();
    },
    get connections() {
      return connections;
    },
    async close() {
      for (const s of open) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
};
