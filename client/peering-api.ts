// Peering calls (grants on this manager, peers it enrolled with), as functions over a client.
import type { FlotillaClient } from './api-client.ts';

export interface GrantView {
  id: string;
  peer_name: string;
  subject_user: string;
  status: 'pending' | 'active' | 'revoked' | 'expired';
  scope: Record<string, unknown>;
  cert_serial: string | null;
  cert_not_after: string | null;
  created_at: string;
  activated_at: string | null;
  revoked_at: string | null;
  revoke_reason: string | null;
}

export interface PeerView {
  name: string;
  cluster_id: string;
  url: string;
  peer_channel_url: string;
  grant_id: string;
  subject: string;
  state: 'active' | 'degraded' | 'revoked';
  cert_serial: string;
  cert_not_after: string;
  last_success_at: string | null;
  last_failure_at: string | null;
  last_error: string | null;
  created_at: string;
  /** Federated queries' circuit for the peer cluster: open while it is offline. */
  circuit?: 'closed' | 'open' | 'half-open';
  offline_since?: string | null;
  capabilities?: Record<string, unknown>;
}

export interface FederatedQueryBody {
  verb: 'list' | 'get' | 'search';
  resource?: string;
  id?: string;
  q?: string;
  source?: string;
  cursor?: string;
  limit?: number;
}

export interface FederatedQueryAnswer {
  rows: Array<Record<string, unknown> & { _source: string; _cached?: boolean }>;
  next_cursor: string | null;
  _partial?: string[];
  _truncated?: boolean;
}

const seg = encodeURIComponent;

export const peeringApi = (c: FlotillaClient) => ({
  createGrant: (body: { peer: string; subject: string; scope: unknown }) =>
    c.request<GrantView>('POST', '/system/grants', { body }),
  listGrants: (status?: string) => c.request<GrantView[]>('GET', '/system/grants', { query: { status } }),
  getGrant: (id: string) => c.request<GrantView>('GET', `/system/grants/${seg(id)}`),
  grantToken: (id: string, ttl?: number) =>
    c.request<{ grant_id: string; token: string; expires_at: string }>(
      'POST',
      `/system/grants/${seg(id)}/token`,
      {
        body: ttl === undefined ? {} : { ttl },
      },
    ),
  revokeGrant: (id: string, reason?: string) =>
    c.request<GrantView>('POST', `/system/grants/${seg(id)}/revoke`, { body: reason ? { reason } : {} }),
  /** Revokes every pending or active grant of a subject (the user was deleted). */
  revokeSubject: (subject: string, reason?: string) =>
    c.request<{ subject: string; revoked: GrantView[] }>('POST', '/system/grants/revoke', {
      body: reason ? { subject, reason } : { subject },
    }),
  enrollPeer: (body: { url: string; token: string; name?: string }) =>
    c.request<PeerView>('POST', '/system/peers', { body }),
  listPeers: () => c.request<PeerView[]>('GET', '/system/peers'),
  peerStatus: (name: string) => c.request<PeerView>('GET', `/system/peers/${seg(name)}`),
  removePeer: (name: string) => c.request<unknown>('DELETE', `/system/peers/${seg(name)}`),
  /** POST /system/federation/query: as the caller here, as its grant subject on each peer. */
  query: (body: FederatedQueryBody) =>
    c.request<FederatedQueryAnswer>('POST', '/system/federation/query', { body }),
});
