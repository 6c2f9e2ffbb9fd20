// AccessTokenSource contract: one suite, run against every adapter (today the OIDC
// refresh-token exchange behind its cache) and a real oidc-provider on loopback. Only the
// port is used here; the adapter's own knobs are covered in oidc-verifier.test.ts.
import { inspect } from 'node:util';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccessTokenCache } from '../../src/adapters/oidc/token-exchange.ts';
import { FlotillaError } from '../../src/core/errors.ts';
import type { AccessTokenSource, RefreshGrant } from '../../src/core/ports.ts';
import { type OidcProviderFixture, startOidcProvider } from '../support/oidc-provider.ts';

interface Adapter {
  name: string;
  open(): AccessTokenSource;
}

const adapters: Adapter[] = [{ name: 'OIDC exchange with cache', open: () => new AccessTokenCache() }];

let plain: OidcProviderFixture;
let rotating: OidcProviderFixture;

beforeAll(async () => {
  [plain, rotating] = await Promise.all([
    startOidcProvider(),
    startOidcProvider({ rotateRefreshTokens: true }),
  ]);
});
afterAll(async () => {
  await Promise.all([plain?.stop(), rotating?.stop()]);
});

const grant = (idp: OidcProviderFixture, refreshToken: string): RefreshGrant => ({
  issuer: idp.issuer,
  clientId: idp.clientId,
  clientSecret: idp.clientSecret,
  refreshToken,
  resource: idp.resource,
});

/** Everything an error could show: message, stack, own properties, cause. */
const everything = (err: unknown) => `${String(err)}\n${inspect(err, { depth: 10 })}\n${JSON.stringify(err)}`;

const failure = async (p: Promise<unknown>): Promise<FlotillaError & { retryable?: unknown }> => {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FlotillaError);
  return err as FlotillaError & { retryable?: unknown };
};

for (const adapter of adapters) {
  describe(`AccessTokenSource contract: ${adapter.name}`, () => {
    it('mints an access token for the owner of the refresh token, for the requested audience', async () => {
      const { refreshToken } = await plain.mintTokens('alice');
      const before = Date.now();
      const token = await adapter.open().getAccessToken(grant(plain, refreshToken!));
      expect(decodeJwt(token.accessToken)).toMatchObject({ sub: 'alice', aud: plain.resource });
      expect(token.expiresAt.getTime()).toBeGreaterThan(before + 60_000);
    });

    it('hands the same token out again while it is fresh, to sequential and concurrent callers', async () => {
      const { refreshToken } = await plain.mintTokens('bob');
      const source = adapter.open();
      const first = await source.getAccessToken(grant(plain, refreshToken!));
      const again = await Promise.all(
        [1, 2, 3].map(() => source.getAccessToken(grant(plain, refreshToken!))),
      );
      for (const t of again) expect(t).toEqual(first);
    });

    it('passes a rotated refresh token to the caller, and the rotated one works', async () => {
      const { refreshToken } = await rotating.mintTokens('carol');
      const rotated: string[] = [];
      const first = await adapter.open().getAccessToken(grant(rotating, refreshToken!), {
        onRefreshTokenRotated: (rt) => {
          rotated.push(rt);
        },
      });
      expect(decodeJwt(first.accessToken).sub).toBe('carol');
      expect(rotated).toHaveLength(1);
      expect(rotated[0]).not.toBe(refreshToken);
      // A fresh source (another replica) exchanges the rotated token at the issuer.
      const next = await adapter.open().getAccessToken(grant(rotating, rotated[0]));
      expect(decodeJwt(next.accessToken).sub).toBe('carol');
    });

    it('a refused grant is not retryable, and its error shows neither token nor secret', async () => {
      const bogus = 'bogus-refresh-token-that-must-not-leak';
      const err = await failure(adapter.open().getAccessToken(grant(plain, bogus)));
      expect(err.retryable).toBe(false);
      expect(err.message).toContain(plain.issuer);
      expect(everything(err)).not.toContain(bogus);
      expect(everything(err)).not.toContain(plain.clientSecret);
    });

    it('an unreachable issuer is retryable, and its error shows neither token nor secret', async () => {
      const { refreshToken } = await plain.mintTokens('dave');
      const err = await failure(
        adapter.open().getAccessToken({ ...grant(plain, refreshToken!), issuer: 'http://127.0.0.1:1' }),
      );
      expect(err.retryable).toBe(true);
      expect(everything(err)).not.toContain(refreshToken!);
      expect(everything(err)).not.toContain(plain.clientSecret);
    });
  });
}
