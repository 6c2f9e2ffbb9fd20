// PeerClient over HTTP(S) with undici: another cluster's OSCAR-compatible API. Errors name
// the cluster and what went wrong, never the credentials.
import { Agent, request } from 'undici';
import { ERROR_CODES, type ErrorCode, FlotillaError } from '../../core/errors.ts';
import type { PeerClient, PeerTarget, StorageCredentials } from '../../core/ports.ts';

export interface HttpPeerClientOptions {
  /** Per-call timeout when the caller gives no signal. */
  timeoutMs?: number;
}

const authHeader = (t: PeerTarget): Record<string, string> => {
  if (t.auth.kind === 'basic') {
    return { authorization: `Basic ${Buffer.from(`${t.auth.user}:${t.auth.password}`).toString('base64')}` };
  }
  if (t.auth.kind === 'bearer') return { authorization: `Bearer ${t.auth.token}` };
  // 'service-owner' is resolved to a bearer token before a call; unresolved, send none.
  return {};
};

const KNOWN_CODES = new Set(Object.keys(ERROR_CODES));

export const createHttpPeerClient = (
  opts: HttpPeerClientOptions = {},
): PeerClient & { close(): Promise<void> } => {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const secure = new Agent({ connections: 32, keepAliveTimeout: 10_000 });
  const insecure = new Agent({
    connections: 32,
    keepAliveTimeout: 10_000,
    connect: { rejectUnauthorized: false },
  });

  const call = async (
    t: PeerTarget,
    method: string,
    path: string,
    o: {
      body?: unknown;
      raw?: Uint8Array;
      headers?: Record<string, string>;
      signal?: AbortSignal;
      withHeaders?: boolean;
    } = {},
  ): Promise<{ status: number; text: string; json: unknown; headers?: Record<string, string> }> => {
    const url = `${t.endpoint.replace(/\/+$/, '')}${path}`;
    const headers: Record<string, string> = { ...authHeader(t), ...(o.headers ?? {}) };
    let body: string | Uint8Array | undefined;
    if (o.raw) {
      body = o.raw;
      headers['content-type'] ??= 'application/octet-stream';
    } else if (o.body !== undefined) {
      body = JSON.stringify(o.body);
      headers['content-type'] = 'application/json';
    }
    const signal = o.signal ?? AbortSignal.timeout(timeoutMs);
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(url, {
        method: method as 'GET',
        headers,
        body,
        signal,
        dispatcher: t.sslVerify ? secure : insecure,
      });
    } catch (e) {
      const err = e as Error & { code?: string };
      const why =
        err.name === 'TimeoutError' || err.name === 'AbortError' ? 'timed out' : (err.code ?? err.message);
      throw new FlotillaError(
        'PEER_UNREACHABLE',
        `cluster ${t.clusterId} (${t.endpoint}) is unreachable: ${why}`,
        {
          cluster_id: t.clusterId,
        },
      );
    }
    const text = await res.body.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    const headersOut = o.withHeaders
      ? Object.fromEntries(
          Object.entries(res.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : String(v ?? '')]),
        )
      : undefined;
    return { status: res.statusCode, text, json, headers: headersOut };
  };

  /** Turns a non-2xx answer into a FlotillaError naming the cluster. */
  const failed = (
    t: PeerTarget,
    what: string,
    r: { status: number; text: string; json: unknown },
  ): FlotillaError => {
    const remote = r.json as { code?: string; message?: string } | undefined;
    const message = remote?.message ?? (r.text.length < 300 ? r.text : `HTTP ${r.status}`);
    let code: ErrorCode;
    if (r.status === 401) code = 'UNAUTHORIZED';
    else if (r.status === 403) code = 'FORBIDDEN';
    else if (r.status >= 500) code = 'PEER_UNREACHABLE';
    else if (remote?.code && KNOWN_CODES.has(remote.code)) code = remote.code as ErrorCode;
    else code = r.status === 404 ? 'NOT_FOUND' : r.status === 409 ? 'CONFLICT' : 'BAD_REQUEST';
    const detail = r.status === 401 || r.status === 403 ? 'refused the credentials' : message;
    return new FlotillaError(code, `cluster ${t.clusterId}: ${what} failed (${r.status}): ${detail}`, {
      cluster_id: t.clusterId,
      remote_status: r.status,
    });
  };

  const svcPath = (name: string) => `/system/services/${encodeURIComponent(name)}`;

  return {
    async checkAccess(t, signal) {
      // /system/info needs the same credentials as any change, and costs the peer nothing.
      const r = await call(t, 'GET', '/system/info', { signal });
      if (r.status !== 200) throw failed(t, 'access check', r);
    },
    async getService(t, name, signal) {
      const r = await call(t, 'GET', svcPath(name), { signal });
      if (r.status === 404) return undefined;
      if (r.status !== 200) throw failed(t, `read of service ${name}`, r);
      return r.json as Record<string, unknown>;
    },
    async createService(t, definition, signal) {
      const r = await call(t, 'POST', '/system/services', { body: definition, signal });
      if (r.status !== 201 && r.status !== 200)
        throw failed(t, `create of service ${String(definition.name)}`, r);
    },
    async updateService(t, definition, signal) {
      const r = await call(t, 'PUT', '/system/services', { body: definition, signal });
      if (r.status !== 204 && r.status !== 200)
        throw failed(t, `update of service ${String(definition.name)}`, r);
    },
    async deleteService(t, name, signal) {
      // Workers are deleted without cascade: only a coordinator fans out.
      const r = await call(t, 'DELETE', `${svcPath(name)}?cascade=false`, { signal });
      if (r.status === 404) return false;
      if (r.status !== 204 && r.status !== 200) throw failed(t, `delete of service ${name}`, r);
      return true;
    },
    async getFederation(t, name, signal) {
      const r = await call(t, 'GET', `/system/federation/${encodeURIComponent(name)}`, { signal });
      if (r.status === 404) return undefined;
      if (r.status !== 200) throw failed(t, `read of federation ${name}`, r);
      return r.json as Record<string, unknown>;
    },
    async status(t, signal) {
      const r = await call(t, 'GET', '/system/status', { signal });
      if (r.status !== 200) throw failed(t, 'status', r);
      return r.json as Record<string, any>;
    },
    async jobStatus(t, service, jobId, signal) {
      const r = await call(
        t,
        'GET',
        `/system/logs/${encodeURIComponent(service)}/${encodeURIComponent(jobId)}`,
        { signal, raw: undefined, withHeaders: true },
      );
      if (r.status === 404) return undefined;
      if (r.status !== 200) throw failed(t, `status of job ${jobId}`, r);
      return { status: r.headers?.['x-job-status'] ?? 'Unknown', log: r.text };
    },
    async postEvent(url, body, headers, sslVerify, signal) {
      try {
        const res = await request(url, {
          method: 'POST',
          headers: { 'content-type': 'application/octet-stream', ...headers },
          body,
          signal: signal ?? AbortSignal.timeout(timeoutMs),
          dispatcher: sslVerify ? secure : insecure,
        });
        await res.body.dump();
        return res.statusCode;
      } catch (e) {
        const err = e as Error & { code?: string };
        const why =
          err.name === 'TimeoutError' || err.name === 'AbortError' ? 'timed out' : (err.code ?? err.message);
        throw new FlotillaError('PEER_UNREACHABLE', `endpoint ${new URL(url).host} is unreachable: ${why}`);
      }
    },
    async storageConfig(t, signal) {
      const r = await call(t, 'GET', '/system/config', { signal });
      if (r.status !== 200) throw failed(t, 'storage keys', r);
      const p = (r.json as { minio_provider?: StorageCredentials })?.minio_provider;
      if (!p?.endpoint || !p.access_key) {
        throw new FlotillaError('FORBIDDEN', `cluster ${t.clusterId} gave no storage keys to this caller`, {
          cluster_id: t.clusterId,
        });
      }
      return p;
    },
    async submitJob(t, service, body, headers, signal) {
      const r = await call(t, 'POST', `/job/${encodeURIComponent(service)}`, { raw: body, headers, signal });
      if (r.status !== 201 && r.status !== 200) throw failed(t, `job for ${service}`, r);
      return (r.json ?? {}) as { job_id: string };
    },
    async close() {
      await Promise.all([secure.close(), insecure.close()]);
    },
  };
};
