// Async intake on the federated tier (PostgreSQL + Valkey/Redis): one replica, then two
// replicas of the same cluster taking load at once, as a ratio. The replicas are real
// `flotilla up` processes (each has its own event loop); autocannon runs here.
//   node bin/run-ts.mjs bench/federated-intake.bench.ts
import { randomBytes } from 'node:crypto';
import { startClusters } from '../test/support/cluster-harness.ts';
import { createTempDatabase } from '../test/support/postgres.ts';
import { fmt, load, row } from './lib.ts';

const DURATION = Number(process.env.BENCH_SECONDS ?? 5);
const REDIS_URL = process.env.FLOTILLA_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

const main = async () => {
  const db = await createTempDatabase('flotilla_bench');
  const cluster = `bench${randomBytes(3).toString('hex')}`;
  const env = { DATABASE_URL: db.url, VALKEY_URL: REDIS_URL };
  // Jobs are accepted and stored but not run: a service too large for any node that has
  // no replica to go to would fail at once, so give the runner no room instead.
  const args = ['--cluster-id', cluster, '--cpus', '0.001'];
  const h = await startClusters(
    [
      { id: 'r1', args: [...args, '--replica-id', 'r1'], env },
      { id: 'r2', args: [...args, '--replica-id', 'r2'], env },
    ],
    { adminPassword: 'bench' },
  );
  try {
    const [r1, r2] = h.clusters;
    await r1.client.createService({
      name: 'intake',
      image: 'alpine',
      script: 'true',
      cpu: '0.001',
      memory: '1Ki',
    });
    const { token } = await r1.client.getService('intake');
    const opts = (url: string) => ({
      url: `${url}/job/intake`,
      method: 'POST' as const,
      body: 'aGVsbG8=',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain' },
      duration: DURATION,
      connections: 50,
    });
    const one = await load(opts(r1.url));
    const [a, b] = await Promise.all([load(opts(r1.url)), load(opts(r2.url))]);
    const two = a.requestsPerSec + b.requestsPerSec;
    console.log(
      [
        row(['replicas', 'accepted/s', 'p99 ms', 'ratio to one replica']),
        row(['---', '---', '---', '---']),
        row([1, one.requestsPerSec, one.p99Ms, '1.00']),
        row([2, two, Math.max(a.p99Ms, b.p99Ms), fmt(two / one.requestsPerSec, 2)]),
      ].join('\n'),
    );
  } finally {
    await h.close();
    await db.drop();
  }
};

await main();
