// A real OpenID provider (oidc-provider 8) on loopback http, for tests that need genuine
// discovery, JWKS, JWT access tokens and refresh-token exchange. Each call starts an
// independent provider, so a test can run several (e.g. a trusted and a foreign issuer).
//
// Tokens are minted without a browser through a test-only grant type that the fixture
// registers on the provider and calls over HTTP with client authentication, so the
// refresh tokens it hands out are ordinary ones the standard refresh_token grant accepts.
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { type Configuration, errors, type TokenContext } from 'oidc-provider';

/** The custom grant that mints tokens for any subject; only this fixture's client may use it. */
export const MINT_GRANT_TYPE = 'urn:flotilla:test:mint';

/** Resource indicator (and so the JWT `aud`) of every access token the fixture issues. */
export const TEST_RESOURCE = 'urn:flotilla:test:api';

const RESOURCE_SCOPE = 'api';
const DEFAULT_SCOPE = `openid offline_access ${RESOURCE_SCOPE}`;
const LONG_TTL_SECONDS = 24 * 60 * 60;

export interface StartOidcProviderOptions {
  /** Lifetime of access tokens in seconds (default 300). */
  accessTokenTtl?: number;
  /** When true, every refresh issues a new refresh token and consumes the old one (default false). */
  rotateRefreshTokens?: boolean;
}

export interface MintOptions {
  /** Seconds until the access token expires; 0 or negative gives an already-expired token. */
  expiresIn?: number;
  /** Space-separated scopes (default "openid offline_access api"); without offline_access no refresh token. */
  scope?: string;
  /** Extra claims put into this subject's access tokens, now and after every refresh. */
  claims?: Record<string, unknown>;
}

export interface MintedTokens {
  accessToken: string;
  /** Present when the scope includes offline_access. */
  refreshToken?: string;
  expiresIn: number;
  scope?: string;
}

export interface OidcProviderFixture {
  /** e.g. http://127.0.0.1:43210 (no trailing slash); discovery lives under it. */
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** Resource indicator / audience of the access tokens. */
  readonly resource: string;
  readonly tokenEndpoint: string;
  mintTokens(sub: string, opts?: MintOptions): Promise<MintedTokens>;
  stop(): Promise<void>;
}

export async function startOidcProvider(opts: StartOidcProviderOptions = {}): Promise<OidcProviderFixture> {
  const server = createServer();
  const port = await listenOnLoopback(server);
  const issuer = `http://127.0.0.1:${port}`;
  const clientId = `flotilla-test-${randomUUID()}`;
  const clientSecret = randomBytes(32).toString('base64url');
  const extraClaims = new Map<string, Record<string, unknown>>();
  const store = new Map<string, StoredPayload>();

  const provider = new Provider(
    issuer,
    await providerConfiguration({ clientId, clientSecret, extraClaims, store, ...opts }),
  );
  provider.registerGrantType(MINT_GRANT_TYPE, mintGrantHandler(provider), ['subject', 'ttl', 'scope']);
  server.on('request', provider.callback());

  const tokenEndpoint = `${issuer}/token`;
  return {
    issuer,
    clientId,
    clientSecret,
    resource: TEST_RESOURCE,
    tokenEndpoint,
    async mintTokens(sub, mintOpts = {}) {
      if (mintOpts.claims) extraClaims.set(sub, mintOpts.claims);
      return requestMint({ tokenEndpoint, clientId, clientSecret, sub, ...mintOpts });
    },
    stop: () => closeServer(server),
  };
}

// ---------------------------------------------------------------- provider set-up

interface ConfigInput extends StartOidcProviderOptions {
  clientId: string;
  clientSecret: string;
  extraClaims: Map<string, Record<string, unknown>>;
  store: Map<string, StoredPayload>;
}

async function providerConfiguration(input: ConfigInput): Promise<Configuration> {
  const accessTokenTtl = input.accessTokenTtl ?? 300;
  return {
    // Per-fixture storage: the built-in memory adapter is one process-wide LRU shared by all providers.
    adapter: (model: string) => new MapAdapter(input.store, model),
    clients: [
      {
        client_id: input.clientId,
        client_secret: input.clientSecret,
        grant_types: ['refresh_token', MINT_GRANT_TYPE],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    // Own signing key and cookie keys: the provider's built-in development ones print warnings.
    jwks: { keys: [await signingJwk()] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    scopes: ['openid', 'offline_access', RESOURCE_SCOPE],
    findAccount: (_ctx, id) => ({ accountId: id, claims: () => ({ sub: id }) }),
    extraTokenClaims: (_ctx, token) => (token.accountId ? input.extraClaims.get(token.accountId) : undefined),
    rotateRefreshToken: input.rotateRefreshTokens ?? false,
    ttl: {
      AccessToken: accessTokenTtl,
      IdToken: accessTokenTtl,
      RefreshToken: LONG_TTL_SECONDS,
      Grant: LONG_TTL_SECONDS,
      Session: LONG_TTL_SECONDS,
      Interaction: 600,
    },
    features: {
      devInteractions: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => TEST_RESOURCE,
        // Refreshes of an openid-scoped token still yield a JWT for the API, not a userinfo token.
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resource) => {
          if (resource !== TEST_RESOURCE) throw new errors.InvalidTarget();
          return {
            scope: RESOURCE_SCOPE,
            audience: TEST_RESOURCE,
            accessTokenTTL: accessTokenTtl,
            accessTokenFormat: 'jwt',
          };
        },
      },
    },
  };
}

async function signingJwk(): Promise<Record<string, unknown>> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  return { ...(await exportJWK(privateKey)), kid: randomUUID(), alg: 'RS256', use: 'sig' };
}

/**
 * Issues a grant, a JWT access token and (with offline_access) a refresh token for the
 * `subject` parameter, the way the authorization_code grant would after a login.
 */
function mintGrantHandler(provider: Provider) {
  return async (ctx: TokenContext, next: () => Promise<void>): Promise<void> => {
    const { client, params } = ctx.oidc;
    const sub = params.subject;
    if (!sub) throw new errors.InvalidRequest('missing subject');
    const scope = params.scope ?? DEFAULT_SCOPE;
    const scopes = new Set(scope.split(' '));

    const grant = new provider.Grant({ accountId: sub, clientId: client.clientId });
    grant.addOIDCScope([...scopes].filter((s) => s !== RESOURCE_SCOPE).join(' '));
    grant.addResourceScope(TEST_RESOURCE, RESOURCE_SCOPE);
    const grantId = await grant.save();
    const init = { accountId: sub, client, grantId, gty: MINT_GRANT_TYPE };

    const at = new provider.AccessToken(init);
    at.resourceServer = new provider.ResourceServer(TEST_RESOURCE, {
      scope: RESOURCE_SCOPE,
      audience: TEST_RESOURCE,
      accessTokenFormat: 'jwt',
    });
    at.scope = scopes.has(RESOURCE_SCOPE) ? RESOURCE_SCOPE : undefined;
    const expiresIn = params.ttl === undefined ? at.expiration : Number(params.ttl);
    backdate(at, expiresIn);
    const accessToken = await at.save();

    let refreshToken: string | undefined;
    if (scopes.has('offline_access')) {
      refreshToken = await new provider.RefreshToken({ ...init, scope, resource: TEST_RESOURCE }).save();
    }

    ctx.body = {
      access_token: accessToken,
      token_type: 'Bearer',
      expires_in: expiresIn,
      refresh_token: refreshToken,
      scope,
    };
    await next();
  };
}

/** Sets iat/exp so the token lives `expiresIn` seconds from now; negative means already expired. */
function backdate(token: { iat?: number; exp?: number }, expiresIn: number): void {
  const now = Math.floor(Date.now() / 1000);
  token.exp = now + expiresIn;
  token.iat = Math.min(now, token.exp - 60);
}

type StoredPayload = Record<string, unknown> & { grantId?: string; consumed?: number };

/**
 * The provider's storage contract (models are keyed by name and id; a grant's tokens can be
 * revoked together, which refresh-token reuse detection relies on). Expiry is checked by
 * the provider itself from `exp`, so entries simply live as long as the fixture.
 */
class MapAdapter {
  constructor(
    private readonly store: Map<string, StoredPayload>,
    private readonly model: string,
  ) {}

  async upsert(id: string, payload: StoredPayload): Promise<void> {
    this.store.set(this.key(id), payload);
    if (payload.grantId) {
      const members = (this.store.get(grantKey(payload.grantId))?.members as string[] | undefined) ?? [];
      this.store.set(grantKey(payload.grantId), { members: [...members, this.key(id)] });
    }
  }

  async find(id: string): Promise<StoredPayload | undefined> {
    return this.store.get(this.key(id));
  }

  async findByUid(): Promise<undefined> {
    return undefined; // sessions are never created: there is no browser login
  }

  async findByUserCode(): Promise<undefined> {
    return undefined; // device flow is not enabled
  }

  async consume(id: string): Promise<void> {
    const payload = this.store.get(this.key(id));
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id: string): Promise<void> {
    this.store.delete(this.key(id));
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    const members = (this.store.get(grantKey(grantId))?.members as string[] | undefined) ?? [];
    for (const key of members) this.store.delete(key);
    this.store.delete(grantKey(grantId));
  }

  private key(id: string): string {
    return `${this.model}:${id}`;
  }
}

const grantKey = (grantId: string) => `grant-index:${grantId}`;

// ---------------------------------------------------------------- HTTP

interface MintRequest extends MintOptions {
  tokenEndpoint: string;
  clientId: string;
  clientSecret: string;
  sub: string;
}

async function requestMint(req: MintRequest): Promise<MintedTokens> {
  const form = new URLSearchParams({ grant_type: MINT_GRANT_TYPE, subject: req.sub });
  if (req.scope !== undefined) form.set('scope', req.scope);
  if (req.expiresIn !== undefined) form.set('ttl', String(Math.trunc(req.expiresIn)));
  const res = await fetch(req.tokenEndpoint, {
    method: 'POST',
    headers: { authorization: basicAuth(req.clientId, req.clientSecret) },
    body: form,
  });
  const body = (await res.json()) as Record<string, unknown>;
  if (!res.ok)
    throw new Error(
      `mint failed: HTTP ${res.status} ${String(body.error)}: ${String(body.error_description)}`,
    );
  return {
    accessToken: String(body.access_token),
    refreshToken: typeof body.refresh_token === 'string' ? body.refresh_token : undefined,
    expiresIn: Number(body.expires_in),
    scope: typeof body.scope === 'string' ? body.scope : undefined,
  };
}

/** RFC 6749 §2.3.1: id and secret are form-encoded before the base64 step. */
function basicAuth(id: string, secret: string): string {
  const encode = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${encode(id)}:${encode(secret)}`).toString('base64')}`;
}

function listenOnLoopback(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    // Keep-alive sockets from fetch would otherwise hold close() open.
    server.closeAllConnections();
  });
}
