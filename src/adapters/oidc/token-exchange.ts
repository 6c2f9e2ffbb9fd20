// Refresh-token exchange at an OIDC issuer's discovered token endpoint (openid-client), and
// a cache so a service owner's refresh token is exchanged once per access-token lifetime.
// Refresh tokens and client secrets are never part of an error, a log line or a cache key.
import { createHash } from 'node:crypto';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { FlotillaError } from '../../core/errors.ts';
import { type AccessTokenSource, type Clock, type RefreshGrant, systemClock } from '../../core/ports.ts';

export interface RefreshTokenExchangeRequest extends RefreshGrant {
  /** How the client authenticates at the token endpoint (default client_secret_basic). */
  authMethod?: 'client_secret_basic' | 'client_secret_post';
  /** Per-request timeout for discovery and the token request (default 10000 ms). */
  timeoutMs?: number;
  /** fetch used for discovery and the token request (default: global fetch). */
  fetch?: typeof globalThis.fetch;
}

export interface ExchangedAccessToken {
  accessToken: string;
  expiresAt: Date;
  /** Present when the issuer rotated the refresh token; the old one must no longer be used. */
  refreshToken?: string;
}

/**
 * A failed exchange. The message names the issuer and, when the issuer gave one, the OAuth
 * error code; never the issuer's free-text description, which could echo request data.
 */
export class TokenExchangeError extends FlotillaError {
  readonly issuer: string;
  /** OAuth error code from the issuer, e.g. invalid_grant. */
  readonly oauthError?: string;
  /** false when retrying with the same refresh token cannot help (the owner must log in again). */
  readonly retryable: boolean;

  constructor(issuer: string, reason: { oauthError?: string; httpStatus?: number; retryable: boolean }) {
    const detail =
      reason.oauthError ?? (reason.httpStatus ? `HTTP ${reason.httpStatus}` : 'issuer unreachable');
    super(
      reason.retryable ? 'UNAVAILABLE' : 'UNAUTHORIZED',
      `refresh-token exchange at ${issuer} failed: ${detail}`,
      { issuer, oauth_error: reason.oauthError },
    );
    this.name = 'TokenExchangeError';
    this.issuer = issuer;
    this.oauthError = reason.oauthError;
    this.retryable = reason.retryable;
  }
}

/** Lifetime assumed when the issuer states none and the token is not a readable JWT. */
const FALLBACK_LIFETIME_SECONDS = 60;

export async function exchangeRefreshToken(
  req: RefreshTokenExchangeRequest,
  clock: Clock = systemClock,
): Promise<ExchangedAccessToken> {
  // Taken before the request, so the computed expiry errs on the early side.
  const issuedAt = clock.now().getTime();
  let response: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;
  try {
    const config = await discover(req);
    response = await oidc.refreshTokenGrant(config, req.refreshToken, grantParameters(req));
  } catch (err) {
    // A new error without `cause`: the original may carry request details.
    throw toExchangeError(req.issuer, err);
  }
  return {
    accessToken: response.access_token,
    expiresAt: new Date(issuedAt + lifetimeSeconds(response, issuedAt) * 1000),
    refreshToken:
      response.refresh_token && response.refresh_token !== req.refreshToken
        ? response.refresh_token
        : undefined,
  };
}

function discover(req: RefreshTokenExchangeRequest): Promise<oidc.Configuration> {
  const auth =
    req.authMethod === 'client_secret_post'
      ? oidc.ClientSecretPost(req.clientSecret)
      : oidc.ClientSecretBasic(req.clientSecret);
  // Plain http is accepted only because the operator configured an http issuer (loopback tests, labs).
  const insecure = new URL(req.issuer).protocol === 'http:';
  return oidc.discovery(new URL(req.issuer), req.clientId, undefined, auth, {
    timeout: Math.ceil((req.timeoutMs ?? 10_000) / 1000),
    execute: insecure ? [oidc.allowInsecureRequests] : [],
    ...(req.fetch ? { [oidc.customFetch]: asCustomFetch(req.fetch) } : {}),
  });
}

/** openid-client types its fetch hook more loosely than the DOM's RequestInit; the values are the same. */
function asCustomFetch(fetchImpl: typeof globalThis.fetch): oidc.CustomFetch {
  return (url, options) => fetchImpl(url, options as RequestInit);
}

function grantParameters(req: RefreshTokenExchangeRequest): Record<string, string> {
  const params: Record<string, string> = {};
  if (req.resource) params.resource = req.resource;
  if (req.scope) params.scope = req.scope;
  return params;
}

function lifetimeSeconds(
  response: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers,
  nowMs: number,
): number {
  const stated = response.expiresIn();
  if (stated !== undefined) return stated;
  try {
    const { exp } = decodeJwt(response.access_token);
    if (typeof exp === 'number') return Math.max(0, exp - Math.floor(nowMs / 1000));
  } catch {
    // opaque access token: fall through
  }
  return FALLBACK_LIFETIME_SECONDS;
}

// OAuth errors that mean the credentials themselves are bad, not that the issuer is having trouble.
const PERMANENT_OAUTH_ERRORS = new Set([
  'invalid_grant',
  'invalid_client',
  'unauthorized_client',
  'invalid_scope',
]);

function toExchangeError(issuer: string, err: unknown): TokenExchangeError {
  const oauthError = oauthErrorCode(err);
  const status = (err as { status?: unknown })?.status;
  return new TokenExchangeError(issuer, {
    oauthError,
    httpStatus: typeof status === 'number' ? status : undefined,
    retryable: !oauthError || !PERMANENT_OAUTH_ERRORS.has(oauthError),
  });
}

/** The issuer's OAuth error code, from the JSON body or (for 401 client errors) WWW-Authenticate. */
function oauthErrorCode(err: unknown): string | undefined {
  let code: string | undefined;
  if (err instanceof oidc.ResponseBodyError) code = err.error;
  else if (err instanceof oidc.WWWAuthenticateChallengeError) {
    code = err.cause.find((c) => c.parameters.error)?.parameters.error ?? 'invalid_client';
  }
  if (code === undefined) return undefined;
  return /^[A-Za-z0-9_.-]{1,64}$/.test(code) ? code : 'invalid_response';
}

// ---------------------------------------------------------------- cache

export interface AccessTokenCacheOptions {
  /** An access token is renewed this long before it expires (default 30000 ms). */
  refreshMarginMs?: number;
  /** Upper bound on cached entries; expired and then oldest entries go first (default 1000). */
  maxEntries?: number;
  clock?: Clock;
  /** The exchange to perform on a miss (default exchangeRefreshToken). */
  exchange?: (req: RefreshTokenExchangeRequest) => Promise<ExchangedAccessToken>;
}

export interface GetAccessTokenOptions {
  /**
   * Receives the new refresh token when the issuer rotated it; the caller must store it in
   * place of the old one. Awaited, and its error is passed on to the caller.
   */
  onRefreshTokenRotated?: (refreshToken: string) => void | Promise<void>;
}

export interface CachedAccessToken {
  accessToken: string;
  expiresAt: Date;
}

/**
 * Access tokens by (issuer, client, resource, sha256 of the refresh token). Concurrent
 * requests for one key share a single exchange: with rotating refresh tokens, two parallel
 * exchanges of the same token look like token theft to the issuer, which revokes the grant.
 */
export class AccessTokenCache implements AccessTokenSource {
  private readonly entries = new Map<string, CachedAccessToken>();
  private readonly inFlight = new Map<string, Promise<CachedAccessToken>>();
  private readonly refreshMarginMs: number;
  private readonly maxEntries: number;
  private readonly clock: Clock;
  private readonly exchange: (req: RefreshTokenExchangeRequest) => Promise<ExchangedAccessToken>;

  constructor(opts: AccessTokenCacheOptions = {}) {
    this.refreshMarginMs = opts.refreshMarginMs ?? 30_000;
    this.maxEntries = opts.maxEntries ?? 1000;
    this.clock = opts.clock ?? systemClock;
    this.exchange = opts.exchange ?? ((req) => exchangeRefreshToken(req, this.clock));
  }

  async getAccessToken(
    req: RefreshTokenExchangeRequest,
    opts: GetAccessTokenOptions = {},
  ): Promise<CachedAccessToken> {
    const key = cacheKey(req, req.refreshToken);
    const cached = this.entries.get(key);
    if (cached && this.isFresh(cached)) return cached;

    const pending = this.inFlight.get(key);
    if (pending) return pending;

    const started = this.exchangeAndStore(req, key, opts).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, started);
    return started;
  }

  /** Drops the cached token, e.g. after a peer answered 401 to it. */
  invalidate(
    req: Pick<RefreshTokenExchangeRequest, 'issuer' | 'clientId' | 'resource' | 'refreshToken'>,
  ): void {
    this.entries.delete(cacheKey(req, req.refreshToken));
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }

  private async exchangeAndStore(
    req: RefreshTokenExchangeRequest,
    key: string,
    opts: GetAccessTokenOptions,
  ): Promise<CachedAccessToken> {
    const result = await this.exchange(req);
    const entry: CachedAccessToken = { accessToken: result.accessToken, expiresAt: result.expiresAt };
    this.store(key, entry);
    if (result.refreshToken) {
      // Callers will come back with the rotated token; let them hit the cache too.
      this.store(cacheKey(req, result.refreshToken), entry);
      await opts.onRefreshTokenRotated?.(result.refreshToken);
    }
    return entry;
  }

  private isFresh(entry: CachedAccessToken): boolean {
    return entry.expiresAt.getTime() - this.refreshMarginMs > this.clock.now().getTime();
  }

  private store(key: string, entry: CachedAccessToken): void {
    this.entries.delete(key); // re-insert so Map order is least recently stored first
    this.entries.set(key, entry);
    if (this.entries.size <= this.maxEntries) return;
    for (const [k, e] of this.entries) {
      if (!this.isFresh(e)) this.entries.delete(k);
    }
    for (const k of this.entries.keys()) {
      if (this.entries.size <= this.maxEntries) break;
      this.entries.delete(k);
    }
  }
}

function cacheKey(
  req: Pick<RefreshTokenExchangeRequest, 'issuer' | 'clientId' | 'resource'>,
  refreshToken: string,
) {
  const digest = createHash('sha256').update(refreshToken).digest('base64url');
  return [req.issuer, req.clientId, req.resource ?? '', digest].join('\n');
}
