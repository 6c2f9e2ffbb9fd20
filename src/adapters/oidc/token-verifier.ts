// TokenVerifier over OIDC issuers: discovery once per issuer (lazily, retried after a
// failure), keys from the issuer's JWKS, signatures and claims checked with jose.
// A bad token is an answer (undefined), never an exception; tokens are never logged.
import {
  createRemoteJWKSet,
  customFetch,
  decodeJwt,
  decodeProtectedHeader,
  type JWTVerifyGetKey,
  jwtVerify,
} from 'jose';
import type { TokenVerifier, VerifiedToken } from '../../core/ports.ts';

/** Asymmetric algorithms only: HS* would let anyone holding a client secret forge tokens. */
export const ALLOWED_JWT_ALGORITHMS: readonly string[] = ['RS256', 'ES256', 'PS256', 'EdDSA'];

/** Structural subset of pino's logger, so a pino instance can be passed as is. */
export interface OidcLogger {
  debug(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
}

export interface OidcTokenVerifierOptions {
  issuers: readonly string[];
  /** Timeout for discovery and JWKS requests (default 5000 ms). */
  fetchTimeoutMs?: number;
  /** After a failed discovery, tokens of that issuer are refused for this long before retrying (default 30 s). */
  discoveryRetryMs?: number;
  /** When set, the token's `aud` must contain one of these. */
  audience?: string | readonly string[];
  /** Allowed clock skew for exp/nbf/iat (default 5 s). */
  clockToleranceSec?: number;
  logger?: OidcLogger;
  /** fetch used for discovery and JWKS (default: global fetch). */
  fetch?: typeof globalThis.fetch;
}

// A JWS in compact form; anything else (opaque tokens, JWE, service tokens) is rejected
// before any parsing or network access.
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const MAX_TOKEN_LENGTH = 16 * 1024;

export function createOidcTokenVerifier(opts: OidcTokenVerifierOptions): TokenVerifier {
  const settings = resolveSettings(opts);
  const issuers = Object.freeze([...opts.issuers]);
  const resolvers = new Map(
    issuers.map((iss) => [normalizeIssuer(iss), createIssuerResolver(iss, settings)]),
  );

  return {
    issuers,
    async verify(token: string): Promise<VerifiedToken | undefined> {
      const unverified = peekIssuer(token);
      if (!unverified) return undefined;
      const resolver = resolvers.get(normalizeIssuer(unverified));
      if (!resolver) {
        settings.logger?.debug({ iss: unverified }, 'bearer token from an issuer that is not configured');
        return undefined;
      }
      const keys = await resolver.resolve();
      if (!keys) return undefined;
      return verifyWithKeys(token, keys, settings);
    },
  };
}

// ---------------------------------------------------------------- settings

interface Settings {
  fetchTimeoutMs: number;
  discoveryRetryMs: number;
  audience?: string | string[];
  clockToleranceSec: number;
  logger?: OidcLogger;
  fetch: typeof globalThis.fetch;
}

function resolveSettings(opts: OidcTokenVerifierOptions): Settings {
  return {
    fetchTimeoutMs: opts.fetchTimeoutMs ?? 5000,
    discoveryRetryMs: opts.discoveryRetryMs ?? 30_000,
    audience: typeof opts.audience === 'string' ? opts.audience : opts.audience && [...opts.audience],
    clockToleranceSec: opts.clockToleranceSec ?? 5,
    logger: opts.logger,
    fetch: opts.fetch ?? globalThis.fetch,
  };
}

/** Issuer identifiers compare without a trailing slash: configs and IdPs disagree on it. */
export function normalizeIssuer(issuer: string): string {
  return issuer.replace(/\/+$/, '');
}

// ---------------------------------------------------------------- unverified peek

/** The `iss` of a well-formed JWS with an allowed algorithm, or undefined. Nothing is trusted yet. */
function peekIssuer(token: string): string | undefined {
  if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH || !COMPACT_JWS.test(token))
    return undefined;
  try {
    const { alg } = decodeProtectedHeader(token);
    if (!alg || !ALLOWED_JWT_ALGORITHMS.includes(alg)) return undefined;
    const { iss } = decodeJwt(token);
    return typeof iss === 'string' && iss.length > 0 ? iss : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------- discovery

interface IssuerKeys {
  /** The configured identifier, reported back to callers. */
  configured: string;
  /** The identifier as the issuer states it in discovery; tokens must carry exactly this `iss`. */
  issuer: string;
  jwks: JWTVerifyGetKey;
}

interface IssuerResolver {
  resolve(): Promise<IssuerKeys | undefined>;
}

/** Discovers lazily, shares one in-flight attempt, caches success, and backs off after failure. */
function createIssuerResolver(configured: string, settings: Settings): IssuerResolver {
  let keys: IssuerKeys | undefined;
  let inFlight: Promise<IssuerKeys | undefined> | undefined;
  let failedAt = Number.NEGATIVE_INFINITY;

  const attempt = async (): Promise<IssuerKeys | undefined> => {
    try {
      keys = await discoverIssuerKeys(configured, settings);
      return keys;
    } catch (err) {
      failedAt = Date.now();
      settings.logger?.warn({ issuer: configured, reason: describeError(err) }, 'OIDC discovery failed');
      return undefined;
    } finally {
      inFlight = undefined;
    }
  };

  return {
    resolve() {
      if (keys) return Promise.resolve(keys);
      if (inFlight) return inFlight;
      if (Date.now() - failedAt < settings.discoveryRetryMs) return Promise.resolve(undefined);
      inFlight = attempt();
      return inFlight;
    },
  };
}

async function discoverIssuerKeys(configured: string, settings: Settings): Promise<IssuerKeys> {
  const url = `${normalizeIssuer(configured)}/.well-known/openid-configuration`;
  const res = await settings.fetch(url, {
    headers: { accept: 'application/json' },
    signal: AbortSignal.timeout(settings.fetchTimeoutMs),
    redirect: 'error',
  });
  if (!res.ok) throw new Error(`discovery answered HTTP ${res.status}`);
  const metadata = (await res.json()) as { issuer?: unknown; jwks_uri?: unknown };

  // The discovery document must speak for the issuer we were configured with (OIDC Discovery §4.3).
  if (
    typeof metadata.issuer !== 'string' ||
    normalizeIssuer(metadata.issuer) !== normalizeIssuer(configured)
  ) {
    throw new Error('discovery document names a different issuer');
  }
  if (typeof metadata.jwks_uri !== 'string' || !/^https?:\/\//.test(metadata.jwks_uri)) {
    throw new Error('discovery document has no usable jwks_uri');
  }
  const jwks = createRemoteJWKSet(new URL(metadata.jwks_uri), {
    timeoutDuration: settings.fetchTimeoutMs,
    [customFetch]: settings.fetch,
  });
  return { configured, issuer: metadata.issuer, jwks };
}

// ---------------------------------------------------------------- verification

async function verifyWithKeys(
  token: string,
  keys: IssuerKeys,
  settings: Settings,
): Promise<VerifiedToken | undefined> {
  try {
    const { payload } = await jwtVerify(token, keys.jwks, {
      issuer: keys.issuer,
      audience: settings.audience,
      algorithms: [...ALLOWED_JWT_ALGORITHMS],
      clockTolerance: settings.clockToleranceSec,
      requiredClaims: ['sub', 'exp'],
    });
    if (typeof payload.sub !== 'string' || payload.sub.length === 0) return undefined;
    return { sub: payload.sub, issuer: keys.configured, claims: { ...payload } };
  } catch (err) {
    logRejection(err, keys.configured, settings.logger);
    return undefined;
  }
}

// Key-fetch trouble is an operational problem worth a warning; a bad token is routine.
const INFRASTRUCTURE_ERRORS = new Set(['ERR_JWKS_TIMEOUT', 'ERR_JWKS_INVALID', 'ERR_JOSE_GENERIC']);

function logRejection(err: unknown, issuer: string, logger: OidcLogger | undefined): void {
  if (!logger) return;
  const reason = describeError(err);
  const code = (err as { code?: unknown })?.code;
  if (typeof code === 'string' && !INFRASTRUCTURE_ERRORS.has(code) && code.startsWith('ERR_J')) {
    logger.debug({ issuer, reason }, 'bearer token rejected');
  } else {
    logger.warn({ issuer, reason }, 'bearer token could not be checked');
  }
}

/** Error code or class name only: messages of parsing errors could quote token content. */
function describeError(err: unknown): string {
  const code = (err as { code?: unknown })?.code;
  if (typeof code === 'string') return code;
  return err instanceof Error ? `${err.name}: ${err.message}` : 'unknown error';
}
