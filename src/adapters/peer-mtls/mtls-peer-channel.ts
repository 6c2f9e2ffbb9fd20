// The PeerChannel port with undici: enrollment and the CRL over B's public URL, requests over
// mTLS with the peer's certificate, B's CA as the only root. One keep-alive Agent per peer and
// certificate serial, so a renewed certificate gets fresh connections while old calls finish.
// The federation PeerClient over the channel (mtls-peer-client.ts) shares these agents.
import { Agent, request } from 'undici';
import { FlotillaError } from '../../core/errors.ts';
import type { PeerRecord, SecretBox } from '../../core/ports.ts';
import type { PeerChannel } from '../../core/trust/trust-ports.ts';

const MAX_BODY = 1024 * 1024;

const readJson = async (body: { text(): Promise<string> }): Promise<unknown> => {
  const text = await body.text();
  if (text.length > MAX_BODY) throw new FlotillaError('PEER_UNREACHABLE', 'peer answer too large');
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
};

const STATUS_CODE: Record<number, 'VALIDATION_FAILED' | 'NOT_FOUND' | 'GONE' | 'UNAVAILABLE'> = {
  400: 'VALIDATION_FAILED',
  404: 'NOT_FOUND',
  410: 'GONE',
  503: 'UNAVAILABLE',
};

/**
 * Keep-alive mTLS agents, one per peer and certificate serial: the peer's certificate and
 * key (opened from the box when the agent is made, kept only inside it), the peer's CA as
 * the only root. A renewed certificate gets a fresh agent; the old one closes gracefully,
 * so requests in flight on it complete. Shared by the channel and the federation client.
 */
export const createPeerAgents = (deps: { box: SecretBox; timeoutMs: number }) => {
  const agents = new Map<string, { serial: string; agent: Agent }>();
  return {
    for(p: PeerRecord, connect: { lookup?: unknown } = {}): Agent {
      const have = agents.get(p.name);
      if (have && have.serial === p.certSerial) return have.agent;
      if (have) void have.agent.close().catch(() => {});
      const agent = new Agent({
        connect: {
          ...(connect as object),
          ca: p.caPem,
          cert: p.certPem,
          key: deps.box.open(p.keySealed),
          rejectUnauthorized: true,
          timeout: deps.timeoutMs,
        },
        keepAliveTimeout: 30_000,
      });
      agents.set(p.name, { serial: p.certSerial, agent });
      return agent;
    },
    async forget(peerName: string): Promise<void> {
      const have = agents.get(peerName);
      agents.delete(peerName);
      await have?.agent.close().catch(() => {});
    },
    async close(): Promise<void> {
      const all = [...agents.values()];
      agents.clear();
      await Promise.all(all.map((a) => a.agent.destroy()));
    },
  };
};

export type PeerAgents = ReturnType<typeof createPeerAgents>;

export const createMtlsPeerChannel = (deps: {
  box: SecretBox;
  timeoutMs: number;
  /** Shared with the federation client, so forget() drops both's connections. */
  agents?: PeerAgents;
}): PeerChannel => {
  const agents = deps.agents ?? createPeerAgents(deps);
  const plain = new Agent({ connect: { timeout: deps.timeoutMs } });
  const agentFor = (p: PeerRecord): Agent => agents.for(p);

  const call = async (url: string, init: Parameters<typeof request>[1], timeoutMs = deps.timeoutMs) => {
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      // undici does not abort a request still waiting for its connection (a peer that takes
      // the TCP connection and never answers the TLS handshake): the race bounds the call.
      return await Promise.race([
        request(url, { ...init, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, signal }),
        new Promise<never>((_, reject) =>
          signal.addEventListener(
            'abort',
            () => reject(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })),
            {
              once: true,
            },
          ),
        ),
      ]);
    } catch (e) {
      const code = (e as { code?: string }).code ?? (e as Error).name;
      // No HTTP answer: refused, reset (what a revoked client sees) or a TLS alert.
      throw new FlotillaError('PEER_UNREACHABLE', `peer unreachable (${code})`, {
        transport: true,
        cause: code,
      });
    }
  };

  return {
    async enroll(baseUrl, body) {
      const res = await call(`${baseUrl}/federation/v1/enroll`, {
        method: 'POST',
        dispatcher: plain,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const answer = (await readJson(res.body)) as Record<string, unknown> | undefined;
      if (res.statusCode !== 200) {
        const code = STATUS_CODE[res.statusCode] ?? 'PEER_UNREACHABLE';
        // Only B's status is passed on, never its text.
        throw new FlotillaError(code, `enrollment refused by the peer (${res.statusCode})`);
      }
      const ok =
        typeof answer?.certificate === 'string' &&
        Array.isArray(answer.chain) &&
        answer.chain.every((c) => typeof c === 'string') &&
        typeof answer.peer_channel_url === 'string' &&
        typeof answer.cluster_id === 'string';
      if (!ok)
        throw new FlotillaError('PEER_UNREACHABLE', 'the peer answered enrollment in an unexpected shape');
      return answer as never;
    },

    async fetchCrl(baseUrl) {
      const res = await call(`${baseUrl}/federation/v1/crl`, { method: 'GET', dispatcher: plain });
      const text = await res.body.text();
      if (res.statusCode !== 200 || text.length > MAX_BODY)
        throw new FlotillaError('PEER_UNREACHABLE', 'no CRL');
      return text;
    },

    async request(peer, method, path, body, opts) {
      const res = await call(
        `${peer.peerChannelUrl}${path}`,
        {
          method: method as 'GET',
          dispatcher: agentFor(peer),
          headers: body === undefined ? {} : { 'content-type': 'application/json' },
          body: body === undefined ? undefined : JSON.stringify(body),
        },
        opts?.timeoutMs,
      );
      try {
        return { status: res.statusCode, body: await readJson(res.body) };
      } catch (e) {
        if (e instanceof FlotillaError) throw e;
        // The body did not come in time (the signal fired while reading).
        throw new FlotillaError('PEER_UNREACHABLE', 'peer unreachable (body timeout)');
      }
    },

    async forget(peerName) {
      await agents.forget(peerName);
    },

    async close() {
      await Promise.all([plain.close(), agents.close()]);
    },
  };
};
