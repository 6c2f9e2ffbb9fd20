// The audit trail's cost on the peer channel: request throughput and latency with the audit
// on against the same manager build with it off, in the same run (two managers in this
// process on PGlite, as the local tier runs; jobs are stored, not run). Two requests, each
// over mTLS with keep-alive connections: job intake (POST /federation/v1/job/intake, a
// delegated job's event: the job row is written) and a query (POST
// /federation/v1/list/services). Runs alternate so load drift hits both alike. The audit's
// work is the row (hash of the request), the queue, and the batched insert with its hash
// chain, all on this event loop.
//   node bin/run-ts.mjs bench/audit.bench.ts
//   BENCH_SECONDS (per run, default 3), BENCH_ROUNDS (default 4), BENCH_CONNECTIONS (default 8)
// Goal: intake throughput with audit ≥ 95 % of without (≤ 5 % overhead).
// BENCH_CPU_PROFILE=/tmp/audit.cpuprofile profiles the intake series (both sides).
import { loadavg } from 'node:os';
import { Agent, request } from 'undici';
import { certTools } from '../src/adapters/pki/x509-pki.ts';
import { type BenchManager, basicHeader, fmt, percentile, profiled, row, startBenchManager } from './lib.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 8);
const scope = { resources: ['services', 'jobs'], verbs: ['list', 'delegate'], rate_per_minute: 100_000 };
const EVENT = Buffer.from(JSON.stringify({ message: 'x'.repeat(200) }));

type Call = { path: string; body: string | Buffer; type: string; status: number };
const CALLS: Record<'intake' | 'query', Call> = {
  intake: { path: '/job/intake', body: EVENT, type: 'application/octet-stream', status: 201 },
  query: { path: '/list/services', body: '{"limit":10}', type: 'application/json', status: 200 },
};

const post = async (url: string, body: unknown) => {
  const res = await fetch(url, {
    method: 'POST',
    headers: { authorization: basicHeader, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${url} answered ${res.status}: ${await res.text()}`);
  const text = await res.text();
  return (text ? JSON.parse(text) : {}) as Record<string, unknown>;
};

/** A raw peer of `m` (the bench holds the key) and what it needs to call the channel. */
const peerOf = async (m: BenchManager) => {
  const g = await post(`${m.url}/system/grants`, { peer: 'a', subject: 'alice', scope });
  const { token } = (await post(`${m.url}/system/grants/${g.id}/token`, { ttl: 300 })) as { token: string };
  const { keyPem, csrPem } = await certTools.createKeyAndCsr('bench');
  const res = await fetch(`${m.url}/federation/v1/enroll`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token, csr: csrPem }),
  });
  const { certificate, chain, peer_channel_url } = (await res.json()) as {
    certificate: string;
    chain: string[];
    peer_channel_url: string;
  };
  await post(`${m.url}/system/services`, {
    name: 'intake',
    image: 'ghcr.io/grycap/alpine',
    script: 'echo',
    cpu: '0.1',
    memory: '32Mi',
    visibility: 'public',
  });
  return {
    url: `${peer_channel_url}/federation/v1`,
    agent: new Agent({
      connections: CONNECTIONS,
      connect: { ca: chain, cert: certificate, key: keyPem, rejectUnauthorized: true },
    }),
  };
};

/** CONNECTIONS loops of sequential requests for SECONDS: requests done and their latencies. */
const run = async (p: { url: string; agent: Agent }, call: Call, seconds: number) => {
  const until = Date.now() + seconds * 1000;
  const lat: number[] = [];
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (Date.now() < until) {
        const t = process.hrtime.bigint();
        const res = await request(`${p.url}${call.path}`, {
          dispatcher: p.agent,
          method: 'POST',
          headers: { 'content-type': call.type },
          body: call.body,
        });
        const text = await res.body.text();
        if (res.statusCode !== call.status)
          throw new Error(`peer channel answered ${res.statusCode}: ${text}`);
        lat.push(Number(process.hrtime.bigint() - t) / 1e6);
      }
    }),
  );
  return lat;
};

const on = await startBenchManager(
  'pglite',
  { clusterId: 'audited', peerListen: '127.0.0.1:0' },
  { runJobs: false },
);
const off = await startBenchManager(
  'pglite',
  { clusterId: 'unaudited', peerListen: '127.0.0.1:0' },
  { audit: false, runJobs: false },
);
try {
  const pOn = await peerOf(on);
  const pOff = await peerOf(off);
  console.log(`${CONNECTIONS} connections, ${ROUNDS} × ${SECONDS} s per side and request\n`);
  console.log(row(['peer channel request', 'audit', 'requests', 'req/s', 'median ms', 'p99 ms']));
  console.log(row(['---', '---', '---:', '---:', '---:', '---:']));
  const ratios: Record<string, number> = {};
  const series = async (name: 'intake' | 'query') => {
    const call = CALLS[name];
    await run(pOn, call, 1);
    await run(pOff, call, 1);
    const lat = { on: [] as number[], off: [] as number[] };
    for (let r = 0; r < ROUNDS; r++) {
      // Alternate which goes first.
      for (const k of r % 2 ? (['off', 'on'] as const) : (['on', 'off'] as const))
        lat[k].push(...(await run(k === 'on' ? pOn : pOff, call, SECONDS)));
    }
    for (const l of Object.values(lat)) l.sort((x, y) => x - y);
    const rps = (l: number[]) => l.length / (ROUNDS * SECONDS);
    ratios[name] = rps(lat.on) / rps(lat.off);
    for (const k of ['off', 'on'] as const)
      console.log(
        row([
          `POST ${call.path}`,
          k,
          lat[k].length,
          fmt(rps(lat[k]), 0),
          fmt(percentile(lat[k], 50), 3),
          fmt(percentile(lat[k], 99), 3),
        ]),
      );
  };
  await profiled(process.env.BENCH_CPU_PROFILE, () => series('intake'));
  await series('query');
  const rows = (await on.manager.store.audit.list({ afterSeq: 0, limit: 1000 })).length;
  console.log(
    `\nload average at end: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}; audit rows stored: ${rows >= 1000 ? '≥ 1000' : rows}`,
  );
  console.log(
    `intake throughput with audit: ${fmt(ratios.intake * 100, 1)} % of without (goal ≥ 95 %: ${ratios.intake >= 0.95 ? 'met' : 'missed'}); query: ${fmt(ratios.query * 100, 1)} %`,
  );
  await pOn.agent.close();
  await pOff.agent.close();
} finally {
  await on.close();
  await off.close();
}
