// Small glue between delegation parts that the composition root needs twice.

import type { RefreshTokens } from '../app/credentials/refresh-tokens.ts';
import { REFRESH_TOKEN } from '../app/credentials/refresh-tokens.ts';
import type { DelegationCredentials } from '../app/federation/delegator.ts';
import { replicasOf } from '../app/federation/delegator.ts';
import type { ServiceCache } from '../app/service-cache.ts';
import type { PeerTarget, SettingsStore } from '../core/ports.ts';
import type { SharedEntry } from '../worker/status-cache.ts';

/** Every cluster some local service may delegate to, with how to reach it (first service wins). */
export const replicaTargets = async (
  services: ServiceCache,
  credentials: DelegationCredentials,
): Promise<Map<string, PeerTarget>> => {
  const out = new Map<string, PeerTarget>();
  const round = new Map<string, Promise<string | undefined>>();
  for (const service of await services.list()) {
    for (const r of replicasOf(service)) {
      if (r.type !== 'oscar' || !r.cluster_id || out.has(r.cluster_id)) continue;
      const target = await credentials.targetFor(r.cluster_id, service, round).catch(() => undefined);
      if (target) out.set(r.cluster_id, target);
    }
  }
  return out;
};

/** Opens a refresh token sealed inside an outbox payload, right before it is sent. */
export const openTransferSecrets = (
  payload: Record<string, unknown>,
  tokens: RefreshTokens,
): Record<string, unknown> => {
  const secrets = (payload.environment as { secrets?: Record<string, string> } | undefined)?.secrets;
  const sealed = secrets?.[REFRESH_TOKEN];
  if (!secrets || !sealed) return payload;
  const copy = structuredClone(payload);
  (copy.environment as { secrets: Record<string, string> }).secrets[REFRESH_TOKEN] =
    tokens.openTransfer(sealed);
  return copy;
};

/** The status snapshots the leader replica publishes for the others, in the shared store. */
export const sharedStatus = (settings: SettingsStore) => ({
  publish: (entries: SharedEntry[]) => settings.setSetting('status-cache', JSON.stringify(entries)),
  load: async (): Promise<SharedEntry[]> => {
    const raw = await settings.getSetting('status-cache');
    return raw ? (JSON.parse(raw) as SharedEntry[]) : [];
  },
});
