// A rate limiter that cannot answer (Valkey unreachable: the real adapter, pointed at a closed
// port) must not stop the peer channel: requests are let in, still audited, and the outage is
// logged once, not once per request.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlotillaClient } from '../../client/api-client.ts';
import { certTools } from '../../src/adapters/pki/x509-pki.ts';
import { createValkeyRateLimiter } from '../../src/adapters/rate-valkey/valkey-rate-limiter.ts';
import { PgliteStore } from '../../src/adapters/store-pglite/pglite-store.ts';
import { loadConfig } from '../../src/config/config.ts';
import { createManager, type Manager } from '../../src/main/manager.ts';
import { ADMIN_PASSWORD } from '../support/in-process.ts';
import { waitFor } from '../support/wait.ts';

let dataDir: string;
let m: Manager;
const logs: string[] = [];

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'flotilla-ratedown-'));
  const config = loadConfig(
    {
      dataDir,
      adminPassword: ADMIN_PASSWORD,
      logLevel: 'info',
      port: '0',
      clusterId: 'b',
      peerListen: '127.0.0.1:0',
    },
    {},
  );
  m = await createManager(config, {
    store: await PgliteStore.open(undefined),
    rateLimit: createValkeyRateLimiter({ url: 'redis://127.0.0.1:1', prefix: 'down', timeoutMs: 200 }),
    logDestination: { write: (line) => void logs.push(line) },
  });
  await m.listen();
}, 60_000);

afterAll(async () => {
  await m?.close();
  await rm(dataDir, { recursive: true, force: true });
});

describe('peer channel with its rate limiter down', () => {
  it('lets the grant in past its limit, audits every request, and logs the outage once', async () => {
    const c = new FlotillaClient({ endpoint: m.publicUrl(), password: ADMIN_PASSWORD });
    const g = await c.request<{ id: string }>('POST', '/system/grants', {
      body: {
        peer: 'a',
        subject: 'alice',
        scope: { resources: ['services'], verbs: ['list'], rate_per_minute: 2 },
      },
    });
    const { token } = await c.request<{ token: string }>('POST', `/system/grants/${g.id}/token`, {
      body: {},
    });
    const { keyPem, csrPem } = await certTools.createKeyAndCsr('down');
    const res = await fetch(`${m.publicUrl()}/federation/v1/enroll`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token, csr: csrPem }),
    });
    const { certificate, chain, peer_channel_url } = (await res.json()) as {
      certificate: string;
      chain: string[];
      peer_channel_url: string;
    };
    const agent = new Agent({
      connect: { ca: chain, cert: certificate, key: keyPem, rejectUnauthorized: true },
    });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) {
        const r = await request(`${peer_channel_url}/federation/v1/capabilities`, { dispatcher: agent });
        await r.body.text();
        statuses.push(r.statusCode);
      }
      expect(statuses).toEqual([200, 200, 200, 200, 200]);
      const rows = await waitFor(
        async () => {
          const rs = (await m.store.audit.list({ limit: 100 })).filter((r) => r.grantId === g.id);
          return rs.length === 5 ? rs : undefined;
        },
        5000,
        'five audit rows',
      );
      expect(rows.every((r) => r.outcome === 'ok')).toBe(true);
      expect(logs.filter((l) => l.includes('peer rate limit unavailable'))).toHaveLength(1);
    } finally {
      await agent.destroy();
    }
  }, 60_000);
});
