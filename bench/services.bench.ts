// Services API: create rate, and GET /system/services with 1,000 services, on PGlite and
// PostgreSQL, beside a bare Fastify route measured in the same run.
//   node bin/run-ts.mjs bench/services.bench.ts
import { bareFastify, basicHeader, fmt, load, row, type StoreKind, startBenchManager } from './lib.ts';

const DURATION = Number(process.env.BENCH_SECONDS ?? 5);

const main = async () => {
  const bare = await bareFastify();
  const baseline = await load({ url: `${bare.url}/bare`, duration: DURATION });
  await bare.close();
  const lines = [
    row(['what', 'store', 'req/s', 'p50 ms', 'p99 ms', 'vs bare route']),
    row(['---', '---', '---', '---', '---', '---']),
    row(['bare Fastify GET', '-', baseline.requestsPerSec, baseline.p50Ms, baseline.p99Ms, '1.00']),
  ];
  for (const kind of ['pglite', 'postgres'] as StoreKind[]) {
    const m = await startBenchManager(kind);
    try {
      let n = 0;
      const create = await load({
        url: `${m.url}/system/services`,
        method: 'POST',
        duration: DURATION,
        connections: 20,
        headers: { authorization: basicHeader, 'content-type': 'application/json' },
        requests: [
          {
            setupRequest: (req) => ({
              ...req,
              body: JSON.stringify({
                name: `svc-${process.pid}-${n++}`,
                image: 'alpine',
                script: 'echo hi',
                cpu: '0.1',
              }),
            }),
          },
        ],
      });
      // Exactly 1,000 services for the listing: trim what the create run made, or top up.
      const made = await m.manager.store.listServices();
      for (const s of made.slice(1000)) await m.manager.store.deleteService(s.name);
      for (let i = made.length; i < 1000; i++) {
        await m.manager.store.createService({
          name: `fill-${i}`,
          image: 'alpine',
          script: 'echo',
          cpu: '0.1',
          memory: '256Mi',
          log_level: 'INFO',
          visibility: 'private',
          token: 'f'.repeat(64),
          owner: 'cluster_admin',
          environment: { variables: {}, secrets: {} },
        });
      }
      const total = (await m.manager.store.listServices()).length;
      const list = await load({
        url: `${m.url}/system/services`,
        duration: DURATION,
        connections: 10,
        headers: { authorization: basicHeader },
      });
      lines.push(
        row([
          `POST /system/services (create)`,
          kind,
          create.requestsPerSec,
          create.p50Ms,
          create.p99Ms,
          fmt(create.requestsPerSec / baseline.requestsPerSec, 3),
        ]),
        row([
          `GET /system/services (${total} services)`,
          kind,
          list.requestsPerSec,
          list.p50Ms,
          list.p99Ms,
          fmt(list.requestsPerSec / baseline.requestsPerSec, 4),
        ]),
      );
      if (create.non2xx || list.non2xx) lines.push(`(non-2xx: create ${create.non2xx}, list ${list.non2xx})`);
    } finally {
      await m.close();
    }
  }
  console.log(lines.join('\n'));
};

await main();
