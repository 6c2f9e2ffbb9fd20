// Credentials between clusters, per member cluster, strongest first: a peer certificate
// (the peer channel, mTLS as the grant's subject); an OIDC access token minted from the
// service owner's refresh token; Basic credentials from the service's `clusters` map (OSCAR
// compatibility).
import type { PeerTarget } from '../../core/ports.ts';
import type { RefreshTokens } from '../credentials/refresh-tokens.ts';
import type { DelegationCredentials } from './delegator.ts';
import type { PeerRecordSource } from './peer-resolver.ts';

export const createDelegationCredentials = (deps: {
  /** Peer records, tried first. */
  peers?: Pick<PeerRecordSource, 'target'>;
  refreshTokens: RefreshTokens | undefined;
  logger: { warn(obj: Record<string, unknown>, msg: string): void };
}): DelegationCredentials => {
  /** The last exchange failure warned about, per service: one warning per failure, not per call. */
  const warned = new Map<string, string>();
  return {
    async targetFor(clusterId, service, round): Promise<PeerTarget | undefined> {
      const peer = deps.peers?.target(clusterId, service);
      if (peer) return peer;
      const entry = service.clusters?.[clusterId];
      if (!entry?.endpoint) return undefined;
      const base = {
        clusterId,
        endpoint: entry.endpoint.replace(/\/+$/, ''),
        sslVerify: entry.ssl_verify !== false,
      };
      if (deps.refreshTokens) {
        try {
          let pending = round?.get(service.name);
          if (!pending) {
            pending = deps.refreshTokens.accessToken(service.name);
            round?.set(service.name, pending);
          }
          const token = await pending;
          if (token) {
            warned.delete(service.name);
            return { ...base, auth: { kind: 'bearer', token } };
          }
        } catch (e) {
          const err = (e as Error).message;
          if (warned.get(service.name) !== err) {
            warned.set(service.name, err);
            deps.logger.warn(
              { service: service.name, err },
              'refresh-token exchange failed; trying Basic credentials',
            );
          }
        }
      }
      if (entry.auth_user && entry.auth_password) {
        return { ...base, auth: { kind: 'basic', user: entry.auth_user, password: entry.auth_password } };
      }
      return undefined;
    },
  };
};
