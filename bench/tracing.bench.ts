// Tracing off vs on: async job intake (POST /job/{service}, stored, not run) on PGlite with
// tracing off (the default: no OTel module, no request hook) and on (a server span per
// request, into an exporter that drops what it gets: the cost of making spans, not of
// shipping them), in the same run. Rounds alternate off/on; off's own spread across rounds
// is the noise band that "off costs nothing measurable" is read against: with tracing off no
// tracing code runs on the intake path at all (the hooks are not added).
//   BENCH_SECONDS=3 BENCH_REPEATS=2 node bin/run-ts.mjs bench/tracing.bench.ts
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import { basicHeader, fmt, type LoadResult, load, row, startBenchManager } from './lib.ts';

const DURATION = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 100);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 2);

let exported = 0;
const dropping: SpanExporter = {
  export(spans, done) {
    exported += spans.length;
    done({ code: 0 });
  },
  shutdown: async () => {},
};

const intakeRun = async (traced: boolean): Promise<LoadResult> => {
  const m = await startBenchManager(
    'pglite',
    {},
    { runJobs: false, traceExporter: traced ? dropping : undefined },
  );
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
    return await load({
      url: `${m.url}/job/intake`,
      method: 'POST',
      body: Buffer.from('hello').toString('base64'),
      headers: {
        authorization: `Bearer ${svc.token}`,
        'content-type': 'text/plain',
        // A traced caller: each server span has a remote parent, as behind a traced client.
        traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      },
      duration: DURATION,
      connections: CONNECTIONS,
    });
  } finally {
    await m.close();
  }
};

const main = async () => {
  // A first pair, not counted: the JIT and the first PGlite open warm up on it.
  await intakeRun(false);
  await intakeRun(true);
  exported = 0;
  const off: LoadResult[] = [];
  const on: LoadResult[] = [];
  for (let i = 0; i < REPEATS; i++) {
    off.push(await intakeRun(false));
    on.push(await intakeRun(true));
  }
  const mean = (rs: LoadResult[]) => rs.reduce((s, r) => s + r.requestsPerSec, 0) / rs.length;
  const offMean = mean(off);
  const offRates = off.map((r) => r.requestsPerSec);
  const spread = (Math.max(...offRates) - Math.min(...offRates)) / offMean;
  const lines = [
    row(['tracing', 'round', 'accepted/s', 'p50 ms', 'p99 ms', 'vs off (mean)']),
    row(['---', '---', '---', '---', '---', '---']),
    ...off.flatMap((r, i) => [
      row(['off', i + 1, r.requestsPerSec, r.p50Ms, r.p99Ms, fmt(r.requestsPerSec / offMean, 3)]),
      row([
        'on',
        i + 1,
        on[i].requestsPerSec,
        on[i].p50Ms,
        on[i].p99Ms,
        fmt(on[i].requestsPerSec / offMean, 3),
      ]),
    ]),
  ];
  console.log(lines.join('\n'));
  console.log(
    `\non/off ratio ${fmt(mean(on) / offMean, 3)}; off's spread between rounds ${fmt(spread * 100, 1)} % ` +
      `(the noise band); spans made with tracing on: ${exported}`,
  );
};

await main();
