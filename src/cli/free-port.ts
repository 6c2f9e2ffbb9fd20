// A free loopback port for a manager started later (demo clusters, test harnesses). Taken
// below the kernel's ephemeral range: a port handed out by `listen(0)` comes from that range,
// which outgoing connections also draw from, so another socket could take it before the
// manager binds it.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const ephemeralStart = (): number => {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    return Number(low) || 32768;
  } catch {
    return 32768;
  }
};

const tryListen = (port: number): Promise<number | undefined> =>
  new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(undefined));
    srv.listen(port, '127.0.0.1', () => {
      const bound = (srv.address() as { port: number }).port;
      srv.close(() => resolve(bound));
    });
  });

export const freePort = async (): Promise<number> => {
  const high = Math.min(ephemeralStart(), 65536);
  const low = Math.max(1024, high - 12_000);
  for (let i = 0; i < 50 && high - low > 100; i++) {
    const port = await tryListen(low + Math.floor(Math.random() * (high - low)));
    if (port) return port;
  }
  const any = await tryListen(0);
  if (!any) throw new Error('no free loopback port');
  return any;
};
