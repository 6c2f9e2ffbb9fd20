// The service owner's refresh token (`environment.secrets.refresh_token`, its place and
// forms in core/fdl/owner-token.ts): taken out of the definition when a service is created
// or updated, kept sealed, read only by the manager to mint access tokens for delegation and
// for the outbox's calls, and handed to workers sealed (opened right before it is sent).
// Never returned, logged, or given to a job.

import type { Principal } from '../../core/auth/principal.ts';
import { fail } from '../../core/errors.ts';
import {
  isSealedOwnerToken,
  openOwnerToken,
  openOwnerTokenIn,
  plainOwnerToken,
  sealedForm,
  sealOwnerToken,
  stripOwnerToken,
} from '../../core/fdl/owner-token.ts';
import { MASK } from '../../core/fdl/secrets.ts';
import type { Service } from '../../core/fdl/service.ts';
import type { AccessTokenSource, PeerTarget, SecretBox, SettingsStore } from '../../core/ports.ts';
import type { ServiceHooks } from '../services.ts';

const KEY = (service: string) => `refresh_token:${service}`;

interface Stored {
  issuer: string | undefined;
  sealed: string;
}

export interface OidcClientConfig {
  clientId: string;
  clientSecret: string | undefined;
  resource: string | undefined;
}

/** How long a refresh token the issuer refused for good is not sent to it again. */
const REFUSED_RETRY_MS = 5 * 60_000;

export class RefreshTokens {
  /**
   * Tokens the issuer refused with a permanent error (invalid_grant …), by service: the
   * status cache and the rescheduler ask every second or two, and re-sending a dead token
   * each time only hammers the issuer. A new token (create, PUT, rotation) is tried at once.
   */
  private readonly refused = new Map<string, { sealed: string; until: number; error: Error }>();

  constructor(
    private readonly d: {
      settings: SettingsStore;
      box: SecretBox;
      issuers: readonly string[];
      client: OidcClientConfig | undefined;
      cache: AccessTokenSource;
    },
  ) {}

  /** Takes the token out of the definition (before it is stored) and keeps it sealed. */
  private async takeOut(service: Service, principal: Principal): Promise<void> {
    const token = stripOwnerToken(service);
    if (!token || token === MASK) return;
    let plain = token;
    if (isSealedOwnerToken(token)) {
      try {
        plain = openOwnerToken(this.d.box, token);
      } catch {
        fail(
          'VALIDATION_FAILED',
          'environment.secrets.refresh_token: a value sealed by another manager cannot be used here',
        );
      }
    }
    const issuer = principal.kind === 'user' ? principal.issuer : this.d.issuers[0];
    await this.store(service.name, { issuer, sealed: this.d.box.seal(plain) });
  }

  // Never cached in memory: another manager instance (or a delete and a re-create by someone else)
  // may change it at any time, and a stale token would act for the wrong owner. Callers
  // that ask often (the status cache's rounds) ask once per service per round instead.
  private async store(service: string, value: Stored | undefined): Promise<void> {
    await this.d.settings.setSetting(KEY(service), value ? JSON.stringify(value) : '');
  }

  hooks(): ServiceHooks {
    return {
      beforeCreate: (s, p) => this.takeOut(s, p),
      beforeUpdate: (s, _prev, p) => this.takeOut(s, p),
      afterDelete: async (s) => {
        this.refused.delete(s.name);
        await this.store(s.name, undefined);
      },
    };
  }

  private async stored(service: string): Promise<Stored | undefined> {
    const raw = await this.d.settings.getSetting(KEY(service));
    return raw ? (JSON.parse(raw) as Stored) : undefined;
  }

  /**
   * The token for the workers' definitions, sealed as they wait in the outbox: the one this
   * request carries in clear, else (with `orStored`) the one kept for the service.
   */
  async forWorkers(service: Service, opts: { orStored: boolean }): Promise<string | undefined> {
    const plain = plainOwnerToken(service);
    if (plain) return sealOwnerToken(this.d.box, plain);
    if (!opts.orStored) return undefined;
    const s = await this.stored(service.name);
    return s ? sealedForm(s.sealed) : undefined;
  }

  /** A definition about to be sent to a member: the token in it opened (a copy). */
  openForSending(payload: Record<string, unknown>): Record<string, unknown> {
    return openOwnerTokenIn(this.d.box, payload);
  }

  /**
   * A kept target made ready to call: "the service owner" becomes the owner's access token,
   * minted now (or no credentials when none can be minted: the member then refuses).
   */
  async resolveTarget(t: PeerTarget): Promise<PeerTarget> {
    if (t.auth.kind !== 'service-owner') return t;
    const token = await this.accessToken(t.auth.service).catch(() => undefined);
    return { ...t, auth: token ? { kind: 'bearer', token } : { kind: 'none' } };
  }

  /** An access token for the owner of `service`, minted from its refresh token (cached). */
  async accessToken(service: string): Promise<string | undefined> {
    const client = this.d.client;
    if (!client) return undefined;
    const s = await this.stored(service);
    if (!s?.issuer) return undefined;
    const refused = this.refused.get(service);
    if (refused && refused.sealed === s.sealed && refused.until > Date.now()) throw refused.error;
    const refreshToken = this.d.box.open(s.sealed);
    const { accessToken } = await this.d.cache
      .getAccessToken(
        {
          issuer: s.issuer,
          clientId: client.clientId,
          clientSecret: client.clientSecret ?? '',
          refreshToken,
          resource: client.resource,
        },
        {
          // A rotated refresh token replaces the one exchanged — unless that was replaced
          // meanwhile (a PUT with a new token): then the newer one stays.
          onRefreshTokenRotated: async (rotated) => {
            if ((await this.stored(service))?.sealed !== s.sealed) return;
            await this.store(service, { issuer: s.issuer, sealed: this.d.box.seal(rotated) });
          },
        },
      )
      .catch((e: unknown) => {
        if ((e as { retryable?: unknown }).retryable === false) {
          this.refused.set(service, {
            sealed: s.sealed,
            until: Date.now() + REFUSED_RETRY_MS,
            error: e as Error,
          });
        }
        throw e;
      });
    this.refused.delete(service);
    return accessToken;
  }
}
