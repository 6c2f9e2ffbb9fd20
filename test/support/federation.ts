// Helpers for the federation end-to-end tests: service bodies with a `federation` block and
// a `clusters` map, reading a service or its federation view on any cluster, the replica
// graph of a node, a polling `waitFor`, and an HTTP proxy that can fail a member on cue.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiError } from '../../client/api-client.ts';
import { type ClusterProcess, type Harness, startClusters } from './cluster-harness.ts';

export const ADMIN_PASSWORD = 'pw';

export interface MemberSpec {
  type?: 'oscar' | 'endpoint';
  cluster_id?: string;
  service_name?: string;
  url?: string;
  priority?: number;
  members?: MemberSpec[];
}

export interface ReplicaView {
  type: string;
  cluster_id?: string;
  service_name?: string;
  url?: string;
  priority?: number;
}

export interface SyncView {
  state: 'synced' | 'pending' | 'failed';
  revision: number | null;
  last_error: string | null;
}

export interface FederationView {
  topology: string;
  members: Array<MemberSpec & { sync?: SyncView }>;
  revision: number;
  role: 'coordinator' | 'worker' | 'none';
  coordinator: { cluster_id: string; service_name: string } | null;
  replicas?: unknown[];
}

export interface CreateReportView {
  service: string;
  topology: string;
  deployment: string;
  revision: number;
  outcome: 'created' | 'rolled-back' | 'partial';
  members: Array<{ cluster_id: string; service_name: string; status: string; error?: string }>;
}

/**
 * Like startClusters, but starts at most `parallel` managers at a time with a longer
 * health timeout: on a small, busy machine five PGlite initdbs at once starve each other.
 */
export const startFederationClusters = (
  ids: readonly string[],
  opts: { adminPassword?: string; parallel?: number; startTimeoutMs?: number } = {},
): Promise<Harness> =>
  startClusters(
    ids.map((id) => ({ id })),
    {
      adminPassword: opts.adminPassword ?? ADMIN_PASSWORD,
      parallel: opts.parallel ?? 2,
      startTimeoutMs: opts.startTimeoutMs ?? 150_000,
      prefix: 'flotilla-fed-e2e-',
    },
  );

/** Polls `fn` until it returns without throwing (vitest `expect` inside is fine); rethrows the last failure at the deadline. */
export const waitFor = async <T>(
  fn: () => Promise<T> | T,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<T> => {
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() >= deadline) {
        if (opts.what && e instanceof Error) e.message = `waiting for ${opts.what}: ${e.message}`;
        throw e;
      }
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 250));
  }
};

/** An `oscar` member. */
export const member = (
  cluster_id: string,
  service_name: string,
  extra: Partial<MemberSpec> = {},
): MemberSpec => ({
  type: 'oscar',
  cluster_id,
  service_name,
  ...extra,
});

/** The FDL `clusters` map the coordinator uses to reach each cluster (admin Basic credentials). */
export const clustersMap = (
  clusters: readonly ClusterProcess[],
  endpoints: Record<string, string> = {},
): Record<string, { endpoint: string; auth_user: string; auth_password: string }> =>
  Object.fromEntries(
    clusters.map((c) => [
      c.id,
      { endpoint: endpoints[c.id] ?? c.url, auth_user: 'oscar', auth_password: c.adminPassword },
    ]),
  );

/** A small service definition with a federation block. */
export const federatedService = (
  name: string,
  federation: Record<string, unknown>,
  clusters: Record<string, unknown>,
  extra: Record<string, unknown> = {},
): Record<string, unknown> => ({
  name,
  image: 'ghcr.io/grycap/alpine',
  script: '#!/bin/sh\ncat "$INPUT_FILE_PATH"\n',
  cpu: '0.1',
  memory: '64Mi',
  environment: { variables: { GREETING: 'hello' } },
  federation,
  clusters,
  ...extra,
});

/** POST /system/services; the status and the decoded JSON body (the report, or the error). */
export const createFederated = async (
  coordinator: ClusterProcess,
  body: Record<string, unknown>,
): Promise<{ status: number; body: any }> => {
  const res = await coordinator.client.send('POST', '/system/services', { body, timeoutMs: 120_000 });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
};

/** The service on a cluster, or undefined when it answers 404. */
export const serviceOn = async (
  c: ClusterProcess,
  name: string,
): Promise<Record<string, any> | undefined> => {
  try {
    return (await c.client.getService(name)) as Record<string, any>;
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return undefined;
    throw e;
  }
};

/** The service on a cluster; throws when it is missing (for use inside waitFor). */
export const requireService = async (c: ClusterProcess, name: string): Promise<Record<string, any>> => {
  const svc = await serviceOn(c, name);
  if (!svc) throw new Error(`cluster ${c.id} has no service "${name}"`);
  return svc;
};

/** Throws unless none of the clusters holds any of the names. */
export const expectNowhere = async (
  clusters: readonly ClusterProcess[],
  names: readonly string[],
): Promise<void> => {
  const found: string[] = [];
  for (const c of clusters) {
    for (const n of names) if (await serviceOn(c, n)) found.push(`${c.id}/${n}`);
  }
  if (found.length) throw new Error(`services still present: ${found.join(', ')}`);
};

/** A node's delegation targets as "cluster/service" (or the url of an endpoint), in order. */
export const replicaKeys = (svc: Record<string, any>): string[] =>
  ((svc.replicas ?? []) as ReplicaView[]).map((r) =>
    r.type === 'endpoint' ? String(r.url) : `${r.cluster_id}/${r.service_name}`,
  );

/** GET /system/federation/{name} (or the /system/replicas alias) on a cluster. */
export const federationOf = (c: ClusterProcess, name: string, alias = false): Promise<FederationView> =>
  c.client.request<FederationView>('GET', `/system/${alias ? 'replicas' : 'federation'}/${name}`);

/** A member change through /system/federation or /system/replicas; the decoded answer. */
export const changeMembers = (
  c: ClusterProcess,
  method: 'POST' | 'PUT' | 'DELETE',
  name: string,
  body: {
    members?: MemberSpec[];
    update?: MemberSpec[];
    delete?: boolean;
    clusters?: Record<string, unknown>;
  },
  alias = false,
): Promise<FederationView> => {
  const payload: Record<string, unknown> = { ...body };
  if (alias) {
    payload.replicas = body.members;
    delete payload.members;
  }
  return c.client.request<FederationView>(method, `/system/${alias ? 'replicas' : 'federation'}/${name}`, {
    body: payload,
    timeoutMs: 60_000,
  });
};

/** The topology a node shows, without sync states: what must read the same everywhere (SC-002). */
export const memberShape = (members: readonly MemberSpec[] | undefined): unknown[] =>
  (members ?? []).map((m) => ({
    type: m.type,
    cluster_id: m.cluster_id ?? null,
    service_name: m.service_name ?? null,
    url: m.url ?? null,
    priority: m.priority ?? 0,
    members: memberShape(m.members),
  }));

/** Every sync state of a coordinator's view, at any depth, as "cluster/service" → sync. */
export const syncStates = (view: FederationView): Map<string, SyncView | undefined> => {
  const out = new Map<string, SyncView | undefined>();
  const walk = (ms: FederationView['members']) => {
    for (const m of ms) {
      if (m.type !== 'endpoint') out.set(`${m.cluster_id}/${m.service_name}`, m.sync);
      if (m.members) walk(m.members as FederationView['members']);
    }
  };
  walk(view.members ?? []);
  return out;
};

// ------------------------------------------------------------------ a proxy that can fail a member

export type ProxyHook = (
  req: IncomingMessage,
  body: Buffer,
  forward: () => Promise<{ status: number; headers: Record<string, string>; body: Buffer }>,
  res: ServerResponse,
) => Promise<boolean>;

export interface MemberProxy {
  readonly url: string;
  /** Requests seen, as "METHOD path -> status" ("-> dropped" when the member was down, "-> hook"). */
  readonly seen: string[];
  /** Replaces the hook; a hook returns true when it answered (or dropped) the request itself. */
  setHook(hook: ProxyHook | undefined): void;
  close(): Promise<void>;
}

const HOP_HEADERS = new Set(['host', 'connection', 'content-length', 'transfer-encoding', 'keep-alive']);

/**
 * An HTTP proxy on a free loopback port in front of `target`. With no hook it forwards every
 * request; a request the target cannot take (down) has its connection dropped, as a dead
 * peer would. A hook sees each request first and can forward it, answer, or drop it.
 */
export const startMemberProxy = async (target: () => string): Promise<MemberProxy> => {
  let hook: ProxyHook | undefined;
  const seen: string[] = [];
  const forwardOf = (req: IncomingMessage, body: Buffer) => async () => {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (!HOP_HEADERS.has(k) && typeof v === 'string') headers[k] = v;
    }
    const upstream = await fetch(`${target()}${req.url ?? '/'}`, {
      method: req.method,
      headers,
      body: body.length && req.method !== 'GET' && req.method !== 'HEAD' ? new Uint8Array(body) : undefined,
      signal: AbortSignal.timeout(30_000),
    });
    const out: Record<string, string> = {};
    upstream.headers.forEach((v, k) => {
      if (!HOP_HEADERS.has(k) && k !== 'content-encoding') out[k] = v;
    });
    return { status: upstream.status, headers: out, body: Buffer.from(await upstream.arrayBuffer()) };
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const line = `${req.method} ${req.url}`;
      const forward = forwardOf(req, body);
      void (async () => {
        try {
          if (hook && (await hook(req, body, forward, res))) {
            seen.push(`${line} -> hook`);
            return;
          }
          const r = await forward();
          seen.push(`${line} -> ${r.status}`);
          res.writeHead(r.status, r.headers);
          res.end(r.body);
        } catch {
          // The member is down: drop the connection, as a dead peer would.
          seen.push(`${line} -> dropped`);
          res.socket?.destroy();
        }
      })();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    setHook(h) {
      hook = h;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
};
