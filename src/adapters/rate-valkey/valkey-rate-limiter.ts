// RateLimiter on Valkey/Redis (federated tier): every instance of a cluster counts in the same
// keys, so a grant's limit holds across replicas. One Lua script does the core's GCRA step
// (core/trust/rate.ts) atomically on the server; the contract suite runs both adapters.
import { Redis } from 'ioredis';
import type { RateLimiter } from '../../core/ports.ts';
import type { RateDecision } from '../../core/trust/rate.ts';

// KEYS[1] the grant's key; ARGV now (ms), rate per minute. Returns {allowed, retry_after_ms}.
const GCRA = `
local now = tonumber(ARGV[1])
local per = tonumber(ARGV[2])
local interval = 60000 / per
local burst = per * interval
local stored = tonumber(redis.call('GET', KEYS[1]))
local tat = now
if stored and stored > now then tat = stored end
local nxt = tat + interval
local allow_at = nxt - burst
if now < allow_at then return {0, string.format('%.3f', allow_at - now)} end
redis.call('SET', KEYS[1], string.format('%.3f', nxt), 'PX', math.ceil(nxt - now))
return {1, '0'}
`;

export interface ValkeyRateLimiterOptions {
  /** redis://, rediss://, valkey:// or valkeys://. */
  url: string;
  /** Key prefix shared by the replicas of one cluster. */
  prefix: string;
  /** Cap on each call (ms, default 1000): past it the caller decides (the peer server lets
   * the request in). */
  timeoutMs?: number;
}

type WithGcra = Redis & { gcra(key: string, now: number, per: number): Promise<[number, string]> };

export const createValkeyRateLimiter = (o: ValkeyRateLimiterOptions): RateLimiter => {
  const client = new Redis(o.url.replace(/^valkey(s?):/, 'redis$1:'), {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    commandTimeout: o.timeoutMs ?? 1000,
    enableOfflineQueue: true,
  }) as WithGcra;
  // Connection errors surface on each call; the client reconnects in the background.
  client.on('error', () => {});
  // Once connected, a lost connection fails calls at once instead of queueing them for the
  // command timeout: the peer channel must not slow down while Valkey is away.
  let connected = false;
  client.on('ready', () => {
    connected = true;
  });
  client.defineCommand('gcra', { numberOfKeys: 1, lua: GCRA });
  return {
    async take(key: string, perMinute: number, now: number): Promise<RateDecision> {
      if (connected && client.status !== 'ready') throw new Error('Valkey is not connected');
      const [allowed, retry] = await client.gcra(`${o.prefix}:rate:${key}`, now, perMinute);
      return Number(allowed) === 1 ? { ok: true } : { ok: false, retryAfterMs: Number(retry) };
    },
    async close() {
      client.disconnect();
    },
  };
};
