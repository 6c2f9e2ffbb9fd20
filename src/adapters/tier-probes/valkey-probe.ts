// The Valkey/Redis probe: AUTH (when the URL has a password), SELECT (when it names a
// database), PING, INFO server and the eviction policy, pipelined over one connection.
import { describeValkeyUrl } from '../../core/connection-urls.ts';
import type { ValkeyObservation } from '../../core/ports.ts';
import { reachFailure } from './probe-support.ts';
import { RespError, type RespValue, respRoundTrip } from './resp.ts';

export const observeValkey = async (url: string, opts: { timeoutMs: number }): Promise<ValkeyObservation> => {
  const t = describeValkeyUrl(url);
  const commands: string[][] = [];
  if (t.password !== undefined) commands.push(t.user ? ['AUTH', t.user, t.password] : ['AUTH', t.password]);
  if (t.db) commands.push(['SELECT', String(t.db)]);
  commands.push(['PING'], ['INFO', 'server'], ['CONFIG', 'GET', 'maxmemory-policy']);
  const started = Date.now();
  let replies: RespValue[];
  try {
    replies = await respRoundTrip(
      { host: t.host, port: t.port, tls: t.tls, servername: t.tls ? t.host : undefined },
      commands,
      opts.timeoutMs,
    );
  } catch (e) {
    return { reached: false, failure: reachFailure(e, t.host, opts.timeoutMs) };
  }
  const latencyMs = Date.now() - started;
  let i = 0;
  let auth: Extract<ValkeyObservation, { reached: true }>['auth'] = 'not-sent';
  if (t.password !== undefined) {
    const reply = replies[i++];
    if (!(reply instanceof RespError)) auth = 'accepted';
    else if (/without any password configured|no password is set/i.test(reply.message)) auth = 'not-needed';
    else auth = { refused: reply.message };
  }
  let database: Extract<ValkeyObservation, { reached: true }>['database'] = 'default';
  if (t.db) database = replies[i++] instanceof RespError ? 'unavailable' : 'selected';
  const pingReply = replies[i++];
  const ping: Extract<ValkeyObservation, { reached: true }>['ping'] =
    pingReply instanceof RespError
      ? /NOAUTH|WRONGPASS|Authentication required/i.test(pingReply.message)
        ? 'needs-auth'
        : { error: pingReply.message }
      : pingReply === 'PONG'
        ? 'pong'
        : 'unexpected';
  const info = replies[i++];
  const infoText = typeof info === 'string' ? info : '';
  const valkeyVersion = /valkey_version:([^\r\n]+)/.exec(infoText)?.[1];
  const redisVersion = /redis_version:([^\r\n]+)/.exec(infoText)?.[1];
  const product = valkeyVersion
    ? `Valkey ${valkeyVersion}`
    : redisVersion
      ? `Redis ${redisVersion}`
      : undefined;
  const policy = replies[i++];
  const maxmemoryPolicy =
    Array.isArray(policy) && typeof policy[1] === 'string' ? (policy[1] as string) : undefined;
  return { reached: true, latencyMs, auth, database, ping, product, maxmemoryPolicy };
};
