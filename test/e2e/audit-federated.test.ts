// The federated tier: two manager instances of one cluster on one PostgreSQL and one Valkey,
// each with its own mTLS peer channel. A grant's rate limit holds across both (the counters
// are in Valkey), and the rows both instances write make one unbroken hash chain.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlotillaClient } from '../../client/api-client.ts';
import type { AuditRowView } from '../../client/audit-api.ts';
import { certTools } from '../../src/adapters/pki/x509-pki.ts';
import { loadConfig } from '../../src/config/config.ts';
import { type AuditOutcome, ChainVerifier } from '../../src/core/audit/chain.ts';
import { createManager, type Manager } from '../../src/main/manager.ts';
import { ADMIN_PASSWORD } from '../support/in-process.ts';
import { createTempDatabase, type TempDatabase } from '../support/postgres.ts';
import { waitFor } from '../support/wait.ts';

const REDIS_URL = process.env.FLOTILLA_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const cluster = `auditfed${randomBytes(3).toString('hex')}`;

let db: TempDatabase;
const dirs: string[] = [];
const instances: Manager[] = [];
const clients: FlotillaClient[] = [];
const channels: string[] = [];

beforeAll(async () => {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect().catch((e: Error) => {
    throw new Error(
      `Redis/Valkey is needed for this test but is not reachable at ${REDIS_URL} (${e.message})`,
    );
  });
  redis.disconnect();
  db = await createTempDatabase();
  const secretKey = randomBytes(32).toString('hex');
  // One after the other: the first creates the cluster's CA, the second reads it.
  for (const id of ['r1', 'r2']) {
    const dataDir = await mkdtemp(join(tmpdir(), 'flotilla-auditfed-'));
    dirs.push(dataDir);
    const config = loadConfig(
      {
        dataDir,
        adminPassword: ADMIN_PASSWORD,
        logLevel: 'silent',
        port: '0',
        clusterId: cluster,
        replicaId: id,
        peerListen: '127.0.0.1:0',
        tier: 'federated',
        databaseUrl: db.url,
        valkeyUrl: REDIS_URL,
        secretKey,
      },
      {},
    );
    const m = await createManager(config);
    instances.push(m);
    const url = await m.listen();
    const c = new FlotillaClient({ endpoint: url, password: ADMIN_PASSWORD });
    clients.push(c);
    channels.push(
      `${(await c.request<{ peer_channel_url: string }>('GET', '/system/info')).peer_channel_url}/federation/v1`,
    );
  }
}, 120_000);

afterAll(async () => {
  for (const m of instances) await m.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
  await db?.drop();
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  const keys = await redis.keys(`flotilla-${cluster}*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
});

describe('federated tier: rate limit and audit chain shared by two instances', () => {
  it('a burst split over both instances gets the grant’s allowance once, and all rows form one chain', async () => {
    const [c1, c2] = clients;
    expect((await c1.info()).tier).toBe('federated');
    const g = await c1.request<{ id: string }>('POST', '/system/grants', {
      body: {
        peer: 'a',
        subject: 'alice',
        scope: { resources: ['services'], verbs: ['list'], rate_per_minute: 10 },
      },
    });
    const { token } = await c1.request<{ token: string }>('POST', `/system/grants/${g.id}/token`, {
      body: {},
    });
    const { keyPem, csrPem } = await certTools.createKeyAndCsr('fed');
    const enrolled = await fetch(`${instances[0].publicUrl()}/federation/v1/enroll`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token, csr: csrPem }),
    });
    expect(enrolled.status).toBe(200);
    const { certificate, chain } = (await enrolled.json()) as { certificate: string; chain: string[] };
    const agents = [0, 1].map(
      () => new Agent({ connect: { ca: chain, cert: certificate, key: keyPem, rejectUnauthorized: true } }),
    );
    try {
      const statuses: number[][] = [[], []];
      for (let i = 0; i < 16; i++) {
        const at = i % 2;
        const res = await request(`${channels[at]}/capabilities`, { dispatcher: agents[at] });
        await res.body.text();
        statuses[at].push(res.statusCode);
      }
      const ok = statuses.flat().filter((s) => s === 200).length;
      // 10 a minute, one every 6 s: the burst gets exactly the 10, whichever instance it hits.
      expect(ok).toBe(10);
      expect(statuses.flat().filter((s) => s === 429)).toHaveLength(6);
      // Both instances served some and refused some: the counts are shared, not per instance.
      for (const s of statuses) expect(s).toContain(200);
      expect(statuses[1]).toContain(429);

      const rows = await waitFor(
        async () => {
          const page = await c2.request<{ rows: AuditRowView[] }>('GET', '/system/audit', {
            query: { limit: '1000' },
          });
          return page.rows.filter((r) => r.grant_id === g.id).length === 16 ? page.rows : undefined;
        },
        10_000,
        'the 16 rows from both instances',
      );
      expect(rows.map((r) => r.seq)).toEqual(rows.map((_, i) => i + 1));
      const v = new ChainVerifier();
      for (const r of rows)
        v.feed({
          seq: r.seq,
          at: new Date(r.at),
          grantId: r.grant_id,
          peer: r.peer,
          subject: r.subject,
          verb: r.verb,
          resource: r.resource,
          queryHash: r.query_hash,
          outcome: r.outcome as AuditOutcome,
          bytesOut: r.bytes_out,
          latencyMs: r.latency_ms,
          traceId: r.trace_id,
          hash: r.hash,
        });
      expect(v.result()).toMatchObject({ ok: true, rows: rows.length });
      expect(rows.filter((r) => r.outcome === 'rate_limited')).toHaveLength(6);
    } finally {
      for (const a of agents) await a.destroy();
    }
  }, 60_000);
});
