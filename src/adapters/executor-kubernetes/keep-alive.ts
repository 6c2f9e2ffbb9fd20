// @kubernetes/client-node 1.4.0 builds a new http(s).Agent for every API call, so each call
// opens a new connection (and, against a real cluster, a new TLS handshake). This reuses one
// keep-alive agent made with the same TLS options. Plain http/https agents only: a proxy agent
// is left as the client made it.
import http from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

type Ctx = Parameters<KubeConfig['applySecurityAuthentication']>[0];

/**
 * No cap on sockets here: a request queued in the agent for a busy socket trips node-fetch
 * 2.7's chunked-ending check ("Premature close", ERR_STREAM_PREMATURE_CLOSE) when it is handed
 * the socket of a response that has not emitted 'close' yet. The executor limits calls in
 * flight itself (kube-executor.ts `maxInFlight`), so a free socket is always there.
 */
export function withKeepAlive(kc: KubeConfig): { config: KubeConfig; close(): void } {
  let agent: http.Agent | undefined;
  const config = Object.create(kc) as KubeConfig;
  config.applySecurityAuthentication = async (ctx: Ctx) => {
    await kc.applySecurityAuthentication(ctx);
    const made = ctx.getAgent();
    if (!made || (made.constructor !== http.Agent && made.constructor !== https.Agent)) return;
    agent ??=
      made instanceof https.Agent
        ? new https.Agent({ ...made.options, keepAlive: true, scheduling: 'lifo' })
        : new http.Agent({
            ...(made as http.Agent & { options: http.AgentOptions }).options,
            keepAlive: true,
            scheduling: 'lifo',
          });
    made.destroy();
    ctx.setAgent(agent);
  };
  return { config, close: () => agent?.destroy() };
}
