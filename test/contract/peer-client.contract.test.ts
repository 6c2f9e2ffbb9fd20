// PeerClient contract: one suite, run against every adapter (today HTTP with undici) and a
// real manager: an in-process Flotilla listening on loopback, called over the network as
// another cluster would call it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpPeerClient } from '../../src/adapters/peer-http/http-peer-client.ts';
import { FlotillaError } from '../../src/core/errors.ts';
import { PeerCallError, peerFailureOf } from '../../src/core/peer-failure.ts';
import type { PeerClient, PeerTarget } from '../../src/core/ports.ts';
import { freePort } from '../support/cluster-harness.ts';
import { ADMIN_PASSWORD, basic, startInProcess, type TestManager } from '../support/in-process.ts';

const adapters: Array<{ name: string; open(): PeerClient & { close(): Promise<void> } }> = [
  { name: 'HTTP (undici)', open: () => createHttpPeerClient({ timeoutMs: 5_000 }) },
];

let peer: TestManager;
let endpoint: string;
let deadPort: number;

beforeAll(async () => {
  peer = await startInProcess({ clusterId: 'peer-b' });
  endpoint = await peer.manager.listen();
  deadPort = await freePort();
});
afterAll(async () => {
  await peer?.close();
});

const target = (auth: PeerTarget['auth'] = { kind: 'basic', user: 'oscar', password: ADMIN_PASSWORD }) => ({
  clusterId: 'peer-b',
  endpoint,
  sslVerify: true,
  auth,
});

/** The FlotillaError a call rejects with. */
const failure = async (p: Promise<unknown>): Promise<FlotillaError> => {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FlotillaError);
  return err as FlotillaError;
};

let n = 0;
const serviceName = () => `contract-${++n}-${Math.random().toString(36).slice(2, 7)}`;

for (const adapter of adapters) {
  describe(`PeerClient contract: ${adapter.name}`, () => {
    let peers: PeerClient & { close(): Promise<void> };
    beforeAll(() => {
      peers = adapter.open();
    });
    afterAll(async () => {
      await peers?.close();
    });

    it('checks access: accepted credentials pass; refused ones are UNAUTHORIZED, never echoed', async () => {
      await expect(peers.checkAccess(target())).resolves.toBeUndefined();
      const wrong = 'wrong-password-0123456789';
      const err = await failure(peers.checkAccess(target({ kind: 'basic', user: 'oscar', password: wrong })));
      expect(err.code).toBe('UNAUTHORIZED');
      expect(err.message).toContain('peer-b');
      expect(`${err.message} ${JSON.stringify(err.details)}`).not.toContain(wrong);
      expect((await failure(peers.checkAccess(target({ kind: 'none' })))).code).toBe('UNAUTHORIZED');
    });

    it('a cluster that does not answer is PEER_UNREACHABLE, naming it but not the credentials', async () => {
      const err = await failure(
        peers.status({ ...target(), endpoint: `http://127.0.0.1:${deadPort}`, clusterId: 'gone' }),
      );
      expect(err.code).toBe('PEER_UNREACHABLE');
      expect(err.message).toContain('gone');
      expect(err.message).not.toContain(ADMIN_PASSWORD);
      const aborted = await failure(peers.status(target(), AbortSignal.abort()));
      expect(aborted.code).toBe('PEER_UNREACHABLE');
    });

    it('creates, reads, updates and deletes a service; absent is undefined or false, a duplicate is refused', async () => {
      const name = serviceName();
      expect(await peers.getService(target(), name)).toBeUndefined();
      await peers.createService(target(), { name, image: 'alpine', script: 'echo one' });
      // The port hands back only the fields of the expected shape (never a peer's whole body);
      // what the peer stored is read on the peer itself.
      expect(await peers.getService(target(), name)).toEqual({ name });
      expect(await peer.store.getService(name)).toMatchObject({ script: 'echo one', cluster_id: 'peer-b' });
      const dup = await failure(
        peers.createService(target(), { name, image: 'alpine', script: 'echo again' }),
      );
      expect(dup.code).toBe('SERVICE_EXISTS');
      await peers.updateService(target(), { name, image: 'alpine', script: 'echo two' });
      expect(await peer.store.getService(name)).toMatchObject({ script: 'echo two' });
      expect(await peers.deleteService(target(), name)).toBe(true);
      expect(await peers.deleteService(target(), name)).toBe(false);
      expect(await peers.getService(target(), name)).toBeUndefined();
    });

    it('classifies every failure once, as data: refused, unreachable, conflict, not_found', async () => {
      const refused = await failure(
        peers.checkAccess(target({ kind: 'basic', user: 'oscar', password: 'wrong-password-0123456789' })),
      );
      expect(refused).toBeInstanceOf(PeerCallError);
      expect(peerFailureOf(refused)).toEqual({ kind: 'refused', status: 401 });
      const gone = await failure(
        peers.getService({ ...target(), endpoint: `http://127.0.0.1:${deadPort}`, clusterId: 'gone' }, 'x'),
      );
      expect(peerFailureOf(gone)).toEqual({ kind: 'unreachable' });
      expect(peerFailureOf(await failure(peers.status(target(), AbortSignal.abort())))).toEqual({
        kind: 'unreachable',
      });
      const name = serviceName();
      await peers.createService(target(), { name, image: 'alpine', script: 'true' });
      const dup = await failure(peers.createService(target(), { name, image: 'alpine', script: 'true' }));
      expect(peerFailureOf(dup)).toEqual({ kind: 'conflict', status: 409 });
      const missing = await failure(peers.submitJob(target(), serviceName(), new Uint8Array([1]), {}));
      expect(peerFailureOf(missing)).toEqual({ kind: 'not_found', status: 404 });
      const invalid = await failure(peers.createService(target(), { name: serviceName(), image: 'alpine' }));
      expect(peerFailureOf(invalid)).toEqual({ kind: 'refused', status: 400 });
      await peers.deleteService(target(), name);
    });

    it('reads a federation (undefined for a service that has none) and the cluster status', async () => {
      expect(await peers.getFederation(target(), serviceName())).toBeUndefined();
      const status = await peers.status(target());
      expect(status).toMatchObject({ cluster: expect.any(Object) });
    });

    it('submits a job and follows it; a job it does not know is undefined', async () => {
      const name = serviceName();
      await peers.createService(target(), { name, image: 'alpine', script: 'echo ran' });
      const { job_id } = await peers.submitJob(target(), name, new TextEncoder().encode('{"x":1}'), {});
      expect(job_id).toEqual(expect.any(String));
      const seen = await peers.jobStatus(target(), name, job_id);
      expect(seen).toMatchObject({ status: expect.stringMatching(/^(Pending|Running|Succeeded|Failed)$/) });
      expect(typeof seen?.log).toBe('string');
      expect(await peers.jobStatus(target(), name, 'no-such-job')).toBeUndefined();
      expect((await failure(peers.submitJob(target(), serviceName(), new Uint8Array([1]), {}))).code).toMatch(
        /NOT_FOUND/,
      );
    });

    it('hands over the storage keys the cluster gives this caller', async () => {
      const creds = await peers.storageConfig(target());
      expect(creds).toMatchObject({
        endpoint: expect.stringMatching(/^https?:\/\//),
        access_key: expect.any(String),
      });
      expect(creds.access_key.length).toBeGreaterThan(0);
    });

    it('posts an event to a URL and resolves to the HTTP status, refusals included', async () => {
      const name = serviceName();
      await peers.createService(target(), { name, image: 'alpine', script: 'true' });
      const url = `${endpoint}/job/${name}`;
      const body = new TextEncoder().encode('{}');
      expect(await peers.postEvent(url, body, { authorization: basic() }, true)).toBe(201);
      expect(await peers.postEvent(url, body, {}, true)).toBe(401);
      const err = await failure(peers.postEvent(`http://127.0.0.1:${deadPort}/job/x`, body, {}, true));
      expect(err.code).toBe('PEER_UNREACHABLE');
    });
  });
}
