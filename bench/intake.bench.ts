// Async job intake: POST /job/{service} accepted and stored per second, with autocannon,
// on PGlite (local tier) and PostgreSQL, beside a bare Fastify POST in the same run. Jobs
// are stored but not run here, so the figure is intake alone.
//   node bin/run-ts.mjs bench/intake.bench.ts
import { bareFastify, basicHeader, fmt, load, row, type StoreKind, startBenchManager } from './lib.ts';

const DURATION = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 100);

const main = async () => {
  const bare = await bareFastify();
  const baseline = await load({
    url: `${bare.url}/bare`,
    method: 'POST',
    body: 'eA==',
    duration: DURATION,
    connections: CONNECTIONS,
  });
  await bare.close();
  const lines = [
    row(['what', 'store', 'accepted/s', 'p50 ms', 'p99 ms', 'vs bare route', 'stored ≥ answered 201']),
    row(['---', '---', '---', '---', '---', '---', '---']),
    row(['bare Fastify POST', '-', baseline.requestsPerSec, baseline.p50Ms, baseline.p99Ms, '1.00', '-']),
  ];
  for (const kind of ['pglite', 'postgres'] as StoreKind[]) {
    const m = await startBenchManager(kind, {}, { runJobs: false });
    try {
      const res = await fetch(`${m.url}/system/services`, {
        method: 'POST',
        headers: { authorization: basicHeader, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'intake', image: 'alpine', script: 'true', cpu: '0.1' }),
      });
      if (res.status !== 201) throw new Error(`create failed: ${res.status}`);
      const svc = (await (
        await fetch(`${m.url}/system/services/intake`, { headers: { authorization: basicHeader } })
      ).json()) as { token: string };
      const r = await load({
        url: `${m.url}/job/intake`,
        method: 'POST',
        body: Buffer.from('hello').toString('base64'),
        headers: { authorization: `Bearer ${svc.token}`, 'content-type': 'text/plain' },
        duration: DURATION,
        connections: CONNECTIONS,
      });
      const counts = await m.manager.store.countJobs();
      // Requests still in flight when autocannon stops are stored but not counted as answered.
      const accepted = r.total - r.non2xx;
      lines.push(
        row([
          'POST /job (accepted = stored)',
          kind,
          r.requestsPerSec,
          r.p50Ms,
          r.p99Ms,
          fmt(r.requestsPerSec / baseline.requestsPerSec, 3),
          `${counts.Pending} ≥ ${accepted}${r.non2xx ? ` (${r.non2xx} non-2xx)` : ''}`,
        ]),
      );
    } finally {
      await m.close();
    }
  }
  console.log(lines.join('\n'));
};

await main();
