// The stored refresh token is read by the status cache for every replica cluster on every
// round. These tests pin down how often that reaches the store, and that a change made here
// is seen at once despite the reuse of recent reads.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  AccessTokenCache,
  type RefreshTokenExchangeRequest,
} from '../../src/adapters/oidc/token-exchange.ts';
import { createSecretBox } from '../../src/adapters/secret-box/aes-gcm-box.ts';
import { type OidcClientConfig, RefreshTokens } from '../../src/app/credentials/refresh-tokens.ts';
import { createDelegationCredentials } from '../../src/app/federation/delegation-credentials.ts';
import type { Principal } from '../../src/core/auth/principal.ts';
import type { Service } from '../../src/core/fdl/service.ts';
import type { SettingsStore } from '../../src/core/ports.ts';
import { ReplicaIndex } from '../../src/main/delegation-wiring.ts';

/** Settings in a map, counting reads (the real stores are covered by the store contract suite). */
const countingSettings = () => {
  const map = new Map<string, string>();
  const counts = { reads: 0 };
  const store: SettingsStore = {
    async getSetting(key) {
      counts.reads++;
      return map.get(key) || undefined;
    },
    async setSetting(key, value) {
      map.set(key, value);
    },
    async setSettingIfAbsent(key, value) {
      if (!map.has(key)) map.set(key, value);
      return map.get(key) as string;
    },
  };
  return { store, counts, map };
};

const ISSUER = 'https://issuer.example';
const alice: Principal = { kind: 'user', sub: 'alice', issuer: ISSUER };
const client: OidcClientConfig = { clientId: 'flotilla', clientSecret: 's3cret', resource: undefined };

const setup = (
  opts: { client?: OidcClientConfig; rotate?: boolean; lifetimeMs?: number; gate?: Promise<void> } = {},
) => {
  const settings = countingSettings();
  const exchanged: string[] = [];
  let n = 0;
  const cache = new AccessTokenCache({
    exchange: async (req: RefreshTokenExchangeRequest) => {
      exchanged.push(req.refreshToken);
      n++;
      if (n === 1 && opts.gate) await opts.gate;
      return {
        accessToken: `at-${n}`,
        expiresAt: new Date(Date.now() + (opts.lifetimeMs ?? 3_600_000)),
        ...(opts.rotate ? { refreshToken: `rt-rotated-${n}` } : {}),
      };
    },
  });
  const tokens = new RefreshTokens({
    settings: settings.store,
    box: createSecretBox(randomBytes(32)),
    issuers: [ISSUER],
    client: opts.client,
    cache,
  });
  return { tokens, settings, exchanged };
};

const service = (name: string, refreshToken?: string): Service =>
  ({
    name,
    script: 'true',
    environment: refreshToken ? { secrets: { refresh_token: refreshToken } } : {},
  }) as unknown as Service;

describe('refresh tokens: reads of the stored token', () => {
  it('never reads the store when no OIDC client is configured (Basic federations)', async () => {
    const { tokens, settings } = setup();
    for (let i = 0; i < 100; i++) expect(await tokens.accessToken(`svc-${i % 10}`)).toBeUndefined();
    expect(settings.counts.reads).toBe(0);
  });

  it('one status round reads each service once, however many clusters it lists', async () => {
    const { tokens, settings } = setup({ client });
    await tokens.hooks().beforeCreate?.(service('with-token', 'rt-1'), alice);
    const clusters = Object.fromEntries(
      ['c1', 'c2', 'c3', 'c4', 'c5'].map((id) => [id, { endpoint: `http://${id}.example` }]),
    );
    const replicas = Object.keys(clusters).map((id) => ({
      type: 'oscar',
      cluster_id: id,
      service_name: 'x',
    }));
    // Ten services without a token whose clusters have no Basic credentials either (workers
    // in an OIDC federation): no target for any of them, asked for every service.
    const list = [
      ...Array.from({ length: 10 }, (_, i) => ({ ...service(`svc-${i}`), clusters, replicas })),
      {
        ...service('with-token'),
        clusters: { c6: { endpoint: 'http://c6.example' } },
        replicas: [{ type: 'oscar', cluster_id: 'c6', service_name: 'x' }],
      },
    ];
    const credentials = createDelegationCredentials({ refreshTokens: tokens, logger: { warn: () => {} } });
    const reads = settings.counts.reads;
    const index = new ReplicaIndex({
      services: { list: async () => list as unknown as Service[] },
      credentials,
    });
    const targets = [...(await index.collect()).values()];
    expect(settings.counts.reads - reads).toBe(11);
    expect(targets.map((t) => t.clusterId)).toEqual(['c6']);
    expect(targets[0]?.auth).toEqual({ kind: 'bearer', token: 'at-1' });
  });

  it('sees a delete and a replacement at once', async () => {
    const { tokens, exchanged } = setup({ client });
    await tokens.hooks().beforeCreate?.(service('svc', 'rt-old'), alice);
    expect(await tokens.accessToken('svc')).toBeDefined();
    await tokens.hooks().afterDelete?.(service('svc'), alice, { cascade: true });
    expect(await tokens.accessToken('svc')).toBeUndefined();
    await tokens.hooks().beforeUpdate?.(service('svc', 'rt-new'), service('svc'), alice);
    expect(await tokens.accessToken('svc')).toBeDefined();
    expect(exchanged).toEqual(['rt-old', 'rt-new']);
  });

  it('stores a rotated refresh token sealed and sends the rotated one next time', async () => {
    // Access tokens that live shorter than the renewal margin: every call exchanges again.
    const { tokens, settings, exchanged } = setup({ client, rotate: true, lifetimeMs: 1 });
    await tokens.hooks().beforeCreate?.(service('svc', 'rt-first'), alice);
    expect(await tokens.accessToken('svc')).toBe('at-1');
    expect(await tokens.accessToken('svc')).toBe('at-2');
    expect(exchanged).toEqual(['rt-first', 'rt-rotated-1']);
    const stored = settings.map.get('refresh_token:svc') as string;
    expect(stored).not.toContain('rt-rotated');
    expect(stored).not.toContain('rt-first');
  });

  it('a rotation finishing after a PUT with a new token keeps the new token', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const { tokens, exchanged } = setup({ client, rotate: true, lifetimeMs: 1, gate });
    await tokens.hooks().beforeCreate?.(service('svc', 'rt-old'), alice);
    // The exchange of rt-old is in flight while the owner PUTs rt-new; then the issuer
    // answers with a rotated rt-old, which must not replace rt-new.
    const inFlight = tokens.accessToken('svc');
    await new Promise((r) => setTimeout(r, 5));
    await tokens.hooks().beforeUpdate?.(service('svc', 'rt-new'), service('svc'), alice);
    release();
    await inFlight;
    await tokens.accessToken('svc');
    expect(exchanged).toEqual(['rt-old', 'rt-new']);
  });
});
