// The PeerClient over the peer channel (DESIGN §6): the HTTP peer client's requests and
// answer handling, unchanged, on a transport of mTLS agents with the peer record's client
// certificate and the peer's CA as the only root. A target with auth `peer` goes to the
// record's peer channel under /federation/v1 (where the receiver serves the OSCAR paths the
// client calls, as the grant's subject); any other target keeps the plain HTTP(S) agents.

import { FlotillaError } from '../../core/errors.ts';
import type { PeerClient, PeerRecord, PeerTarget } from '../../core/ports.ts';
import { PEER_FEDERATION_PREFIX } from '../../core/trust/peer-federation.ts';
import { createHttpPeerClient, type HttpPeerClientOptions } from '../peer-http/http-peer-client.ts';
import type { PeerAgents } from './mtls-peer-channel.ts';

export interface MtlsPeerClientDeps {
  /** The peer record a target names, read at send time (a renewal swaps its certificate). */
  peer(name: string): Promise<PeerRecord | undefined>;
  agents: PeerAgents;
}

export const mtlsTransport =
  (deps: MtlsPeerClientDeps): NonNullable<HttpPeerClientOptions['transport']> =>
  async (t: PeerTarget, connect) => {
    if (t.auth.kind !== 'peer') return undefined;
    const record = await deps.peer(t.auth.peer);
    if (!record)
      throw new FlotillaError('PEER_UNREACHABLE', `cluster ${t.clusterId}: no peer record "${t.auth.peer}"`, {
        cluster_id: t.clusterId,
      });
    return {
      dispatcher: deps.agents.for(record, connect),
      endpoint: `${record.peerChannelUrl.replace(/\/+$/, '')}${PEER_FEDERATION_PREFIX}`,
    };
  };

/** One PeerClient for every target: peer records over mTLS, `clusters` entries over HTTP(S). */
export const createPeerClient = (
  opts: Omit<HttpPeerClientOptions, 'transport'> & { mtls: MtlsPeerClientDeps },
): PeerClient & { close(): Promise<void> } => {
  const { mtls, ...http } = opts;
  const client = createHttpPeerClient({ ...http, transport: mtlsTransport(mtls) });
  return {
    ...client,
    async close() {
      await client.close();
      await mtls.agents.close();
    },
  };
};
