// A typed client for the Flotilla / OSCAR HTTP API, used by the CLI, the demo and tests.

export interface ClientOptions {
  endpoint: string;
  user?: string;
  password?: string;
  token?: string;
  timeoutMs?: number;
  /** Skip TLS certificate checks (a named cluster with ssl_verify: false). */
  insecure?: boolean;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly body: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface RequestOptions {
  body?: unknown;
  /** Raw bytes sent as application/octet-stream. */
  raw?: Uint8Array | string;
  query?: Record<string, string | undefined>;
  headers?: Record<string, string>;
  /** Bearer token for this request only (e.g. a service token). */
  token?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export class FlotillaClient {
  readonly endpoint: string;
  private insecureAgent: import('undici').Agent | undefined;

  constructor(private readonly opts: ClientOptions) {
    this.endpoint = opts.endpoint.replace(/\/+$/, '');
  }

  private authHeader(token?: string): Record<string, string> {
    const t = token ?? this.opts.token;
    if (t) return { authorization: `Bearer ${t}` };
    if (this.opts.password !== undefined) {
      const basic = Buffer.from(`${this.opts.user ?? 'oscar'}:${this.opts.password}`).toString('base64');
      return { authorization: `Basic ${basic}` };
    }
    return {};
  }

  /** Sends a request; returns the response (any status) for callers that read it raw. */
  async send(method: string, path: string, o: RequestOptions = {}): Promise<Response> {
    const url = new URL(this.endpoint + path);
    for (const [k, v] of Object.entries(o.query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
    const headers: Record<string, string> = { ...this.authHeader(o.token), ...(o.headers ?? {}) };
    let body: BodyInit | undefined;
    if (o.raw !== undefined) {
      body = typeof o.raw === 'string' ? o.raw : Buffer.from(o.raw);
      headers['content-type'] ??= 'application/octet-stream';
    } else if (o.body !== undefined) {
      body = JSON.stringify(o.body);
      headers['content-type'] = 'application/json';
    }
    const timeout = AbortSignal.timeout(o.timeoutMs ?? this.opts.timeoutMs ?? 60_000);
    const signal = o.signal ? AbortSignal.any([o.signal, timeout]) : timeout;
    try {
      if (this.opts.insecure && url.protocol === 'https:') {
        // undici's own fetch with an agent that skips certificate checks (as oscar-cli's
        // ssl_verify: false does); the global fetch keeps verifying.
        const { Agent, fetch: insecureFetch } = await import('undici');
        this.insecureAgent ??= new Agent({ connect: { rejectUnauthorized: false } });
        return (await insecureFetch(url, {
          method,
          headers,
          body: body as never,
          signal,
          dispatcher: this.insecureAgent,
        })) as unknown as Response;
      }
      return await fetch(url, { method, headers, body, signal });
    } catch (e) {
      const cause = (e as { cause?: { code?: string } }).cause?.code;
      const why = (e as Error).name === 'TimeoutError' ? 'timed out' : (cause ?? (e as Error).message);
      throw new ApiError(0, 'UNREACHABLE', `cannot reach ${this.endpoint}: ${why}`, undefined);
    }
  }

  /** Sends and decodes JSON; throws ApiError for a non-2xx answer. */
  async request<T = unknown>(method: string, path: string, o: RequestOptions = {}): Promise<T> {
    const res = await this.send(method, path, o);
    const text = await res.text();
    let parsed: unknown = text;
    if (text && (res.headers.get('content-type') ?? '').includes('json')) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    if (!res.ok) {
      const b = parsed as { code?: string; message?: string } | string;
      const message = typeof b === 'object' && b?.message ? b.message : String(text || res.statusText);
      const code = typeof b === 'object' && b?.code ? b.code : `HTTP_${res.status}`;
      throw new ApiError(res.status, code, message, parsed);
    }
    return parsed as T;
  }

  // ---- services
  listServices = () => this.request<Service[]>('GET', '/system/services');
  getService = (name: string) => this.request<Service>('GET', `/system/services/${encodeURIComponent(name)}`);
  createService = (svc: unknown) => this.request<unknown>('POST', '/system/services', { body: svc });
  updateService = (svc: unknown) => this.request<unknown>('PUT', '/system/services', { body: svc });
  deleteService = (name: string, opts: { cascade?: boolean } = {}) =>
    this.request<unknown>('DELETE', `/system/services/${encodeURIComponent(name)}`, {
      query: { cascade: opts.cascade === false ? 'false' : undefined },
    });

  // ---- system
  info = () => this.request<Record<string, unknown>>('GET', '/system/info');
  config = () => this.request<Record<string, any>>('GET', '/system/config');
  status = () => this.request<Record<string, any>>('GET', '/system/status');
  health = async () => (await this.send('GET', '/health')).ok;
}

export interface Service {
  name: string;
  token?: string;
  owner?: string;
  cpu?: string;
  memory?: string;
  [k: string]: unknown;
}

export interface JobInfo {
  status: string;
  creation_time: string;
  start_time: string | null;
  finish_time: string | null;
  delegated_to?: string | null;
  reason?: string | null;
  exit_code?: number | null;
  /** Why it was delegated or kept on the cluster it was sent to; null when never tried. */
  delegation?: JobDelegation | null;
}

/** A job's delegation decision as the listing shows it (docs/api.md). */
export interface JobDelegation {
  trigger: 'intake' | 'rescheduler' | 'never-fits';
  waited_s?: number;
  threshold_s?: number;
  policy: string;
  cpu_millis: number;
  memory_bytes: number;
  candidates: Array<{
    cluster_id?: string;
    service_name?: string;
    endpoint?: number;
    cache: 'fits' | 'no-room' | 'offline' | 'unknown' | 'endpoint';
    free_cpu_millis?: number;
    tried?: 'accepted' | 'refused' | 'unreachable' | 'no-credentials' | 'failed';
  }>;
  more_candidates: number;
  outcome: 'delegated' | 'kept-local';
  to: string | null;
  decided_at: string;
  /** The decision in words. */
  summary: string;
}

export interface JobsPage {
  jobs: Record<string, JobInfo>;
  next_page: string;
  remaining_jobs: number;
}

export interface PresignAnswer {
  url: string;
  method: string;
  headers: Record<string, string>;
  expires_at: string;
}

/** Job and storage calls, as functions over a client (keeps the class small). */
export const jobsApi = (c: FlotillaClient) => ({
  submit: (service: string, body: Uint8Array | string, token?: string) =>
    c.request<{ job_id: string; cluster_id: string; delegated_to: string | null }>(
      'POST',
      `/job/${encodeURIComponent(service)}`,
      { raw: body, token },
    ),
  run: async (service: string, body: Uint8Array | string, token?: string, timeoutMs = 600_000) => {
    const res = await c.send('POST', `/run/${encodeURIComponent(service)}`, { raw: body, token, timeoutMs });
    const text = await res.text();
    if (!res.ok) {
      let parsed: { code?: string; message?: string } = {};
      try {
        parsed = JSON.parse(text);
      } catch {
        // plain text error
      }
      throw new ApiError(res.status, parsed.code ?? `HTTP_${res.status}`, parsed.message ?? text, parsed);
    }
    return text;
  },
  list: (service: string, page?: string, token?: string) =>
    c.request<JobsPage>('GET', `/system/logs/${encodeURIComponent(service)}`, { query: { page }, token }),
  log: async (service: string, job: string, token?: string) => {
    const res = await c.send(
      'GET',
      `/system/logs/${encodeURIComponent(service)}/${encodeURIComponent(job)}`,
      { token },
    );
    const text = await res.text();
    if (!res.ok) {
      const parsed = (() => {
        try {
          return JSON.parse(text) as { code?: string; message?: string };
        } catch {
          return {};
        }
      })();
      throw new ApiError(res.status, parsed.code ?? `HTTP_${res.status}`, parsed.message ?? text, parsed);
    }
    return { text, status: res.headers.get('x-job-status') ?? 'unknown' };
  },
  presign: (bucket: string, objectKey: string, operation: 'upload' | 'download') =>
    c.request<PresignAnswer>('POST', `/system/buckets/${encodeURIComponent(bucket)}/presign`, {
      body: { object_key: objectKey, operation },
    }),
  objects: (bucket: string, page?: string) =>
    c.request<{
      objects: Array<{ object_name: string; size_bytes: number; last_modified: string }>;
      next_page: string;
    }>('GET', `/system/buckets/${encodeURIComponent(bucket)}`, { query: { page } }),
  buckets: () => c.request<Array<{ bucket_name: string; visibility: string }>>('GET', '/system/buckets'),
});
