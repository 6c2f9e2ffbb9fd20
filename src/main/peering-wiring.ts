// Wires peering (issue #18): the CA, grant and peer use cases, their routes on the public
// port, and the mTLS peer listener on --peer-listen.
import type { Logger } from 'pino';
import { createMtlsPeerChannel, createPeerAgents } from '../adapters/peer-mtls/mtls-peer-channel.ts';
import type { MtlsPeerClientDeps } from '../adapters/peer-mtls/mtls-peer-client.ts';
import { certTools, openPki } from '../adapters/pki/x509-pki.ts';
import { type PeerRecordSource, peerRecordSource } from '../app/federation/peer-resolver.ts';
import { FederatedQuery, type PeerSignals } from '../app/peering/federated-query.ts';
import { GrantUseCases } from '../app/peering/grants.ts';
import { PeerAccess } from '../app/peering/peer-access.ts';
import type { PeerFederation } from '../app/peering/peer-federation.ts';
import { PeerQueries } from '../app/peering/peer-queries.ts';
import { PeerUseCases } from '../app/peering/peers.ts';
import { CursorSigner, loadCursorKey } from '../app/peering/query-cursor.ts';
import type { QueryRows } from '../app/peering/query-rows.ts';
import type { Config } from '../config/config.ts';
import type { PeerRecord, SecretBox, Store } from '../core/ports.ts';
import { systemClock } from '../core/ports.ts';
import type { Tracing } from '../core/tracing.ts';
import type { HttpContext } from '../http/context.ts';
import { buildPeerServer, type PeerServer, type PeerServerDeps } from '../http/peer-server.ts';
import { peeringRoutes } from '../http/routes/peering.ts';
import { PeriodicLoop } from '../worker/periodic.ts';

const SERVER_CERT_LIFETIME_MS = 30 * 24 * 3600 * 1000;
// Client certificates live 24 h: renew when a third is left, checked every minute.
const RENEW_AHEAD_MS = 8 * 3600 * 1000;

export interface Peering {
  routes: NonNullable<HttpContext['plugins']>[number];
  peerChannelUrl(): string | undefined;
  /** This manager's peer records, as federation targets (kept fresh: changes here at once,
   * other replicas' within seconds). */
  records: PeerRecordSource;
  /** What the PeerClient needs to call a peer over mTLS. */
  mtls: MtlsPeerClientDeps;
  /** The receiving side of federation over the channel; set before listen(). */
  serveFederation(ops: PeerFederation, jobBodyLimit: number): void;
  /** Federated queries over `rows`: served to peers on the channel (as each grant's subject)
   * and asked of peers for this manager's users; set before listen(). */
  queries(rows: QueryRows, signals?: PeerSignals): FederatedQuery;
  listen(): Promise<void>;
  close(): Promise<void>;
}

export const createPeering = async (deps: {
  config: Config;
  store: Store;
  box: SecretBox;
  logger: Logger;
  /** The manager's public URL (read when the peer channel starts, after the API listens). */
  publicUrl: () => string;
  /** Where the peer channel records each request (audit trail), and the per-grant limit. */
  audit?: PeerServerDeps['audit'];
  rateLimit?: PeerServerDeps['rateLimit'];
  tracing?: Tracing;
}): Promise<Peering> => {
  const { config, store, box, logger } = deps;
  const pki = await openPki({ settings: store, box, clusterId: config.clusterId });
  const agents = createPeerAgents({ box, timeoutMs: 10_000 });
  const channel = createMtlsPeerChannel({ box, timeoutMs: 10_000, agents });
  let server: PeerServer | undefined;
  let url: string | undefined;
  let federation: { ops: PeerFederation; jobBodyLimit: number } | undefined;
  const cursors = new CursorSigner(await loadCursorKey(store, box));
  let peerQueries: PeerQueries | undefined;
  let asked: FederatedQuery | undefined;
  // Peer records, read by federation synchronously (the resolver decides without I/O).
  let records: PeerRecord[] = await store.trust.listPeers();
  const reload = async () => {
    records = await store.trust.listPeers();
  };

  const access = new PeerAccess({ trust: store.trust, clock: systemClock, audit: logger });
  const grants = new GrantUseCases({
    trust: store.trust,
    pki,
    clock: systemClock,
    clusterId: config.clusterId,
    peerChannelUrl: () => url,
    onRevoked: async (serials) => {
      access.forget();
      if (server) server.applyCrl(await grants.crl(), serials);
    },
    log: logger,
  });
  const peers = new PeerUseCases({
    trust: store.trust,
    channel,
    certs: certTools,
    box,
    clock: systemClock,
    clusterId: config.clusterId,
    log: logger,
    // A peer record changed (enrolled, renewed, revoked, removed): its cached answers go.
    onChange: async () => {
      await reload();
      asked?.flush();
    },
  });

  const renewal = new PeriodicLoop('peer-renewal', () => peers.renewDue(RENEW_AHEAD_MS), 60_000, logger);
  // Replicas sharing a database: a revocation made by another replica reaches this
  // listener's CRL within a few seconds (the instance that revoked applies it at once).
  let applied = '';
  const crlRefresh = new PeriodicLoop(
    'crl-refresh',
    async () => {
      const revoked = (await store.trust.revokedCertificates()).map((c) => c.serial);
      const key = revoked.join(',');
      if (!server || key === applied) return;
      applied = key;
      access.forget();
      server.applyCrl(await grants.crl(), revoked);
    },
    5_000,
    logger,
  );

  const recordsRefresh = new PeriodicLoop('peer-records', reload, 5_000, logger);

  return {
    routes: peeringRoutes({ grants, peers, circuit: (name) => asked?.circuit(name) }),
    peerChannelUrl: () => url,
    records: peerRecordSource(() => records),
    mtls: {
      peer: async (name) => records.find((p) => p.name === name) ?? (await store.trust.getPeer(name)),
      agents,
    },
    serveFederation(ops, jobBodyLimit) {
      federation = { ops, jobBodyLimit };
    },
    queries(rows, signals) {
      peerQueries = new PeerQueries(rows, cursors);
      asked = new FederatedQuery({
        rows,
        peers: () => records,
        channel,
        cursors,
        clock: systemClock,
        log: logger,
        trust: store.trust,
        signals,
        // The probe reads B's CRL after a TLS failure; a revocation marks the record revoked.
        suspect: (name) => void peers.status(name).catch(() => {}),
      });
      return asked;
    },
    async listen() {
      renewal.start();
      recordsRefresh.start();
      const l = config.peerListen;
      if (!l) return;
      const publicHost = new URL(deps.publicUrl()).hostname.replace(/^\[(.*)\]$/, '$1');
      const wildcard = l.host === '0.0.0.0' || l.host === '::';
      const hosts = [...new Set([publicHost, ...(wildcard ? [] : [l.host]), '127.0.0.1', 'localhost'])];
      const tls = await pki.issueServerCertificate(hosts, SERVER_CERT_LIFETIME_MS);
      const built = await buildPeerServer({
        access,
        queries: peerQueries,
        certs: certTools,
        clusterId: config.clusterId,
        tls: { ...tls, caPem: pki.caCertificatePem(), crlPem: await grants.crl() },
        renew: async (grant, body) => {
          const answer = await grants.renew(grant, body);
          access.forget(grant.id);
          return answer;
        },
        log: logger,
        federation: federation?.ops,
        jobBodyLimit: federation?.jobBodyLimit,
        audit: deps.audit,
        rateLimit: deps.rateLimit,
        tracing: deps.tracing,
      });
      try {
        const bound = new URL(await built.app.listen({ host: l.host, port: l.port }));
        const host = wildcard ? publicHost : l.host;
        url = `https://${host.includes(':') ? `[${host}]` : host}:${bound.port}`;
        server = built;
        crlRefresh.start();
        logger.info({ peer_channel_url: url }, 'peer channel listening (mTLS)');
      } catch (e) {
        await built.app.close();
        // The default port (public + 1) may be taken on a shared host; a configured one must bind.
        if (l.explicit) throw e;
        logger.warn({ err: (e as Error).message }, 'peer channel not started: set --peer-listen HOST:PORT');
      }
    },
    async close() {
      await renewal.stop();
      await recordsRefresh.stop();
      await crlRefresh.stop();
      await server?.app.close();
      await channel.close();
    },
  };
};
