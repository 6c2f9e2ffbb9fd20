// Minimal types for oidc-provider 8 (it ships none): only what test/support/oidc-provider.ts uses.
// Named *-module.d.ts because a .d.ts beside a same-named .ts is dropped from the program.
declare module 'oidc-provider' {
  type JsonObject = Record<string, unknown>;

  export interface OidcClient {
    readonly clientId: string;
  }

  export interface OidcContext {
    readonly client: OidcClient;
    readonly params: Record<string, string | undefined>;
  }

  export interface TokenContext {
    readonly oidc: OidcContext;
    body: unknown;
  }

  export type GrantTypeHandler = (ctx: TokenContext, next: () => Promise<void>) => Promise<void>;

  export interface ResourceServerInfo {
    scope: string;
    audience?: string;
    accessTokenTTL?: number;
    accessTokenFormat?: 'opaque' | 'jwt';
    jwt?: { sign?: { alg?: string; kid?: string } };
  }

  export interface Account {
    accountId: string;
    claims(use: string, scope: string): JsonObject | Promise<JsonObject>;
  }

  export interface ClientMetadata {
    client_id: string;
    client_secret?: string;
    grant_types?: string[];
    response_types?: string[];
    redirect_uris?: string[];
    token_endpoint_auth_method?: string;
    [key: string]: unknown;
  }

  export interface Adapter {
    upsert(id: string, payload: JsonObject, expiresIn: number): Promise<void>;
    find(id: string): Promise<JsonObject | undefined>;
    findByUid(uid: string): Promise<JsonObject | undefined>;
    findByUserCode(userCode: string): Promise<JsonObject | undefined>;
    consume(id: string): Promise<void>;
    destroy(id: string): Promise<void>;
    revokeByGrantId(grantId: string): Promise<void>;
  }

  export interface Configuration {
    adapter?: (model: string) => Adapter;
    clients?: ClientMetadata[];
    jwks?: { keys: JsonObject[] };
    cookies?: { keys?: string[] };
    scopes?: string[];
    findAccount?: (ctx: unknown, id: string) => Account | undefined | Promise<Account | undefined>;
    extraTokenClaims?: (
      ctx: unknown,
      token: { accountId?: string },
    ) => JsonObject | undefined | Promise<JsonObject | undefined>;
    rotateRefreshToken?: boolean;
    ttl?: Record<string, number>;
    features?: {
      devInteractions?: { enabled: boolean };
      resourceIndicators?: {
        enabled: boolean;
        defaultResource?: (
          ctx: unknown,
          client: OidcClient,
          oneOf?: string[],
        ) => string | string[] | undefined;
        useGrantedResource?: (ctx: unknown, model: unknown) => boolean | Promise<boolean>;
        getResourceServerInfo?: (
          ctx: unknown,
          resourceIndicator: string,
          client: OidcClient,
        ) => ResourceServerInfo | Promise<ResourceServerInfo>;
      };
      [feature: string]: unknown;
    };
    [key: string]: unknown;
  }

  interface TokenBase {
    iat?: number;
    exp?: number;
    scope?: string;
    readonly expiration: number;
    save(): Promise<string>;
  }

  export interface AccessToken extends TokenBase {
    resourceServer?: ResourceServer;
  }

  export interface RefreshToken extends TokenBase {}

  export interface Grant {
    addOIDCScope(scope: string): void;
    addResourceScope(resource: string, scope: string): void;
    save(): Promise<string>;
  }

  export class ResourceServer {
    constructor(identifier: string, info: ResourceServerInfo);
  }

  interface TokenInit {
    accountId: string;
    client: OidcClient;
    grantId: string;
    gty: string;
  }

  class Provider {
    constructor(issuer: string, configuration?: Configuration);
    readonly issuer: string;
    callback(): (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void;
    registerGrantType(
      name: string,
      handler: GrantTypeHandler,
      params?: string | string[] | Set<string>,
    ): void;
    on(event: string, listener: (...args: unknown[]) => void): this;
    readonly AccessToken: new (
      init: TokenInit,
    ) => AccessToken;
    readonly RefreshToken: new (
      init: TokenInit & { scope?: string; resource?: string },
    ) => RefreshToken;
    readonly Grant: new (init: {
      accountId: string;
      clientId: string;
    }) => Grant;
    readonly ResourceServer: typeof ResourceServer;
  }

  export const errors: {
    InvalidTarget: new (description?: string) => Error;
    InvalidRequest: new (description?: string) => Error;
    InvalidScope: new (description?: string, scope?: string) => Error;
  };

  export { Provider };
  export default Provider;
}
