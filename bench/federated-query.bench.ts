// Federated query fan-out: POST /system/federation/query {verb: list, source: all} on A over
// 1, 4 and 16 peers, each reached over the real mTLS peer channel through its own latency
// proxy (a network round trip of 2 × BENCH_LATENCY_MS; the proxies run in a process of their
// own, BENCH_PROXIES=inprocess puts them on A's event loop as before). The peers are peer records on A with
// distinct cluster ids that all lead to one real manager B (one process stands in for N
// clusters, so B's work for the N calls of a query is serialised: an upper bound). B runs as
// its own `flotilla up` process (BENCH_B=inprocess: in this process, sharing A's event loop).
// Each query asks with a limit not asked before, so the 30 s peer answer cache never answers.
//   node bin/run-ts.mjs bench/federated-query.bench.ts
//   BENCH_PEERS=1,4,16 BENCH_QUERIES=40 BENCH_LATENCY_MS=10 BENCH_ROWS=40 BENCH_B=process
//   BENCH_PROXIES=process|inprocess
// Goal: a query over N peers takes the slowest single peer's time plus ≤ 20 %.
import { loadavg } from 'node:os';
import { Agent, request } from 'undici';
import { createSecretBox, loadSecretKey } from '../src/adapters/secret-box/aes-gcm-box.ts';
import {
  basicHeader,
  fmt,
  percentile,
  row,
  startBenchManager,
  startLatencyProxiesProcess,
  startLatencyProxy,
  startManagerProcess,
} from './lib.ts';

const PEERS = (process.env.BENCH_PEERS ?? '1,4,16').split(',').map(Number);
const QUERIES = Number(process.env.BENCH_QUERIES ?? 40);
const LATENCY = Number(process.env.BENCH_LATENCY_MS ?? 10);
const ROWS = Number(process.env.BENCH_ROWS ?? 40);
const scope = {
  resources: ['services'],
  verbs: ['list', 'get', 'search'],
  max_rows_per_query: 1000,
  rate_per_minute: 100_000, // the grant maximum: at rest the default 600/min is exceeded (429, _partial)
};

const post = async (url: string, body: unknown) => {
  const res = await fetch(url, {
    method: 'POST',
    headers: { authorization: basicHeader, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${url} answered ${res.status}: ${text}`);
  return (text ? JSON.parse(text) : {}) as Record<string, any>;
};

const IN_PROCESS = process.env.BENCH_B === 'inprocess';
const PROXIES_IN_PROCESS = process.env.BENCH_PROXIES === 'inprocess';
const b = IN_PROCESS
  ? await startBenchManager('pglite', { clusterId: 'b', peerListen: '127.0.0.1:0' })
  : await startManagerProcess('b', []);
const a = await startBenchManager('pglite', { clusterId: 'a', peerListen: '127.0.0.1:0' });
const proxies: Array<{ close(): Promise<void> }> = [];
let asked = 0;
let directAgents: Agent[] = [];
try {
  for (let i = 0; i < ROWS; i++)
    await post(`${b.url}/system/services`, {
      name: `svc-${String(i).padStart(3, '0')}`,
      image: 'alpine',
      script: 'echo hi',
      cpu: '0.1',
      memory: '64Mi',
      visibility: 'public',
    });
  const g = await post(`${b.url}/system/grants`, { peer: 'a', subject: 'bench-user', scope });
  const { token } = await post(`${b.url}/system/grants/${g.id}/token`, { ttl: 300 });
  await post(`${a.url}/system/peers`, { url: b.url, token, name: 'enrolled' });
  const model = (await a.manager.store.trust.getPeer('enrolled'))!;
  await a.manager.store.trust.deletePeer('enrolled');
  const max = Math.max(...PEERS);
  const upstream = model.peerChannelUrl.replace('https:', 'http:');
  let proxyUrls: string[];
  if (PROXIES_IN_PROCESS) {
    proxyUrls = [];
    for (let i = 0; i < max; i++) {
      const proxy = await startLatencyProxy(upstream, LATENCY);
      proxies.push(proxy);
      proxyUrls.push(proxy.url);
    }
  } else {
    const net = await startLatencyProxiesProcess(Array(max).fill(upstream), LATENCY);
    proxies.push(net);
    proxyUrls = net.urls;
  }
  for (let i = 0; i < max; i++) {
    await a.manager.store.trust.putPeer({
      ...model,
      name: `p${i}`,
      clusterId: `p${String(i).padStart(2, '0')}`,
      peerChannelUrl: proxyUrls[i].replace('http:', 'https:'),
    });
  }

  const ids = (n: number) => Array.from({ length: n }, (_, i) => `p${String(i).padStart(2, '0')}`);
  const query = async (source: string, expectPeers: number) => {
    const t = process.hrtime.bigint();
    const r = await post(`${a.url}/system/federation/query`, {
      verb: 'list',
      resource: 'services',
      source,
      limit: 100 + asked++,
    });
    const ms = Number(process.hrtime.bigint() - t) / 1e6;
    if (r._partial) throw new Error(`partial answer from ${r._partial.join(', ')}`);
    const sources = new Set(r.rows.map((x: { _source: string }) => x._source));
    sources.delete('local');
    const want = source === 'all' ? ids(expectPeers) : [source];
    if ([...sources].sort().join() !== want.join())
      throw new Error(`${[...sources].join(', ')} answered, not ${want.join(', ')}`);
    return ms;
  };
  const timed = async (source: string, n: number, expectPeers: number) => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push(await query(source, expectPeers));
    return out.sort((x, y) => x - y);
  };

  // B's own share: N list calls sent to B at once straight over mTLS (no proxy, no A).
  const box = createSecretBox(await loadSecretKey(undefined, a.manager.config.dataDir));
  directAgents = Array.from(
    { length: max },
    () => new Agent({ connect: { ca: model.caPem, cert: model.certPem, key: box.open(model.keySealed) } }),
  );
  const direct = directAgents;
  const burst = async (n: number) => {
    const t = process.hrtime.bigint();
    await Promise.all(
      direct.slice(0, n).map(async (agent) => {
        const res = await request(`${model.peerChannelUrl}/federation/v1/list/services`, {
          dispatcher: agent,
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{}',
        });
        await res.body.dump();
        if (res.statusCode !== 200) throw new Error(`B answered ${res.statusCode}`);
      }),
    );
    return Number(process.hrtime.bigint() - t) / 1e6;
  };

  const results: Array<{ n: number; all: number[]; slowest: number; slowestName: string; b: number }> = [];
  for (const n of PEERS) {
    // A's peer records are re-read every 5 s; make exactly n of them usable.
    for (let i = 0; i < max; i++)
      await a.manager.store.trust.updatePeer(`p${i}`, { state: i < n ? 'active' : 'revoked' });
    const deadline = Date.now() + 15_000;
    for (;;) {
      try {
        await query('all', n);
        break;
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    // Each peer alone (warm connection), then all together, interleaved against drift.
    const single = new Map<string, number[]>();
    const all: number[] = [];
    for (let k = 0; k < 4; k++) {
      for (let i = 0; i < n; i++) {
        const id = `p${String(i).padStart(2, '0')}`;
        single.set(id, [...(single.get(id) ?? []), ...(await timed(id, Math.max(2, QUERIES / 8), 1))]);
      }
      all.push(...(await timed('all', QUERIES / 4, n)));
    }
    all.sort((x, y) => x - y);
    let slowest = 0;
    let slowestName = '';
    for (const [id, ms] of single) {
      const m = percentile(
        ms.sort((x, y) => x - y),
        50,
      );
      if (m > slowest) [slowest, slowestName] = [m, id];
    }
    await burst(n);
    const bursts: number[] = [];
    for (let k = 0; k < Math.max(4, QUERIES / 4); k++) bursts.push(await burst(n));
    results.push({
      n,
      all,
      slowest,
      slowestName,
      b: percentile(
        bursts.sort((x, y) => x - y),
        50,
      ),
    });
  }

  console.log(
    `load average at end: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(
        ' ',
      )}; one-way latency ${LATENCY} ms per peer; ${ROWS} rows per peer; B ${IN_PROCESS ? 'in this process' : 'its own process'}; proxies ${PROXIES_IN_PROCESS ? 'in this process' : 'their own process'}\n`,
  );
  console.log(
    row([
      'peers',
      'queries',
      'median ms',
      'p99 ms',
      'slowest peer alone, median ms',
      'ratio',
      'vs 1 peer',
      'B answering N calls at once, median ms',
      "ratio less B's serialisation",
    ]),
  );
  console.log(row(['---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:']));
  const one = results.find((r) => r.n === 1);
  // What one B answering N calls costs beyond answering one is the stand-in's, not A's.
  const lessB = (r: (typeof results)[number]) =>
    one ? (percentile(r.all, 50) - Math.max(0, r.b - one.b)) / r.slowest : Number.NaN;
  for (const r of results) {
    const med = percentile(r.all, 50);
    console.log(
      row([
        r.n,
        r.all.length,
        fmt(med, 2),
        fmt(percentile(r.all, 99), 2),
        `${fmt(r.slowest, 2)} (${r.slowestName})`,
        fmt(med / r.slowest, 2),
        one ? fmt(med / percentile(one.all, 50), 2) : 'n/a',
        fmt(r.b, 2),
        fmt(lessB(r), 2),
      ]),
    );
  }
  const worst = Math.max(...results.map((r) => percentile(r.all, 50) / r.slowest));
  const worstLessB = Math.max(...results.map(lessB));
  console.log(
    `\nworst ratio to the slowest peer: ${fmt(worst, 2)} as measured; ${fmt(worstLessB, 2)} less what the one B standing in for N peers adds by answering N calls at once (goal ≤ 1.20)`,
  );
} finally {
  for (const p of proxies) await p.close();
  for (const d of directAgents) await d.close();
  await a.close();
  await b.close();
}
