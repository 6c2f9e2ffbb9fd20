// Federation over the peer channel vs over Basic-auth HTTP, two managers in this process on
// loopback (PGlite), in the same run:
// 1. a federated replica create as a user sees it: POST /system/services on A of a star with
//    one member on B (atomic: B's read of the name, then the create), then its cascade delete
//    (not timed). The member is reached either through A's peer record for B (mTLS, as the
//    grant's subject) or through a `clusters` entry with B's admin password (Basic, HTTP);
// 2. one PeerClient call alone (getService of an absent name: a 404 round trip), both ways.
// Both sides keep their connections alive; runs are interleaved so load drift hits both alike.
//   node bin/run-ts.mjs bench/peer-federation.bench.ts
import { loadavg } from 'node:os';
import { createPeerAgents } from '../src/adapters/peer-mtls/mtls-peer-channel.ts';
import { createPeerClient } from '../src/adapters/peer-mtls/mtls-peer-client.ts';
import { createSecretBox, loadSecretKey } from '../src/adapters/secret-box/aes-gcm-box.ts';
import type { PeerTarget } from '../src/core/ports.ts';
import { ADMIN, basicHeader, fmt, percentile, row, startBenchManager } from './lib.ts';

const CREATES = Number(process.env.BENCH_CREATES ?? 200);
const CALLS = Number(process.env.BENCH_CALLS ?? 2000);
// No rate limit in the way of the timed calls (a grant's default is 600 a minute).
const scope = {
  resources: ['services', 'jobs', 'status'],
  verbs: ['get', 'replicate', 'delegate'],
  rate_per_minute: 100_000,
};

const send = async (url: string, method: string, body?: unknown) => {
  const res = await fetch(url, {
    method,
    headers: { authorization: basicHeader, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url} answered ${res.status}: ${text}`);
  return text ? JSON.parse(text) : undefined;
};

const b = await startBenchManager('pglite', { clusterId: 'b', peerListen: '127.0.0.1:0' });
const a = await startBenchManager('pglite', { clusterId: 'a', peerListen: '127.0.0.1:0' });
try {
  const g = await send(`${b.url}/system/grants`, 'POST', { peer: 'a', subject: 'alice', scope });
  const { token } = await send(`${b.url}/system/grants/${g.id}/token`, 'POST', { ttl: 300 });
  await send(`${a.url}/system/peers`, 'POST', { url: b.url, token });

  const service = (name: string, member: string, clusters?: unknown) => ({
    name,
    image: 'ghcr.io/grycap/alpine',
    script: '#!/bin/sh\necho hi\n',
    cpu: '0.1',
    memory: '64Mi',
    federation: {
      topology: 'star',
      members: [{ type: 'oscar', cluster_id: member, service_name: `${name}-w` }],
    },
    ...(clusters ? { clusters } : {}),
  });
  // 'b' names the peer record; 'bb' is the same manager through a clusters entry (Basic).
  const basicClusters = { bb: { endpoint: b.url, auth_user: 'oscar', auth_password: ADMIN } };
  const createOnce = async (name: string, channel: boolean): Promise<number> => {
    const body = channel ? service(name, 'b') : service(name, 'bb', basicClusters);
    const t = process.hrtime.bigint();
    const report = await send(`${a.url}/system/services`, 'POST', body);
    const ms = Number(process.hrtime.bigint() - t) / 1e6;
    if (report?.outcome !== 'created') throw new Error(`create of ${name}: ${JSON.stringify(report)}`);
    await send(`${a.url}/system/services/${name}`, 'DELETE');
    return ms;
  };
  const chanCreate: number[] = [];
  const basicCreate: number[] = [];
  for (let i = 0; i < 10; i++) {
    await createOnce(`warm-c${i}`, true);
    await createOnce(`warm-b${i}`, false);
  }
  for (let i = 0; i < CREATES; i++) {
    chanCreate.push(await createOnce(`ch${i}`, true));
    basicCreate.push(await createOnce(`ba${i}`, false));
  }

  // One call alone, through the same adapter the manager uses.
  const box = createSecretBox(await loadSecretKey(undefined, a.manager.config.dataDir));
  const record = (await a.manager.store.trust.getPeer('b'))!;
  // The record as the manager holds it: read once, kept in memory (peering-wiring's cache).
  const peers = createPeerClient({
    timeoutMs: 10_000,
    mtls: { peer: async () => record, agents: createPeerAgents({ box, timeoutMs: 10_000 }) },
  });
  const viaPeer: PeerTarget = {
    clusterId: 'b',
    endpoint: record.peerChannelUrl,
    sslVerify: true,
    auth: { kind: 'peer', peer: 'b' },
  };
  const viaBasic: PeerTarget = {
    clusterId: 'bb',
    endpoint: b.url,
    sslVerify: true,
    auth: { kind: 'basic', user: 'oscar', password: ADMIN },
  };
  const timeCalls = async (t: PeerTarget, n: number) => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const s = process.hrtime.bigint();
      if ((await peers.getService(t, 'absent')) !== undefined) throw new Error('expected a 404');
      out.push(Number(process.hrtime.bigint() - s) / 1e6);
    }
    return out;
  };
  await timeCalls(viaPeer, 200);
  await timeCalls(viaBasic, 200);
  const chanCall: number[] = [];
  const basicCall: number[] = [];
  for (let k = 0; k < 4; k++) {
    chanCall.push(...(await timeCalls(viaPeer, CALLS / 4)));
    basicCall.push(...(await timeCalls(viaBasic, CALLS / 4)));
  }
  await peers.close();
  for (const xs of [chanCreate, basicCreate, chanCall, basicCall]) xs.sort((x, y) => x - y);

  const line = (what: string, xs: number[], digits = 2) =>
    row([what, xs.length, fmt(percentile(xs, 50), digits), fmt(percentile(xs, 99), digits)]);
  console.log(
    `load average at end: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}\n`,
  );
  console.log(
    row(['federated replica create (POST /system/services on A, 1 member)', 'runs', 'median ms', 'p99 ms']),
  );
  console.log(row(['---', '---:', '---:', '---:']));
  console.log(line('member over Basic-auth HTTP (clusters entry with a password)', basicCreate));
  console.log(line('member over the mTLS peer channel (peer record)', chanCreate));
  const addedCreate = percentile(chanCreate, 50) - percentile(basicCreate, 50);
  console.log(
    `\nadded median: ${fmt(addedCreate, 2)} ms (ratio ${fmt(percentile(chanCreate, 50) / percentile(basicCreate, 50), 2)})\n`,
  );
  console.log(row(['one PeerClient call (getService → 404)', 'calls', 'median ms', 'p99 ms']));
  console.log(row(['---', '---:', '---:', '---:']));
  console.log(line('Basic-auth HTTP', basicCall, 3));
  console.log(line('mTLS peer channel', chanCall, 3));
  const addedCall = percentile(chanCall, 50) - percentile(basicCall, 50);
  console.log(
    `\nadded median: ${fmt(addedCall, 3)} ms (ratio ${fmt(percentile(chanCall, 50) / percentile(basicCall, 50), 2)})`,
  );
} finally {
  await a.close();
  await b.close();
}
