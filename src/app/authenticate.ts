// Turns an Authorization header into a Principal: Basic admin, an OIDC bearer token,
// (on invocation routes) a service's own token, or (on /system/config only) a delegation
// token. Comparisons are constant-time; throttling failures is the HTTP layer's part.
import { ADMIN_USER, type Principal, refuseDelegation } from '../core/auth/principal.ts';
import { sameSecret } from '../core/auth/secrets.ts';
import { FlotillaError } from '../core/errors.ts';
import type { TokenVerifier } from '../core/ports.ts';
import type { AdminPasswordCheck } from './admin-password.ts';

const SERVICE_TOKEN_RE = /^[0-9a-f]{64}$/;

export interface Authenticator {
  /**
   * The caller, or a 401 FlotillaError. `serviceTokenFor` lets a service token in;
   * `delegation` lets a delegation token in (only /system/config does), else it is a 403.
   */
  authenticate(
    header: string | undefined,
    opts?: { serviceTokenFor?: { name: string; token: string }; delegation?: boolean },
  ): Promise<Principal>;
}

const unauthorized = (msg: string) => new FlotillaError('UNAUTHORIZED', msg);

export { sameSecret };

export const createAuthenticator = (deps: {
  admin: AdminPasswordCheck;
  verifier: TokenVerifier | undefined;
  /** Delegation tokens this cluster gave to replicas: the service they stand for. */
  delegation?: (token: string) => Promise<string | undefined>;
}): Authenticator => ({
  async authenticate(header, opts) {
    if (!header) throw unauthorized('missing Authorization header (Basic or Bearer)');
    const space = header.indexOf(' ');
    const scheme = (space > 0 ? header.slice(0, space) : header).toLowerCase();
    const value = space > 0 ? header.slice(space + 1).trim() : '';
    if (scheme === 'basic') {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      const user = colon >= 0 ? decoded.slice(0, colon) : decoded;
      const password = colon >= 0 ? decoded.slice(colon + 1) : '';
      if (user === ADMIN_USER && (await deps.admin.verify(password)))
        return { kind: 'admin', user: ADMIN_USER };
      throw unauthorized('invalid username or password');
    }
    if (scheme === 'bearer' && value) {
      const svc = opts?.serviceTokenFor;
      if (svc && SERVICE_TOKEN_RE.test(value)) {
        if (sameSecret(value, svc.token)) return { kind: 'service-token', service: svc.name };
        throw unauthorized('invalid token');
      }
      if (value.startsWith('dlg_') && deps.delegation) {
        const service = await deps.delegation(value);
        if (service) {
          const principal: Principal = { kind: 'delegation', service };
          if (!opts?.delegation) refuseDelegation(principal);
          return principal;
        }
        throw unauthorized('invalid or expired delegation token');
      }
      const verified = deps.verifier ? await deps.verifier.verify(value) : undefined;
      if (verified) return { kind: 'user', sub: verified.sub, issuer: verified.issuer };
      throw unauthorized(
        deps.verifier?.issuers.length
          ? 'invalid or expired token'
          : 'bearer tokens are not enabled on this cluster (no OIDC issuer configured)',
      );
    }
    throw unauthorized('unsupported Authorization scheme: use Basic or Bearer');
  },
});
