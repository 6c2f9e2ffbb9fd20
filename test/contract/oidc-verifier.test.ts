// Contract of the OIDC adapters against a real oidc-provider: token verification
// (TokenVerifier port) and refresh-token exchange with its cache.
import { inspect } from 'node:util';
import { decodeJwt, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AccessTokenCache,
  type ExchangedAccessToken,
  exchangeRefreshToken,
  type RefreshTokenExchangeRequest,
  TokenExchangeError,
} from '../../src/adapters/oidc/token-exchange.ts';
import { createOidcTokenVerifier, type OidcLogger } from '../../src/adapters/oidc/token-verifier.ts';
import type { TokenVerifier } from '../../src/core/ports.ts';
import { type OidcProviderFixture, startOidcProvider } from '../support/oidc-provider.ts';

interface LogEntry {
  level: 'debug' | 'warn';
  obj: Record<string, unknown>;
  msg: string;
}

function recordingLogger(): OidcLogger & { entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  return {
    entries,
    debug: (obj, msg) => entries.push({ level: 'debug', obj, msg }),
    warn: (obj, msg) => entries.push({ level: 'warn', obj, msg }),
  };
}

/** Replaces one part of a compact JWS (0 header, 1 payload, 2 signature). */
function withPart(token: string, index: number, value: string): string {
  const parts = token.split('.');
  parts[index] = value;
  return parts.join('.');
}

const encodeJson = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

function exchangeRequest(idp: OidcProviderFixture, refreshToken: string): RefreshTokenExchangeRequest {
  return {
    issuer: idp.issuer,
    clientId: idp.clientId,
    clientSecret: idp.clientSecret,
    refreshToken,
    resource: idp.resource,
  };
}

describe('OIDC adapters against a real oidc-provider', () => {
  let trusted: OidcProviderFixture;
  let foreign: OidcProviderFixture;
  let verifier: TokenVerifier;
  const logger = recordingLogger();
  /** Every token and secret the tests handle; none may ever reach a log line. */
  const sensitive: string[] = [];

  beforeAll(async () => {
    // The foreign provider rotates refresh tokens, so the rotation path is covered too.
    [trusted, foreign] = await Promise.all([
      startOidcProvider(),
      startOidcProvider({ rotateRefreshTokens: true }),
    ]);
    verifier = createOidcTokenVerifier({ issuers: [trusted.issuer], logger });
    sensitive.push(trusted.clientSecret, foreign.clientSecret);
  });

  afterAll(async () => {
    await Promise.all([trusted?.stop(), foreign?.stop()]);
  });

  const mint: OidcProviderFixture['mintTokens'] = async (sub, opts) => {
    const tokens = await trusted.mintTokens(sub, opts);
    sensitive.push(tokens.accessToken, ...(tokens.refreshToken ? [tokens.refreshToken] : []));
    return tokens;
  };

  describe('token verifier', () => {
    it('verifies a valid access token and returns the subject, issuer and claims', async () => {
      const { accessToken } = await mint('alice', { claims: { eduperson_entitlement: ['urn:vo:demo'] } });

      const result = await verifier.verify(accessToken);

      expect(result).toMatchObject({ sub: 'alice', issuer: trusted.issuer });
      expect(result?.claims).toMatchObject({
        iss: trusted.issuer,
        aud: trusted.resource,
        eduperson_entitlement: ['urn:vo:demo'],
      });
      expect(verifier.issuers).toEqual([trusted.issuer]);
    });

    it('matches an issuer configured with a trailing slash and reports it as configured', async () => {
      const configured = `${trusted.issuer}/`;
      const slashVerifier = createOidcTokenVerifier({ issuers: [configured] });
      const { accessToken } = await mint('alice');

      expect(await slashVerifier.verify(accessToken)).toMatchObject({ sub: 'alice', issuer: configured });
    });

    it('checks the audience when one is configured', async () => {
      const { accessToken } = await mint('alice');
      const right = createOidcTokenVerifier({ issuers: [trusted.issuer], audience: trusted.resource });
      const wrong = createOidcTokenVerifier({ issuers: [trusted.issuer], audience: 'urn:someone-else' });

      expect(await right.verify(accessToken)).toMatchObject({ sub: 'alice' });
      expect(await wrong.verify(accessToken)).toBeUndefined();
    });

    it('rejects an expired token but tolerates a few seconds of clock skew', async () => {
      const expired = await mint('bob', { expiresIn: -60 });
      const justExpired = await mint('bob', { expiresIn: -2 });

      expect(await verifier.verify(expired.accessToken)).toBeUndefined();
      expect(await verifier.verify(justExpired.accessToken)).toMatchObject({ sub: 'bob' });
    });

    it('rejects a token from an issuer that is not configured', async () => {
      const { accessToken } = await foreign.mintTokens('mallory');
      const both = createOidcTokenVerifier({ issuers: [trusted.issuer, foreign.issuer] });

      expect(await verifier.verify(accessToken)).toBeUndefined();
      // The token itself is fine: a verifier that trusts its issuer accepts it.
      expect(await both.verify(accessToken)).toMatchObject({ sub: 'mallory', issuer: foreign.issuer });
    });

    it('rejects a foreign token whose iss was rewritten to the trusted issuer', async () => {
      const { accessToken } = await foreign.mintTokens('mallory');
      const claims = { ...decodeJwt(accessToken), iss: trusted.issuer };

      expect(await verifier.verify(withPart(accessToken, 1, encodeJson(claims)))).toBeUndefined();
    });

    it('rejects a tampered signature or payload', async () => {
      const { accessToken } = await mint('alice');
      const signature = accessToken.split('.')[2];
      const flipped = signature[5] === 'A' ? 'B' : 'A';
      const badSignature = withPart(accessToken, 2, signature.slice(0, 5) + flipped + signature.slice(6));
      const otherSubject = withPart(accessToken, 1, encodeJson({ ...decodeJwt(accessToken), sub: 'root' }));

      expect(await verifier.verify(badSignature)).toBeUndefined();
      expect(await verifier.verify(otherSubject)).toBeUndefined();
      expect(await verifier.verify(accessToken)).toMatchObject({ sub: 'alice' });
    });

    it('rejects alg none and symmetric algorithms', async () => {
      const claims = { iss: trusted.issuer, sub: 'root', exp: Math.floor(Date.now() / 1000) + 300 };
      const unsigned = `${encodeJson({ alg: 'none', typ: 'JWT' })}.${encodeJson(claims)}.`;
      const hmac = await new SignJWT(claims)
        .setProtectedHeader({ alg: 'HS256' })
        .sign(new TextEncoder().encode(trusted.clientSecret));

      expect(await verifier.verify(unsigned)).toBeUndefined();
      expect(await verifier.verify(hmac)).toBeUndefined();
    });

    it('answers undefined for garbage and opaque strings without any network request', async () => {
      let requests = 0;
      const counting = createOidcTokenVerifier({
        issuers: [trusted.issuer],
        fetch: (input, init) => {
          requests++;
          return fetch(input, init);
        },
      });
      const samples = ['', 'garbage', 'a.b', 'a.b.c', '....', 'f'.repeat(64), `${'x'.repeat(20_000)}.y.z`];

      for (const sample of samples) expect(await counting.verify(sample)).toBeUndefined();
      expect(requests).toBe(0);
    });

    it('retries discovery after a failure, and not before the retry delay', async () => {
      let requests = 0;
      const failFirst: typeof fetch = (input, init) => {
        requests++;
        return requests === 1 ? Promise.reject(new TypeError('fetch failed')) : fetch(input, init);
      };
      const { accessToken } = await mint('dave');

      const eager = createOidcTokenVerifier({
        issuers: [trusted.issuer],
        fetch: failFirst,
        discoveryRetryMs: 0,
      });
      expect(await eager.verify(accessToken)).toBeUndefined();
      expect(await eager.verify(accessToken)).toMatchObject({ sub: 'dave' });

      requests = 0;
      const patient = createOidcTokenVerifier({ issuers: [trusted.issuer], fetch: failFirst, logger });
      expect(await patient.verify(accessToken)).toBeUndefined();
      expect(await patient.verify(accessToken)).toBeUndefined();
      expect(requests).toBe(1);
      expect(logger.entries.some((e) => e.level === 'warn' && e.msg === 'OIDC discovery failed')).toBe(true);
    });

    it('shares one discovery between concurrent first requests', async () => {
      let discoveries = 0;
      const counting = createOidcTokenVerifier({
        issuers: [trusted.issuer],
        fetch: (input, init) => {
          if (String(input).endsWith('/.well-known/openid-configuration')) discoveries++;
          return fetch(input, init);
        },
      });
      const { accessToken } = await mint('erin');

      const results = await Promise.all([1, 2, 3].map(() => counting.verify(accessToken)));

      expect(results.map((r) => r?.sub)).toEqual(['erin', 'erin', 'erin']);
      expect(discoveries).toBe(1);
    });
  });

  describe('refresh-token exchange', () => {
    it('returns a fresh access token for the same subject, which verifies', async () => {
      const minted = await mint('carol');
      const before = Date.now();

      const requested: string[] = [];
      const exchanged = await exchangeRefreshToken({
        ...exchangeRequest(trusted, minted.refreshToken!),
        fetch: (input, init) => {
          requested.push(String(input));
          return fetch(input, init);
        },
      });

      expect(requested).toEqual([
        `${trusted.issuer}/.well-known/openid-configuration`,
        trusted.tokenEndpoint,
      ]);
      expect(exchanged.accessToken).not.toBe(minted.accessToken);
      expect(decodeJwt(exchanged.accessToken).sub).toBe('carol');
      expect(await verifier.verify(exchanged.accessToken)).toMatchObject({
        sub: 'carol',
        issuer: trusted.issuer,
      });
      expect(exchanged.expiresAt.getTime()).toBeGreaterThanOrEqual(before + 290_000);
      expect(exchanged.expiresAt.getTime()).toBeLessThanOrEqual(Date.now() + 301_000);
      expect(exchanged.refreshToken).toBeUndefined(); // this issuer does not rotate
    });

    it('keeps extra claims of the subject after a refresh', async () => {
      const minted = await mint('frank', { claims: { groups: ['ops'] } });

      const exchanged = await exchangeRefreshToken(exchangeRequest(trusted, minted.refreshToken!));

      expect((await verifier.verify(exchanged.accessToken))?.claims.groups).toEqual(['ops']);
    });

    it('reports a rotated refresh token, which then works while the old one is spent', async () => {
      const minted = await foreign.mintTokens('grace');
      const cache = new AccessTokenCache();
      const rotated: string[] = [];

      const first = await cache.getAccessToken(exchangeRequest(foreign, minted.refreshToken!), {
        onRefreshTokenRotated: (rt) => {
          rotated.push(rt);
        },
      });

      expect(rotated).toHaveLength(1);
      expect(rotated[0]).not.toBe(minted.refreshToken);
      expect(decodeJwt(first.accessToken).sub).toBe('grace');
      // Coming back with the rotated token hits the cache.
      expect(await cache.getAccessToken(exchangeRequest(foreign, rotated[0]))).toEqual(first);
      const direct = await exchangeRefreshToken(exchangeRequest(foreign, rotated[0]));
      expect(decodeJwt(direct.accessToken).sub).toBe('grace');
      await expect(
        exchangeRefreshToken(exchangeRequest(foreign, minted.refreshToken!)),
      ).rejects.toMatchObject({
        oauthError: 'invalid_grant',
      });
    });
  });

  describe('access-token cache', () => {
    function countingCache(clock?: { now(): Date }) {
      const calls = { count: 0 };
      const cache = new AccessTokenCache({
        clock,
        exchange: (req): Promise<ExchangedAccessToken> => {
          calls.count++;
          return exchangeRefreshToken(req, clock);
        },
      });
      return { cache, calls };
    }

    it('returns the cached token on the second call and exchanges once', async () => {
      const { refreshToken } = await mint('heidi');
      const { cache, calls } = countingCache();

      const first = await cache.getAccessToken(exchangeRequest(trusted, refreshToken!));
      const second = await cache.getAccessToken(exchangeRequest(trusted, refreshToken!));

      expect(second).toEqual(first);
      expect(calls.count).toBe(1);
      expect(await verifier.verify(first.accessToken)).toMatchObject({ sub: 'heidi' });
    });

    it('shares one exchange between concurrent callers', async () => {
      const { refreshToken } = await mint('ivan');
      const { cache, calls } = countingCache();

      const results = await Promise.all(
        [1, 2, 3].map(() => cache.getAccessToken(exchangeRequest(trusted, refreshToken!))),
      );

      expect(new Set(results.map((r) => r.accessToken)).size).toBe(1);
      expect(calls.count).toBe(1);
    });

    it('exchanges again once the token is within 30 s of expiry, and after invalidate', async () => {
      let now = Date.now();
      const clock = { now: () => new Date(now) };
      const { refreshToken } = await mint('judy');
      const { cache, calls } = countingCache(clock);
      const req = exchangeRequest(trusted, refreshToken!);

      const first = await cache.getAccessToken(req);
      now = first.expiresAt.getTime() - 31_000;
      expect(await cache.getAccessToken(req)).toEqual(first);
      now = first.expiresAt.getTime() - 29_000;
      await cache.getAccessToken(req);
      expect(calls.count).toBe(2);

      cache.invalidate(req);
      await cache.getAccessToken(req);
      expect(calls.count).toBe(3);
    });

    it('does not cache failures', async () => {
      const { cache, calls } = countingCache();
      const req = { ...exchangeRequest(trusted, 'not-a-refresh-token') };

      await expect(cache.getAccessToken(req)).rejects.toBeInstanceOf(TokenExchangeError);
      await expect(cache.getAccessToken(req)).rejects.toBeInstanceOf(TokenExchangeError);
      expect(calls.count).toBe(2);
      expect(cache.size).toBe(0);
    });
  });

  describe('exchange errors', () => {
    /** Everything an error could show: message, stack, own properties, details, cause. */
    const everything = (err: unknown) =>
      `${String(err)}\n${inspect(err, { depth: 10 })}\n${JSON.stringify(err)}`;

    async function exchangeError(req: RefreshTokenExchangeRequest): Promise<TokenExchangeError> {
      const err = await exchangeRefreshToken(req).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(TokenExchangeError);
      return err as TokenExchangeError;
    }

    it('a wrong client secret: invalid_client, names the issuer, shows neither secret nor token', async () => {
      const { refreshToken } = await mint('ken');
      const wrongSecret = 'wrong-secret-0123456789abcdef';

      const err = await exchangeError({
        ...exchangeRequest(trusted, refreshToken!),
        clientSecret: wrongSecret,
      });

      expect(err.oauthError).toBe('invalid_client');
      expect(err.retryable).toBe(false);
      expect(err.message).toContain(trusted.issuer);
      for (const secret of [wrongSecret, trusted.clientSecret, refreshToken!]) {
        expect(everything(err)).not.toContain(secret);
      }
    });

    it('an unknown refresh token: invalid_grant, without the token', async () => {
      const bogus = 'bogus-refresh-token-that-must-not-leak';

      const err = await exchangeError(exchangeRequest(trusted, bogus));

      expect(err.oauthError).toBe('invalid_grant');
      expect(err.code).toBe('UNAUTHORIZED');
      expect(everything(err)).not.toContain(bogus);
      expect(everything(err)).not.toContain(trusted.clientSecret);
    });

    it('an unreachable issuer: retryable, without secrets', async () => {
      const { refreshToken } = await mint('liam');
      const issuer = 'http://127.0.0.1:1';

      const err = await exchangeError({
        ...exchangeRequest(trusted, refreshToken!),
        issuer,
        timeoutMs: 2000,
      });

      expect(err.retryable).toBe(true);
      expect(err.code).toBe('UNAVAILABLE');
      expect(err.message).toContain(issuer);
      expect(everything(err)).not.toContain(refreshToken!);
      expect(everything(err)).not.toContain(trusted.clientSecret);
    });
  });

  it('never wrote a token or secret to the log', () => {
    expect(logger.entries.length).toBeGreaterThan(0);
    const logged = JSON.stringify(logger.entries);
    for (const value of sensitive) expect(logged).not.toContain(value);
  });
});
