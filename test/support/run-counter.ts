// Counting how many times jobs really ran, by a side effect each run makes: the job calls a
// loopback HTTP server the test owns (`GET /ran/<marker>`) when it starts, so a run cut
// short by a kill still counts. Managers run their jobs with `--job-network host` to reach
// it. The seeded PRNG and seed choice the fault tests share live here too.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { seededRandom } from '../../src/core/delegation/policy.ts';

export interface RunCounter {
  readonly port: number;
  /** How many runs each marker made. */
  runs(marker: string): number;
  /** Every marker that ran more than once. */
  twice(): string[];
  total(): number;
  close(): Promise<void>;
}

export const startRunCounter = async (): Promise<RunCounter> => {
  const counts = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const m = /^\/ran\/([A-Za-z0-9._-]{1,128})$/.exec(req.url ?? '');
    if (m) counts.set(m[1], (counts.get(m[1]) ?? 0) + 1);
    res.writeHead(m ? 204 : 404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    runs: (marker) => counts.get(marker) ?? 0,
    twice: () => [...counts].filter(([, n]) => n > 1).map(([k]) => k),
    total: () => [...counts.values()].reduce((a, b) => a + b, 0),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
};

/**
 * A service script that reports its run to the counter first, then works a little: the
 * marker is the input's first line. `wget` is what the job sandbox offers.
 */
export const countingScript = (port: number, workSeconds = '0.3'): string => `#!/bin/sh
marker=$(head -n 1 "$INPUT_FILE_PATH" | tr -cd 'A-Za-z0-9._-')
wget -q -O /dev/null "http://127.0.0.1:${port}/ran/$marker" || curl -fsS -o /dev/null "http://127.0.0.1:${port}/ran/$marker"
echo "marker=$marker ran-on=$OSCAR_SERVICE_NAME"
sleep ${workSeconds}
echo "done $marker"
`;

/** The seed of a run: `env` (to replay a failure) or a fresh one; printed either way. */
export const chooseSeed = (name: string, env: string | undefined): number => {
  const seed = env !== undefined && env !== '' ? Number(env) : Math.floor(Math.random() * 2 ** 31);
  if (!Number.isInteger(seed)) throw new Error(`${name} must be a whole number, got "${env}"`);
  console.log(`[seed] ${name}=${seed}`);
  return seed;
};

export const prng = (seed: number) => {
  const next = seededRandom(seed);
  return {
    next,
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)],
  };
};
