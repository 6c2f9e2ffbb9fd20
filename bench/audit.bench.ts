// The audit trail's cost on the peer channel: request throughput and latency with the audit
// on against the same manager build with it off, in the same run (two managers in this
// process on PGlite, as the local tier runs). Each request is POST /federation/v1/list/services
// over mTLS with keep-alive connections; runs alternate so load drift hits both alike. The
// audit's work is the row (hash of the request), the queue, and the batched insert with its
// hash chain, all on this event loop.
//   node bin/run-ts.mjs bench/audit.bench.ts
//   BENCH_SECONDS (per run, default 3), BENCH_ROUNDS (default 4), BENCH_CONNECTIONS (default 8)
// Goal: throughput with audit ≥ 95 % of without.
import { loadavg } from 'node:os';
import { Agent, request } from 'undici';
import { certTools } from '../src/adapters/pki/x509-pki.ts';
import { type BenchManager, basicHeader, fmt, percentile, row, startBenchManager } from './lib.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 8);
const scope = { resources: ['services'], verbs: ['list'], rate_per_minute: 100_000 };

const post = async (url: string, body: unknown) => {
  const res = await fetch(url, {
    method: 'POST',
    headers: { authorization: basicHeader, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${url} answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
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
  return {
    url: `${peer_channel_url}/federation/v1/list/services`,
    agent: new Agent({
      connections: CONNECTIONS,
      connect: { ca: chain, cert: certificate, key: keyPem, rejectUnauthorized: true },
    }),
  };
};

/** CONNECTIONS loops of sequential requests for SECONDS: requests done and their latencies. */
const run = async (p: { url: string; agent: Agent }, seconds: number) => {
  const until = Date.now() + seconds * 1000;
  const lat: number[] = [];
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (Date.now() < until) {
        const t = process.hrtime.bigint();
        const res = await request(p.url, {
          dispatcher: p.agent,
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{"limit":10}',
        });
        await res.body.dump();
        if (res.statusCode !== 200) throw new Error(`peer channel answered ${res.statusCode}`);
        lat.push(Number(process.hrtime.bigint() - t) / 1e6);
      }
    }),
  );
  return lat;
};

const on = await startBenchManager('pglite', { clusterId: 'audited', peerListen: '127.0.0.1:0' });
const off = await startBenchManager(
  'pglite',
  { clusterId: 'unaudited', peerListen: '127.0.0.1:0' },
  { peerAudit: false },
);
try {
  const pOn = await peerOf(on);
  const pOff = await peerOf(off);
  await run(pOn, 1);
  await run(pOff, 1);
  const lat = { on: [] as number[], off: [] as number[] };
  for (let r = 0; r < ROUNDS; r++) {
    // Alternate which goes first.
    for (const k of r % 2 ? (['off', 'on'] as const) : (['on', 'off'] as const))
      lat[k].push(...(await run(k === 'on' ? pOn : pOff, SECONDS)));
  }
  const rows = (await on.manager.store.audit.list({ afterSeq: 0, limit: 1000 })).length;
  for (const l of Object.values(lat)) l.sort((x, y) => x - y);
  const rps = (l: number[]) => l.length / (ROUNDS * SECONDS);
  const ratio = rps(lat.on) / rps(lat.off);
  console.log(
    `load average at end: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}; ${CONNECTIONS} connections, ${ROUNDS} × ${SECONDS} s each\n`,
  );
  console.log(row(['peer channel POST list/services', 'requests', 'req/s', 'median ms', 'p99 ms']));
  console.log(row(['---', '---:', '---:', '---:', '---:']));
  for (const k of ['off', 'on'] as const)
    console.log(
      row([
        k === 'on' ? 'audit on' : 'audit off',
        lat[k].length,
        fmt(rps(lat[k]), 0),
        fmt(percentile(lat[k], 50), 3),
        fmt(percentile(lat[k], 99), 3),
      ]),
    );
  console.log(
    `\nthroughput with audit: ${fmt(ratio * 100, 1)} % of without (goal ≥ 95 %: ${ratio >= 0.95 ? 'met' : 'missed'}); audit rows stored: ${rows >= 1000 ? '≥ 1000' : rows}`,
  );
  await pOn.agent.close();
  await pOff.agent.close();
} finally {
  await on.close();
  await off.close();
}
