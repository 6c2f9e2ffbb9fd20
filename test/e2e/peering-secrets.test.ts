// Secrets of peering stay secret: the enrollment token (after its one answer), the peer's
// private key and the CA key never appear in a log line (debug level) or in any later answer.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlotillaClient } from '../../client/api-client.ts';
import { createSecretBox, loadSecretKey } from '../../src/adapters/secret-box/aes-gcm-box.ts';
import { PgliteStore } from '../../src/adapters/store-pglite/pglite-store.ts';
import { loadConfig } from '../../src/config/config.ts';
import { createManager, type Manager } from '../../src/main/manager.ts';
import { ADMIN_PASSWORD } from '../support/in-process.ts';
import { managerCa } from '../support/peering.ts';

const logs: string[] = [];
const sink = new Writable({
  write(chunk, _enc, done) {
    logs.push(String(chunk));
    done();
  },
});
const started: Array<{ manager: Manager; dir: string }> = [];

const start = async (clusterId: string) => {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-secrets-'));
  const config = loadConfig(
    { dataDir: dir, adminPassword: ADMIN_PASSWORD, port: '0', clusterId, peerListen: '127.0.0.1:0' },
    {},
  );
  const manager = await createManager(config, {
    store: await PgliteStore.open(undefined),
    logger: pino({ level: 'trace' }, sink),
  });
  await manager.listen();
  started.push({ manager, dir });
  return {
    manager,
    dir,
    client: new FlotillaClient({ endpoint: manager.publicUrl(), password: ADMIN_PASSWORD }),
  };
};

let a: Awaited<ReturnType<typeof start>>;
let b: Awaited<ReturnType<typeof start>>;

beforeAll(async () => {
  b = await start('b');
  a = await start('a');
});
afterAll(async () => {
  for (const s of started) {
    await s.manager.close();
    await rm(s.dir, { recursive: true, force: true });
  }
});

describe('peering secrets', () => {
  it('keeps the token, the peer key and the CA key out of logs and later answers', async () => {
    const g = await b.client.request<{ id: string }>('POST', '/system/grants', {
      body: { peer: 'a', subject: 'alice', scope: { resources: ['services'], verbs: ['list'] } },
    });
    const { token } = await b.client.request<{ token: string }>('POST', `/system/grants/${g.id}/token`, {
      body: {},
    });
    await a.client.request('POST', '/system/peers', { body: { url: b.manager.publicUrl(), token } });
    // A replay and a probe, a renewal and a revocation: every path that logs.
    await a.client.send('POST', '/system/peers', {
      body: { url: b.manager.publicUrl(), token, name: 'again' },
    });
    await a.client.request('GET', '/system/peers/b');
    await a.client.request('POST', '/system/peers/b/renew');
    await b.client.request('POST', `/system/grants/${g.id}/revoke`, { body: {} });
    await a.client.request('GET', '/system/peers/b');

    const peer = (await a.manager.store.trust.getPeer('b'))!;
    const boxA = createSecretBox(await loadSecretKey(undefined, a.dir));
    const peerKey = boxA.open(peer.keySealed);
    const caKey = (await managerCa(b.manager.store, b.dir)).keyPem;
    const keyBody = (pem: string) => pem.split('\n')[1]; // first base64 line of the key
    const answers = [
      await a.client.send('GET', '/system/peers'),
      await a.client.send('GET', '/system/peers/b'),
      await b.client.send('GET', '/system/grants'),
      await b.client.send('GET', `/system/grants/${g.id}`),
      await b.client.send('GET', '/system/info'),
    ];
    const texts = [...logs, ...(await Promise.all(answers.map((r) => r.text())))];
    expect(logs.length).toBeGreaterThan(5);
    for (const t of texts) {
      expect(t).not.toContain(token);
      expect(t).not.toContain(keyBody(peerKey));
      expect(t).not.toContain(keyBody(caKey));
      expect(t).not.toContain(peer.keySealed);
      expect(t).not.toContain('PRIVATE KEY');
    }
    expect(logs.join('')).toContain('peer request');
  });
});
