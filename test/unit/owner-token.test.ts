// The owner's refresh token inside a definition (core/fdl/owner-token.ts) and its journey to
// the workers through RefreshTokens: in clear only in the request and in the call that
// carries it; sealed in the outbox; never in a worker's or a detached member's definition
// unless put there on purpose.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createSecretBox } from '../../src/adapters/secret-box/aes-gcm-box.ts';
import { RefreshTokens } from '../../src/app/credentials/refresh-tokens.ts';
import {
  attachOwnerToken,
  isOwnerTokenKey,
  isSealedOwnerToken,
  openOwnerToken,
  openOwnerTokenIn,
  ownerTokenOf,
  plainOwnerToken,
  sealOwnerToken,
  stripOwnerToken,
  withoutOwnerToken,
} from '../../src/core/fdl/owner-token.ts';
import type { Service } from '../../src/core/fdl/service.ts';
import type { SettingsStore } from '../../src/core/ports.ts';

const box = createSecretBox(randomBytes(32));
const def = (token?: string) =>
  ({
    name: 'svc',
    environment: {
      variables: {},
      secrets: { OTHER: 'x', ...(token === undefined ? {} : { refresh_token: token }) },
    },
  }) as unknown as Service;

const memorySettings = (): SettingsStore => {
  const map = new Map<string, string>();
  return {
    getSetting: async (k) => map.get(k) || undefined,
    setSetting: async (k, v) => void map.set(k, v),
    setSettingIfAbsent: async (k, v) => {
      if (!map.has(k)) map.set(k, v);
      return map.get(k) as string;
    },
  };
};

describe('owner token in a definition', () => {
  it('is in clear only when neither masked nor sealed', () => {
    expect(plainOwnerToken(def('rt-1'))).toBe('rt-1');
    expect(plainOwnerToken(def('***'))).toBeUndefined();
    expect(plainOwnerToken(def(sealOwnerToken(box, 'rt-1')))).toBeUndefined();
    expect(plainOwnerToken(def())).toBeUndefined();
    expect(isOwnerTokenKey('refresh_token')).toBe(true);
    expect(isOwnerTokenKey('OTHER')).toBe(false);
  });

  it('attaches, strips and copies without it, leaving the other secrets', () => {
    const d = def();
    attachOwnerToken(d, 'v');
    expect(ownerTokenOf(d)).toBe('v');
    expect(withoutOwnerToken(d.environment.secrets)).toEqual({ OTHER: 'x' });
    expect(ownerTokenOf(d)).toBe('v');
    expect(stripOwnerToken(d)).toBe('v');
    expect(d.environment.secrets).toEqual({ OTHER: 'x' });
    expect(stripOwnerToken(d)).toBeUndefined();
    const bare = { name: 'n' } as unknown as Service;
    attachOwnerToken(bare, 'w');
    expect(bare.environment).toEqual({ variables: {}, secrets: { refresh_token: 'w' } });
  });

  it('sealed for the outbox, opened only in the copy that is sent', () => {
    const sealed = sealOwnerToken(box, 'rt-secret');
    expect(isSealedOwnerToken(sealed)).toBe(true);
    expect(sealed).not.toContain('rt-secret');
    expect(openOwnerToken(box, sealed)).toBe('rt-secret');
    expect(openOwnerToken(box, 'clear')).toBe('clear');
    const kept = def(sealed) as unknown as Record<string, unknown>;
    const sent = openOwnerTokenIn(box, kept);
    expect(ownerTokenOf(sent)).toBe('rt-secret');
    expect(ownerTokenOf(kept)).toBe(sealed);
    const none = def() as unknown as Record<string, unknown>;
    expect(openOwnerTokenIn(box, none)).toBe(none);
    // Sealed under another key: refused, naming neither value nor key.
    const other = sealOwnerToken(createSecretBox(randomBytes(32)), 'rt-secret');
    expect(() => openOwnerToken(box, other)).toThrow(/could not be opened/);
  });
});

describe('RefreshTokens hands the workers their copy', () => {
  const tokens = () =>
    new RefreshTokens({
      settings: memorySettings(),
      box,
      issuers: ['https://issuer'],
      client: undefined,
      cache: { getAccessToken: async () => ({ accessToken: 'at', expiresAt: new Date() }) },
    });

  it("the request's token sealed, else (on change) the kept one; opened only for sending", async () => {
    const t = tokens();
    const sealed = await t.forWorkers(def('rt-new'), { orStored: false });
    expect(sealed && isSealedOwnerToken(sealed)).toBe(true);
    expect(ownerTokenOf(t.openForSending(def(sealed) as unknown as Record<string, unknown>))).toBe('rt-new');
    expect(await t.forWorkers(def(), { orStored: false })).toBeUndefined();
    expect(await t.forWorkers(def('***'), { orStored: true })).toBeUndefined();
    // Kept by the create hook, then handed on by a later change that sends "***".
    const stored = def('rt-kept');
    await t.hooks().beforeCreate!(stored, { kind: 'admin' } as never);
    expect(ownerTokenOf(stored)).toBeUndefined();
    const again = await t.forWorkers(def('***'), { orStored: true });
    expect(ownerTokenOf(t.openForSending(def(again) as unknown as Record<string, unknown>))).toBe('rt-kept');
  });

  it('a target naming the owner gets no credentials when none can be minted', async () => {
    const t = tokens();
    const base = { clusterId: 'b', endpoint: 'http://b', sslVerify: true };
    expect(await t.resolveTarget({ ...base, auth: { kind: 'service-owner', service: 'svc' } })).toEqual({
      ...base,
      auth: { kind: 'none' },
    });
    const basic = { ...base, auth: { kind: 'basic' as const, user: 'u', password: 'p' } };
    expect(await t.resolveTarget(basic)).toBe(basic);
  });
});
