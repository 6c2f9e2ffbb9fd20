// The peer channel's cost, two managers in this process on loopback:
// 1. added latency of one call over the mTLS peer channel (GET /federation/v1/capabilities:
//    TLS + the guard's certificate read and grant lookup) against a plain-HTTP call to the
//    same manager (GET /health), both sequential over one keep-alive connection;
// 2. enrollment time as A's admin sees it (POST /system/peers: key pair, CSR, B's claim and
//    signature, the sealed key stored), against a fresh grant and token each time.
//   node bin/run-ts.mjs bench/peer-channel.bench.ts
// Goal: added median ≤ 1 ms.
import { loadavg } from 'node:os';
import { Agent, request } from 'undici';
import { createSecretBox, loadSecretKey } from '../src/adapters/secret-box/aes-gcm-box.ts';
import { basicHeader, fmt, percentile, row, startBenchManager } from './lib.ts';

const CALLS = Number(process.env.BENCH_CALLS ?? 2000);
const ENROLLS = Number(process.env.BENCH_ENROLLS ?? 20);
// No rate limit in the way of the timed calls (a grant's default is 600 a minute).
const scope = { resources: ['services'], verbs: ['list', 'get'], rate_per_minute: 100_000 };

const timeCalls = async (url: string, agent: Agent, n: number): Promise<number[]> => {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    const res = await request(url, { dispatcher: agent });
    await res.body.dump();
    if (res.statusCode !== 200) throw new Error(`${url} answered ${res.statusCode}`);
    out.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return out.sort((x, y) => x - y);
};

const post = async (url: string, body: unknown) => {
  const res = await fetch(url, {
    method: 'POST',
    headers: { authorization: basicHeader, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${url} answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as Record<string, string>;
};

const b = await startBenchManager('pglite', { clusterId: 'b', peerListen: '127.0.0.1:0' });
const a = await startBenchManager('pglite', { clusterId: 'a', peerListen: '127.0.0.1:0' });
try {
  const newToken = async (subject: string) => {
    const g = await post(`${b.url}/system/grants`, { peer: 'a', subject, scope });
    return (await post(`${b.url}/system/grants/${g.id}/token`, { ttl: 300 })).token;
  };

  const enrollMs: number[] = [];
  for (let i = 0; i < ENROLLS; i++) {
    const token = await newToken(`user${i}`);
    const t = process.hrtime.bigint();
    await post(`${a.url}/system/peers`, { url: b.url, token, name: `b${i}` });
    enrollMs.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  enrollMs.sort((x, y) => x - y);

  const peer = (await a.manager.store.trust.getPeer('b0'))!;
  const box = createSecretBox(await loadSecretKey(undefined, a.manager.config.dataDir));
  const mtls = new Agent({ connect: { ca: peer.caPem, cert: peer.certPem, key: box.open(peer.keySealed) } });
  const plain = new Agent();
  const capsUrl = `${peer.peerChannelUrl}/federation/v1/capabilities`;
  const healthUrl = `${b.url}/health`;
  await timeCalls(capsUrl, mtls, 200);
  await timeCalls(healthUrl, plain, 200);
  // Interleaved halves, so drift in machine load hits both sides alike.
  const chan: number[] = [];
  const http: number[] = [];
  for (let k = 0; k < 4; k++) {
    chan.push(...(await timeCalls(capsUrl, mtls, CALLS / 4)));
    http.push(...(await timeCalls(healthUrl, plain, CALLS / 4)));
  }
  chan.sort((x, y) => x - y);
  http.sort((x, y) => x - y);
  await Promise.all([mtls.close(), plain.close()]);

  const added = percentile(chan, 50) - percentile(http, 50);
  console.log(
    `load average at end: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}\n`,
  );
  console.log(row(['call', 'calls', 'median ms', 'p99 ms']));
  console.log(row(['---', '---:', '---:', '---:']));
  console.log(
    row([
      'plain HTTP GET /health (keep-alive)',
      http.length,
      fmt(percentile(http, 50), 3),
      fmt(percentile(http, 99), 3),
    ]),
  );
  console.log(
    row([
      'mTLS GET /federation/v1/capabilities (keep-alive)',
      chan.length,
      fmt(percentile(chan, 50), 3),
      fmt(percentile(chan, 99), 3),
    ]),
  );
  console.log(`\nadded median: ${fmt(added, 3)} ms (goal ≤ 1 ms: ${added <= 1 ? 'met' : 'missed'})\n`);
  console.log(row(['enrollment (POST /system/peers on A)', 'runs', 'median ms', 'p99 ms']));
  console.log(row(['---', '---:', '---:', '---:']));
  console.log(
    row([
      'key pair + CSR + claim + sign + sealed store',
      enrollMs.length,
      fmt(percentile(enrollMs, 50)),
      fmt(percentile(enrollMs, 99)),
    ]),
  );
} finally {
  await a.close();
  await b.close();
}
