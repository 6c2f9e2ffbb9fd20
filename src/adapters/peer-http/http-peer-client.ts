// PeerClient over HTTP(S) with undici: another cluster's OSCAR-compatible API. Calls go only
// to fixed OSCAR paths under a cluster's endpoint (rebuilt from scheme, host, port and path:
// a user, password, query or fragment in a stored endpoint is never used), only to
// addresses --peer-allow admits, and a peer's answer is read only for the fields of the
// expected shape: its body never reaches an error, a log line or a caller. Errors name the
// cluster and what went wrong, never the credentials, and carry what happened as data (a
// PeerCallError's `failure`), classified here once, in the shared helpers `unreachable`,
// `failed` and `unexpected` that every call's outcome goes through.
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import { Agent, type Dispatcher, request } from 'undici';
import { ERROR_CODES, type ErrorCode, FlotillaError } from '../../core/errors.ts';
import { endpointHost, hasUserInfo, peerUrl } from '../../core/federation/endpoint.ts';
import { allowsAddress, allowsHost, type PeerAllow } from '../../core/federation/peer-allow.ts';
import { ORIGIN_HEADER, WORKER_TOKEN_HEADER } from '../../core/federation/worker-guard.ts';
import { failureOfStatus, PeerCallError } from '../../core/peer-failure.ts';
import type { PeerClient, PeerTarget, StorageCredentials } from '../../core/ports.ts';

export interface HttpPeerClientOptions {
  /** Per-call timeout when the caller gives no signal. */
  timeoutMs?: number;
  /** Addresses peers may have (--peer-allow); undefined: any. */
  allow?: PeerAllow;
  /** Largest answer read from a peer; a longer one is not of the expected shape. */
  maxAnswerBytes?: number;
  /**
   * Another transport for some targets (the peer channel: mTLS with a peer record's
   * certificate, src/adapters/peer-mtls): the dispatcher and the endpoint the fixed paths go
   * under; undefined keeps this client's own agents. `connect` holds the --peer-allow lookup.
   */
  transport?: PeerTransport;
  /** The active trace's headers (`traceparent`) for every call; undefined: tracing is off. */
  traceHeaders?: () => Record<string, string>;
}

export type PeerTransport = (
  t: PeerTarget,
  connect: { lookup?: unknown },
) => Promise<{ dispatcher: Dispatcher; endpoint: string } | undefined>;

const authHeader = (t: PeerTarget): Record<string, string> => {
  if (t.auth.kind === 'basic') {
    return { authorization: `Basic ${Buffer.from(`${t.auth.user}:${t.auth.password}`).toString('base64')}` };
  }
  if (t.auth.kind === 'bearer') return { authorization: `Bearer ${t.auth.token}` };
  // 'service-owner' is resolved to a bearer token before a call; unresolved, send none.
  // 'peer' authenticates in TLS (the transport's client certificate): no header.
  return {};
};

/** The headers by which a coordinator proves a change is to its own worker. */
const workerHeaders = (t: PeerTarget): Record<string, string> =>
  t.worker ? { [ORIGIN_HEADER]: t.worker.origin, [WORKER_TOKEN_HEADER]: t.worker.tokens.join(',') } : {};

const KNOWN_CODES = new Set(Object.keys(ERROR_CODES));
const JOB_STATUSES = new Set(['Pending', 'Running', 'Succeeded', 'Failed']);
const NOT_ALLOWED = 'EPEERNOTALLOWED';
const JOB_ID_RE = /^(?!\.{1,2}$)[A-Za-z0-9._:-]{1,253}$/;

/** One path segment: encoded, and never "." or ".." (which would climb out of the fixed path). */
const segment = (s: string): string => {
  if (s === '' || s === '.' || s === '..') {
    throw new FlotillaError('BAD_REQUEST', `"${s}" is not a service or job name`);
  }
  return encodeURIComponent(s);
};

const isObj = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** The /system/status fields delegation reads, numbers only; undefined when not that shape. */
const statusShape = (json: unknown): Record<string, any> | undefined => {
  if (!isObj(json) || !isObj(json.cluster)) return undefined;
  const c = json.cluster;
  const cpu = isObj(c.metrics) && isObj(c.metrics.cpu) ? c.metrics.cpu : {};
  const nodes = Array.isArray(c.nodes) ? c.nodes.filter(isObj).slice(0, 10_000) : [];
  return {
    cluster: {
      metrics: { cpu: { total_free_cores: num(cpu.total_free_cores) } },
      nodes: nodes.map((n) => {
        const ncpu = isObj(n.cpu) ? n.cpu : {};
        const mem = isObj(n.memory) ? n.memory : {};
        return {
          cpu: { capacity_cores: num(ncpu.capacity_cores), request_cores: num(ncpu.request_cores) },
          memory: { capacity_bytes: num(mem.capacity_bytes), request_bytes: num(mem.request_bytes) },
          status: str(n.status),
        };
      }),
    },
  };
};

/** Reads at most `max` bytes of an answer; undefined when it is longer. */
const readCapped = async (
  body: AsyncIterable<Buffer | Uint8Array>,
  max: number,
): Promise<string | undefined> => {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > max) return undefined;
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks).toString('utf8');
};

export const createHttpPeerClient = (
  opts: HttpPeerClientOptions = {},
): PeerClient & { close(): Promise<void> } => {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const maxAnswer = opts.maxAnswerBytes ?? 4 * 1024 ** 2;
  const allow = opts.allow;

  // Host names not listed themselves must resolve only to admitted addresses; checked at
  // connect time, so a name cannot resolve to one address when checked and another when used.
  const guardedLookup = (
    hostname: string,
    options: { all?: boolean },
    callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ): void => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '');
      if (
        allow &&
        !allowsHost(allow, hostname) &&
        (addresses.length === 0 || addresses.some((a) => !allowsAddress(allow, a.address)))
      ) {
        return callback(Object.assign(new Error('address not allowed'), { code: NOT_ALLOWED }), '');
      }
      if (options.all) return callback(null, addresses);
      callback(null, addresses[0].address, addresses[0].family);
    });
  };
  const connect = allow ? { lookup: guardedLookup } : {};
  const secure = new Agent({ connections: 32, keepAliveTimeout: 10_000, connect });
  const insecure = new Agent({
    connections: 32,
    keepAliveTimeout: 10_000,
    connect: { ...connect, rejectUnauthorized: false },
  });

  /** Whether --peer-allow admits the URL's host before any name is resolved (literal addresses, listed names). */
  const admitted = (url: URL): boolean | 'resolve' => {
    if (!allow) return true;
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host)) return allowsAddress(allow, host);
    return allowsHost(allow, host) ? true : 'resolve';
  };

  /** No answer (network, timeout, an address --peer-allow refuses): 'unreachable'. */
  const unreachable = (who: string, e: unknown, cluster?: string): PeerCallError => {
    const err = e as Error & { code?: string; cause?: { code?: string } };
    const code = err.code ?? err.cause?.code;
    const why =
      code === NOT_ALLOWED
        ? 'its address is not allowed by --peer-allow'
        : err.name === 'TimeoutError' || err.name === 'AbortError'
          ? 'timed out'
          : (code ?? 'network error');
    return new PeerCallError(
      'PEER_UNREACHABLE',
      `${who} is unreachable: ${why}`,
      { kind: 'unreachable' },
      cluster ? { cluster_id: cluster } : undefined,
    );
  };

  const call = async (
    t: PeerTarget,
    method: string,
    path: string,
    o: { body?: unknown; raw?: Uint8Array; headers?: Record<string, string>; signal?: AbortSignal } = {},
  ): Promise<{
    status: number;
    text: string | undefined;
    json: unknown;
    headers: Record<string, string>;
  }> => {
    const who = `cluster ${t.clusterId} (${endpointHost(t.endpoint)})`;
    const via = opts.transport ? await opts.transport(t, connect) : undefined;
    const url = peerUrl(via?.endpoint ?? t.endpoint, path);
    if (!url)
      throw new PeerCallError('PEER_UNREACHABLE', `${who} has no valid http(s) endpoint`, {
        kind: 'unreachable',
      });
    if (admitted(url) === false) throw unreachable(who, { code: NOT_ALLOWED }, t.clusterId);
    const headers: Record<string, string> = {
      ...authHeader(t),
      ...opts.traceHeaders?.(),
      ...(o.headers ?? {}),
    };
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
        dispatcher: via?.dispatcher ?? (t.sslVerify ? secure : insecure),
      });
    } catch (e) {
      throw unreachable(who, e, t.clusterId);
    }
    let text: string | undefined;
    try {
      text = await readCapped(res.body, maxAnswer);
    } catch (e) {
      throw unreachable(who, e, t.clusterId);
    } finally {
      if (text === undefined) res.body.destroy();
    }
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    const headersOut = Object.fromEntries(
      Object.entries(res.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : String(v ?? '')]),
    );
    return { status: res.statusCode, text, json, headers: headersOut };
  };

  /**
   * An answer other than the expected one as an error naming the cluster: the status, and the
   * peer's error code mapped to this registry when it is one of ours — never its message or
   * body; classified from the status alone (failureOfStatus).
   */
  const failed = (
    t: PeerTarget,
    what: string,
    r: { status: number; json: unknown },
    hints: Partial<Record<ErrorCode, string>> = {},
  ): PeerCallError => {
    const remote = isObj(r.json) ? str(r.json.code) : undefined;
    const known = remote && KNOWN_CODES.has(remote) ? (remote as ErrorCode) : undefined;
    let code: ErrorCode;
    if (r.status === 401) code = 'UNAUTHORIZED';
    else if (r.status === 403) code = 'FORBIDDEN';
    else if (r.status >= 500) code = 'PEER_UNREACHABLE';
    else if (known) code = known;
    else code = r.status === 404 ? 'NOT_FOUND' : r.status === 409 ? 'CONFLICT' : 'BAD_REQUEST';
    const detail =
      r.status === 401 || r.status === 403
        ? 'refused the credentials'
        : known && r.status < 500
          ? (hints[known] ?? ERROR_CODES[known].title)
          : `HTTP ${r.status}`;
    return new PeerCallError(
      code,
      `cluster ${t.clusterId}: ${what} failed (${r.status}): ${detail}`,
      failureOfStatus(r.status),
      { cluster_id: t.clusterId, remote_status: r.status },
    );
  };

  /** An answer with the expected status but not the expected shape: 'unexpected'. */
  const unexpected = (t: PeerTarget, what: string): PeerCallError =>
    new PeerCallError(
      'PEER_UNREACHABLE',
      `cluster ${t.clusterId}: ${what}: the answer is not of the expected shape`,
      { kind: 'unexpected' },
      { cluster_id: t.clusterId },
    );

  const svcPath = (name: string) => `/system/services/${segment(name)}`;
  const delegatedPath = (service: string, delegatedId: string) =>
    `/job/${segment(service)}/delegated/${segment(delegatedId)}`;
  /** What a member's refusal of a coordinator's change means, told from its error code alone. */
  const workerHints: Partial<Record<ErrorCode, string>> = {
    SERVICE_EXISTS: "the name is held by a service that is not this federation's worker",
    STALE_REVISION: 'the member holds a newer federation revision',
  };

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
      if (!isObj(r.json) || typeof r.json.name !== 'string') throw unexpected(t, `read of service ${name}`);
      return { name: r.json.name };
    },
    async createService(t, definition, signal) {
      const r = await call(t, 'POST', '/system/services', {
        body: definition,
        signal,
        headers: workerHeaders(t),
      });
      if (r.status !== 201 && r.status !== 200)
        throw failed(t, `create of service ${String(definition.name)}`, r, workerHints);
    },
    async updateService(t, definition, signal) {
      const r = await call(t, 'PUT', '/system/services', {
        body: definition,
        signal,
        headers: workerHeaders(t),
      });
      if (r.status !== 204 && r.status !== 200)
        throw failed(t, `update of service ${String(definition.name)}`, r, workerHints);
    },
    async deleteService(t, name, signal) {
      // Workers are deleted without cascade: only a coordinator fans out.
      const r = await call(t, 'DELETE', `${svcPath(name)}?cascade=false`, {
        signal,
        headers: workerHeaders(t),
      });
      if (r.status === 404) return false;
      // The name is held by a service that is not this coordinator's worker: ours is not there.
      if (r.status === 409 && t.worker && isObj(r.json) && r.json.code === 'SERVICE_EXISTS') return false;
      if (r.status !== 204 && r.status !== 200) throw failed(t, `delete of service ${name}`, r, workerHints);
      return true;
    },
    async getFederation(t, name, signal) {
      const r = await call(t, 'GET', `/system/federation/${segment(name)}`, { signal });
      if (r.status === 404) return undefined;
      if (r.status !== 200) throw failed(t, `read of federation ${name}`, r);
      if (!isObj(r.json)) throw unexpected(t, `read of federation ${name}`);
      return {
        topology: str(r.json.topology),
        members: Array.isArray(r.json.members) ? r.json.members : null,
      };
    },
    async status(t, signal) {
      const r = await call(t, 'GET', '/system/status', { signal });
      if (r.status !== 200) throw failed(t, 'status', r);
      const shaped = statusShape(r.json);
      if (!shaped) throw unexpected(t, 'status');
      return shaped;
    },
    async jobStatus(t, service, jobId, signal) {
      const r = await call(t, 'GET', `/system/logs/${segment(service)}/${segment(jobId)}`, { signal });
      if (r.status === 404) return undefined;
      if (r.status !== 200) throw failed(t, `status of job ${jobId}`, r);
      // A job log is text/plain with its status in X-Job-Status; anything else is not shown.
      const status = r.headers['x-job-status'];
      const type = (r.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
      if (type !== 'text/plain' || !JOB_STATUSES.has(status) || r.text === undefined) {
        throw unexpected(t, `log of job ${jobId}`);
      }
      return { status, log: r.text };
    },
    async postEvent(url, body, headers, sslVerify, signal) {
      const parsed = URL.canParse(url) ? new URL(url) : undefined;
      const host = parsed?.host ?? 'an invalid url';
      if (!parsed || !/^https?:$/.test(parsed.protocol) || hasUserInfo(url)) {
        throw new FlotillaError(
          'BAD_REQUEST',
          `endpoint ${host}: the url must be http(s) without a user or password`,
        );
      }
      if (admitted(parsed) === false) throw unreachable(`endpoint ${host}`, { code: NOT_ALLOWED });
      try {
        const res = await request(parsed, {
          method: 'POST',
          headers: { 'content-type': 'application/octet-stream', ...headers },
          body,
          signal: signal ?? AbortSignal.timeout(timeoutMs),
          dispatcher: sslVerify ? secure : insecure,
        });
        await res.body.dump();
        return res.statusCode;
      } catch (e) {
        throw unreachable(`endpoint ${host}`, e);
      }
    },
    async storageConfig(t, signal) {
      const r = await call(t, 'GET', '/system/config', { signal });
      if (r.status !== 200) throw failed(t, 'storage keys', r);
      const p = isObj(r.json) && isObj(r.json.minio_provider) ? r.json.minio_provider : undefined;
      const creds: StorageCredentials | undefined =
        p && str(p.endpoint) && str(p.access_key) && typeof p.secret_key === 'string'
          ? {
              endpoint: p.endpoint as string,
              verify: p.verify !== false,
              access_key: p.access_key as string,
              secret_key: p.secret_key,
              region: str(p.region) ?? 'us-east-1',
            }
          : undefined;
      if (!creds) {
        throw new FlotillaError('FORBIDDEN', `cluster ${t.clusterId} gave no storage keys to this caller`, {
          cluster_id: t.clusterId,
        });
      }
      return creds;
    },
    async submitJob(t, service, body, headers, signal) {
      const r = await call(t, 'POST', `/job/${segment(service)}`, { raw: body, headers, signal });
      if (r.status !== 201 && r.status !== 200) throw failed(t, `job for ${service}`, r);
      // OSCAR answers 201 with no body: the job went there, only its id is unknown here.
      const id = isObj(r.json) ? str(r.json.job_id) : undefined;
      // Only a literal `held: true` is a hold (ADR 13); anything else runs there already.
      const held = isObj(r.json) && r.json.held === true;
      return { job_id: id && JOB_ID_RE.test(id) ? id : '', ...(held ? { held } : {}) };
    },
    async confirmJob(t, service, delegatedId, headers, signal) {
      const r = await call(t, 'POST', `${delegatedPath(service, delegatedId)}/confirm`, { headers, signal });
      if (r.status !== 200) throw failed(t, `confirm of job ${delegatedId}`, r);
      if (!isObj(r.json) || r.json.state !== 'confirmed')
        throw unexpected(t, `confirm of job ${delegatedId}`);
    },
    async abandonJob(t, service, delegatedId, headers, signal) {
      const r = await call(t, 'POST', `${delegatedPath(service, delegatedId)}/abandon`, { headers, signal });
      // A receiver without hold support has no such route.
      if (r.status === 404) return 'absent';
      if (r.status !== 200) throw failed(t, `abandon of job ${delegatedId}`, r);
      if (!isObj(r.json) || r.json.state !== 'abandoned')
        throw unexpected(t, `abandon of job ${delegatedId}`);
      return 'abandoned';
    },
    async close() {
      await Promise.all([secure.close(), insecure.close()]);
    },
  };
};
