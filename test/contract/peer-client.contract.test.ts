// PeerClient contract: one suite, run against every adapter and a real manager (an
// in-process Flotilla listening on loopback, called over the network as another cluster
// would call it): HTTP with undici and Basic credentials to its public port, and the peer
// channel (mTLS with the certificate of a peer record enrolled by a second real manager,
// as its grant's subject). Where a case's credentials differ by adapter, each adapter says
// what its accepted and refused credentials are: a wrong password / none for Basic; for mTLS
// a certificate of the peer's CA that is not the grant's (refused by its guard), a revoked
// grant's and one of another CA (refused in the TLS handshake).
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlotillaClient } from '../../client/api-client.ts';
import { createHttpPeerClient } from '../../src/adapters/peer-http/http-peer-client.ts';
import { createPeerAgents } from '../../src/adapters/peer-mtls/mtls-peer-channel.ts';
import { createPeerClient } from '../../src/adapters/peer-mtls/mtls-peer-client.ts';
import { createSecretBox, loadSecretKey } from '../../src/adapters/secret-box/aes-gcm-box.ts';
import { FlotillaError } from '../../src/core/errors.ts';
import { PeerCallError, peerFailureOf } from '../../src/core/peer-failure.ts';
import type { PeerClient, PeerTarget } from '../../src/core/ports.ts';
import { OID_GRANT_ID, OID_SUBJECT } from '../../src/core/trust/claims.ts';
import { freePort } from '../support/cluster-harness.ts';
import { ADMIN_PASSWORD, basic, startInProcess, type TestManager } from '../support/in-process.ts';
import { forgeClient, managerCa, strangerCa, utf8Ext } from '../support/peering.ts';

/** One adapter under test, with the targets its cases use. */
interface Subject {
  peers: PeerClient & { close(): Promise<void> };
  /** Accepted credentials. */
  target(): PeerTarget;
  /**
   * Credentials the peer refuses, the code that refusal is, and the secret each holds (never
   * to be echoed). A refusal the peer answers (HTTP 401) is UNAUTHORIZED; one made in the
   * TLS handshake gets no HTTP answer at all, which a caller cannot tell from a dropped
   * connection: PEER_UNREACHABLE (the peer record's state, from the CRL, tells it apart).
   */
  refused: Array<{
    why: string;
    target: PeerTarget;
    code: 'UNAUTHORIZED' | 'PEER_UNREACHABLE';
    secret?: string;
  }>;
  /** Whether this caller is given storage keys there (the peer channel gives none). */
  storageKeys: boolean;
  /** Whether federation views are read there (the peer channel serves none). */
  federationViews: boolean;
  /** A cluster "gone" that does not answer. */
  gone: PeerTarget;
  /** Secrets of the accepted credentials, never in an error. */
  secrets: string[];
}

let peer: TestManager; // the called cluster, "peer-b"
let caller: TestManager; // the calling cluster "a", enrolled with peer-b (mTLS)
let endpoint: string;
let deadPort: number;

beforeAll(async () => {
  peer = await startInProcess({ clusterId: 'peer-b', peerListen: '127.0.0.1:0', cpus: '2' });
  endpoint = await peer.manager.listen();
  caller = await startInProcess({ clusterId: 'a' });
  await caller.manager.listen();
  deadPort = await freePort();
}, 60_000);
afterAll(async () => {
  await caller?.close();
  await peer?.close();
});

const basicTarget = (auth: PeerTarget['auth']): PeerTarget => ({
  clusterId: 'peer-b',
  endpoint,
  sslVerify: true,
  auth,
});

const httpSubject = async (): Promise<Subject> => ({
  peers: createHttpPeerClient({ timeoutMs: 5_000 }),
  target: () => basicTarget({ kind: 'basic', user: 'oscar', password: ADMIN_PASSWORD }),
  refused: [
    {
      why: 'a wrong password',
      target: basicTarget({ kind: 'basic', user: 'oscar', password: 'wrong-password-0123456789' }),
      code: 'UNAUTHORIZED',
      secret: 'wrong-password-0123456789',
    },
    { why: 'no credentials', target: basicTarget({ kind: 'none' }), code: 'UNAUTHORIZED' },
  ],
  storageKeys: true,
  federationViews: true,
  gone: {
    ...basicTarget({ kind: 'basic', user: 'oscar', password: ADMIN_PASSWORD }),
    endpoint: `http://127.0.0.1:${deadPort}`,
    clusterId: 'gone',
  },
  secrets: [ADMIN_PASSWORD],
});

// A grant that may replicate services, delegate jobs and read status (what federation uses).
const FULL = {
  resources: ['services', 'jobs', 'status'],
  verbs: ['get', 'replicate', 'delegate'],
  max_cpu: '1',
};

/**
 * Peer records on the caller, enrolled with peer-b as `peers enroll` does (a grant on B, its
 * enrollment token, POST /system/peers on A): "peer-b" (accepted), "peer-b-revoked" (its
 * grant revoked on B), and records with certificates the test made: "peer-b-forged" (B's CA,
 * not the grant's certificate), "peer-b-stranger" (another CA), "gone" (a channel that does
 * not answer).
 */
const mtlsSubject = async (): Promise<Subject> => {
  const admin = new FlotillaClient({ endpoint, password: ADMIN_PASSWORD });
  const onA = new FlotillaClient({ endpoint: caller.manager.publicUrl(), password: ADMIN_PASSWORD });
  const enroll = async (name: string) => {
    const g = await admin.request<{ id: string }>('POST', '/system/grants', {
      body: { peer: 'a', subject: 'alice', scope: FULL },
    });
    const { token } = await admin.request<{ token: string }>('POST', `/system/grants/${g.id}/token`, {
      body: { ttl: 600 },
    });
    const rec = await onA.request<{ name: string; state: string }>('POST', '/system/peers', {
      body: { url: endpoint, token, name },
    });
    expect(rec).toMatchObject({ name, state: 'active' });
    return g.id;
  };
  await enroll('peer-b');
  const revokedGrant = await enroll('peer-b-revoked');
  await admin.request('POST', `/system/grants/${revokedGrant}/revoke`, { body: { reason: 'contract' } });

  const box = createSecretBox(await loadSecretKey(undefined, caller.dataDir));
  const good = (await caller.store.trust.getPeer('peer-b'))!;
  const other = await forgeClient(await strangerCa(), [
    utf8Ext(OID_GRANT_ID, good.grantId),
    utf8Ext(OID_SUBJECT, 'alice'),
  ]);
  await caller.store.trust.putPeer({
    ...good,
    name: 'peer-b-stranger',
    certPem: other.certPem,
    keySealed: box.seal(other.keyPem),
    certSerial: `stranger-${good.certSerial}`,
  });
  const forged = await forgeClient(await managerCa(peer.store, peer.dataDir), [
    utf8Ext(OID_GRANT_ID, good.grantId),
    utf8Ext(OID_SUBJECT, 'alice'),
  ]);
  await caller.store.trust.putPeer({
    ...good,
    name: 'peer-b-forged',
    certPem: forged.certPem,
    keySealed: box.seal(forged.keyPem),
    certSerial: `forged-${good.certSerial}`,
  });
  await caller.store.trust.putPeer({
    ...good,
    name: 'gone',
    peerChannelUrl: `https://127.0.0.1:${deadPort}`,
  });

  const peerTarget = (record: string, clusterId = 'peer-b'): PeerTarget => ({
    clusterId,
    endpoint: good.peerChannelUrl,
    sslVerify: true,
    auth: { kind: 'peer', peer: record },
    // Changes come from a coordinator to its own worker, as federation sends them.
    worker: { origin: 'a/contract', tokens: [WORKER_TOKEN] },
  });
  return {
    peers: createPeerClient({
      timeoutMs: 5_000,
      mtls: {
        peer: (name) => caller.store.trust.getPeer(name),
        agents: createPeerAgents({ box, timeoutMs: 5_000 }),
      },
    }),
    target: () => peerTarget('peer-b'),
    refused: [
      // The peer's guard answers: its own CA's certificate, naming the grant, but not the one
      // it issued to the grant (as a stolen-then-replaced or forged one would be).
      {
        why: "a certificate of the peer's CA that is not the grant's",
        target: peerTarget('peer-b-forged'),
        code: 'UNAUTHORIZED',
        secret: forged.keyPem,
      },
      // Refused in the TLS handshake (CRL, roots): no HTTP answer.
      {
        why: "a revoked grant's certificate",
        target: peerTarget('peer-b-revoked'),
        code: 'PEER_UNREACHABLE',
        secret: box.open((await caller.store.trust.getPeer('peer-b-revoked'))!.keySealed),
      },
      {
        why: 'a certificate of another CA',
        target: peerTarget('peer-b-stranger'),
        code: 'PEER_UNREACHABLE',
        secret: other.keyPem,
      },
    ],
    storageKeys: false,
    federationViews: false,
    gone: peerTarget('gone', 'gone'),
    secrets: [box.open(good.keySealed), good.keySealed],
  };
};

const WORKER_TOKEN = randomBytes(32).toString('hex');

const adapters: Array<{ name: string; open(): Promise<Subject> }> = [
  { name: 'HTTP (undici, Basic)', open: httpSubject },
  { name: 'peer channel (mTLS, peer record)', open: mtlsSubject },
];

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
    let s: Subject;
    let peers: Subject['peers'];
    const target = () => s.target();
    beforeAll(async () => {
      s = await adapter.open();
      peers = s.peers;
    }, 60_000);
    afterAll(async () => {
      await peers?.close();
    });

    it('checks access: accepted credentials pass; refused ones fail (UNAUTHORIZED when the peer answers), never echoed', async () => {
      await expect(peers.checkAccess(target())).resolves.toBeUndefined();
      expect(s.refused.some((r) => r.code === 'UNAUTHORIZED')).toBe(true);
      for (const r of s.refused) {
        const err = await failure(peers.checkAccess(r.target));
        expect(err.code, r.why).toBe(r.code);
        expect(err.message, r.why).toContain('peer-b');
        const shown = `${err.message} ${JSON.stringify(err.details)}`;
        for (const secret of [...s.secrets, ...(r.secret ? [r.secret] : [])])
          expect(shown, r.why).not.toContain(secret);
      }
    });

    it('a cluster that does not answer is PEER_UNREACHABLE, naming it but not the credentials', async () => {
      const err = await failure(peers.status(s.gone));
      expect(err.code).toBe('PEER_UNREACHABLE');
      expect(err.message).toContain('gone');
      for (const secret of s.secrets)
        expect(`${err.message} ${JSON.stringify(err.details)}`).not.toContain(secret);
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
      for (const r of s.refused) {
        const refused = await failure(peers.checkAccess(r.target));
        expect(refused, r.why).toBeInstanceOf(PeerCallError);
        // A refusal the peer answers is `refused`; one made in the TLS handshake has no answer.
        expect(peerFailureOf(refused), r.why).toEqual(
          r.code === 'UNAUTHORIZED' ? { kind: 'refused', status: 401 } : { kind: 'unreachable' },
        );
      }
      expect(peerFailureOf(await failure(peers.getService(s.gone, 'x')))).toEqual({ kind: 'unreachable' });
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

    it('reads a federation (undefined for a service that has none, its topology for one that exists) or refuses: FORBIDDEN, never a false "none"', async () => {
      const name = serviceName();
      await peers.createService(target(), { name, image: 'alpine', script: 'true' });
      if (s.federationViews) {
        expect(await peers.getFederation(target(), serviceName())).toBeUndefined();
        expect(await peers.getFederation(target(), name)).toEqual({ topology: 'none', members: null });
      } else {
        // The peer channel serves no federation views: a refusal, not an answer that the
        // service (which is there) has none.
        for (const which of [name, serviceName()])
          expect((await failure(peers.getFederation(target(), which))).code).toBe('FORBIDDEN');
      }
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

    it('hands a job over in two steps (ADR 13): held until confirmed; abandon drops; refusals classified', async () => {
      const name = serviceName();
      await peers.createService(target(), { name, image: 'alpine', script: 'echo ran' });
      const from = { 'x-delegated-from': 'a' };
      const headers = (id: string) => ({ 'x-delegated-job-id': id, ...from, 'x-delegation-hold': '60' });
      const event = new TextEncoder().encode('{"x":1}');
      const id = `a.${name}-${randomBytes(8).toString('hex')}`;
      const first = await peers.submitJob(target(), name, event, headers(id));
      expect(first).toEqual({ job_id: expect.any(String), held: true });
      // The same id again: the same held job.
      expect(await peers.submitJob(target(), name, event, headers(id))).toEqual(first);
      expect(await peer.store.getJob(first.job_id)).toMatchObject({ holdState: 'held', status: 'Pending' });
      await peers.confirmJob(target(), name, id, from);
      await peers.confirmJob(target(), name, id, from); // idempotent
      expect(await peer.store.getJob(first.job_id)).toMatchObject({ holdState: 'confirmed' });
      expect(await peers.submitJob(target(), name, event, headers(id))).toEqual({ job_id: first.job_id });
      const confirmed = await failure(peers.abandonJob(target(), name, id, from));
      expect(confirmed.code).toBe('DELEGATION_CONFIRMED');
      expect(peerFailureOf(confirmed)).toEqual({ kind: 'conflict', status: 409 });

      const other = `a.${name}-${randomBytes(8).toString('hex')}`;
      const second = await peers.submitJob(target(), name, event, headers(other));
      expect(await peers.abandonJob(target(), name, other, from)).toBe('abandoned');
      expect(await peer.store.getJob(second.job_id)).toMatchObject({
        holdState: 'dropped',
        status: 'Failed',
      });
      const dropped = await failure(peers.confirmJob(target(), name, other, from));
      expect(dropped.code).toBe('DELEGATION_DROPPED');
      expect(peerFailureOf(dropped)).toEqual({ kind: 'conflict', status: 409 });
      expect((await failure(peers.submitJob(target(), name, event, headers(other)))).code).toBe(
        'DELEGATION_DROPPED',
      );
      // An id never handed over: a confirm is NOT_FOUND; an abandon remembers it as dropped.
      const never = `a.${name}-${randomBytes(8).toString('hex')}`;
      expect((await failure(peers.confirmJob(target(), name, never, from))).code).toMatch(/NOT_FOUND/);
      expect(await peers.abandonJob(target(), name, never, from)).toBe('abandoned');
      // Another origin's name for the same id reaches nothing.
      expect(
        (await failure(peers.confirmJob(target(), name, id, { 'x-delegated-from': 'elsewhere' }))).code,
      ).toMatch(/NOT_FOUND/);
      // A cluster that does not answer: unknown (PEER_UNREACHABLE), no secret in the error.
      const gone = await failure(peers.confirmJob(s.gone, name, id, from));
      expect(gone.code).toBe('PEER_UNREACHABLE');
      for (const secret of s.secrets)
        expect(`${gone.message} ${JSON.stringify(gone.details)}`).not.toContain(secret);
      await peers.deleteService(target(), name);
    });

    it('hands over the storage keys the cluster gives this caller, or refuses: FORBIDDEN, no keys', async () => {
      if (s.storageKeys) {
        const creds = await peers.storageConfig(target());
        expect(creds).toMatchObject({
          endpoint: expect.stringMatching(/^https?:\/\//),
          access_key: expect.any(String),
        });
        expect(creds.access_key.length).toBeGreaterThan(0);
      } else {
        // A grant gives no storage keys: delegated jobs reach the sender's storage with its token.
        const err = await failure(peers.storageConfig(target()));
        expect(err.code).toBe('FORBIDDEN');
        expect(err.message).toContain('peer-b');
      }
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
