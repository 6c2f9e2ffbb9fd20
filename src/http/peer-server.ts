// The peer channel: its own mTLS listener. TLS itself refuses certificates of other CAs and
// serials on the CRL, before any handler; then every request passes the guard (grant active,
// serial recorded, subject) and its route's scope check. Denials are one generic text.
import type { Server as HttpsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { PeerAccess, ReadCert } from '../app/peering/peer-access.ts';
import type { PeerFederation } from '../app/peering/peer-federation.ts';
import type { PeerQueries } from '../app/peering/peer-queries.ts';
import { type AuditEntry, type AuditOutcome, queryHashOf, traceIdOf } from '../core/audit/chain.ts';
import type { Log, RateLimiter } from '../core/ports.ts';
import type { Tracing } from '../core/tracing.ts';
import type { Grant } from '../core/trust/grant.ts';
import { DENIAL_MESSAGE } from '../core/trust/peer-guard.ts';
import { type RateDecision, retryAfterSeconds } from '../core/trust/rate.ts';
import type { NarrowFilter, Resource, Verb } from '../core/trust/scope.ts';
import type { CertTools } from '../core/trust/trust-ports.ts';
import { errorBody, frameworkErrorHandler, installErrorHandling } from './error-handler.ts';
import { peerFederationRoutes } from './routes/peer-federation.ts';
import { peerQueryRoutes } from './routes/peer-queries.ts';
import { traceRequests } from './tracing-hook.ts';

export interface PeerServerDeps {
  access: PeerAccess;
  certs: CertTools;
  clusterId: string;
  tls: { certPem: string; keyPem: string; caPem: string; crlPem: string };
  /** Federated list/get/search for peers (absent: those routes are not served). */
  queries?: PeerQueries;
  /** POST /federation/v1/renew: a new certificate for the authenticated grant. */
  renew(grant: Grant, body: unknown): Promise<{ certificate: string; chain: string[] }>;
  log: Pick<Log, 'warn'>;
  /** Replica changes, delegated jobs and status for peers (federation over the channel). */
  federation?: PeerFederation;
  /** Largest delegated job event (the public port's body limit). */
  jobBodyLimit?: number;
  /** Where every answer of the channel is recorded (one hook for all routes, later ones too). */
  audit?: { record(entry: AuditEntry): boolean };
  /** The per-grant limit (scope.rate_per_minute); over it the answer is 429 with Retry-After. */
  rateLimit?: RateLimiter;
  tracing?: Tracing;
}

export interface PeerServer {
  readonly app: FastifyInstance;
  /** Applies a new CRL to new handshakes and drops live connections of these serials. */
  applyCrl(crlPem: string, revokedSerials: string[]): void;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    peerAction?: { resource: Resource; verb: Verb; or?: ReadonlyArray<{ resource: Resource; verb: Verb }> };
  }
  interface FastifyRequest {
    peerGrant?: Grant;
    peerLimits?: { filter: NarrowFilter; limit: number };
    /** Who asked (as far as the guard learnt) and what became of it, for the audit row. */
    peerAudit?: {
      grantId: string | null;
      peer: string | null;
      subject: string | null;
      outcome?: AuditOutcome;
    };
    peerBytesOut?: number;
  }
}

const QUERY_VERBS = new Set<Verb>(['list', 'get', 'search']);

const validFilter = (f: unknown): f is NarrowFilter => {
  if (typeof f !== 'object' || f === null || Array.isArray(f)) return false;
  const o = f as Record<string, unknown>;
  if (Object.keys(o).some((k) => k !== 'include_groups' && k !== 'include_personal')) return false;
  if (o.include_personal !== undefined && typeof o.include_personal !== 'boolean') return false;
  return (
    o.include_groups === undefined ||
    (Array.isArray(o.include_groups) &&
      o.include_groups.length <= 100 &&
      o.include_groups.every((g) => typeof g === 'string'))
  );
};

export const buildPeerServer = async (d: PeerServerDeps): Promise<PeerServer> => {
  const tlsOptions = (crl: string) => ({
    key: d.tls.keyPem,
    cert: d.tls.certPem,
    // This manager's CA is the only root: no system store, no other CA.
    ca: [d.tls.caPem],
    crl: [crl],
  });
  const app = Fastify({
    https: {
      ...tlsOptions(d.tls.crlPem),
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
    },
    forceCloseConnections: true,
    bodyLimit: 1024 * 1024,
    frameworkErrors: frameworkErrorHandler,
  }) as unknown as FastifyInstance;
  installErrorHandling(app);
  traceRequests(app, d.tracing, 'peer-channel');
  const server = app.server as unknown as HttpsServer;
  // A limiter that cannot answer (Valkey down) lets requests in: the grant's other checks
  // still hold, and federation keeps working through a blip. Said once per outage.
  let limiterDown = false;
  const overLimit = async (grantId: string, perMinute: number) => {
    if (!d.rateLimit) return undefined;
    let r: RateDecision;
    try {
      r = await d.rateLimit.take(grantId, perMinute, Date.now());
    } catch (e) {
      if (!limiterDown)
        d.log.warn({ err: (e as Error).message }, 'peer rate limit unavailable; not enforced');
      limiterDown = true;
      return undefined;
    }
    limiterDown = false;
    return r.ok ? undefined : r;
  };
  // The client certificate, read once per connection (parsing costs milliseconds).
  const sockets = new Map<TLSSocket, ReadCert>();
  server.on('secureConnection', (socket: TLSSocket) => {
    const raw = socket.getPeerCertificate(false)?.raw;
    if (!raw) return;
    sockets.set(socket, d.certs.read(new Uint8Array(raw)));
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('tlsClientError', (err: NodeJS.ErrnoException) => {
    d.log.warn({ audit: 'peer-tls', outcome: 'denied', reason: err.code ?? 'tls' }, 'peer handshake refused');
  });

  // preHandler: the body (TLS-authenticated peers only, ≤ 1 MiB) can name a filter and a limit,
  // which the decision narrows and caps.
  app.addHook('preHandler', async (req: FastifyRequest, reply: FastifyReply) => {
    const route = req.routeOptions.config.peerAction;
    // Only queries read a filter and a limit from their body (a replica's body is a service).
    const query = route && QUERY_VERBS.has(route.verb);
    const body = (req.body && typeof req.body === 'object' ? req.body : {}) as {
      filter?: unknown;
      limit?: unknown;
    };
    if (query && body.limit !== undefined && (!Number.isInteger(body.limit) || (body.limit as number) < 1))
      return reply.code(400).send(errorBody('VALIDATION_FAILED', 'limit: a whole number of at least 1'));
    const filter = body.filter as NarrowFilter | undefined;
    if (query && filter !== undefined && !validFilter(filter))
      return reply
        .code(400)
        .send(errorBody('VALIDATION_FAILED', 'filter: {include_groups?: [..], include_personal?: bool}'));
    const action = route
      ? query
        ? { ...route, filter, limit: body.limit as number | undefined }
        : { ...route }
      : undefined;
    const decision = await d.access.check(sockets.get(req.raw.socket as TLSSocket), action);
    if (!decision.ok) {
      req.peerAudit = {
        grantId: decision.grantId ?? null,
        peer: decision.peer ?? null,
        subject: decision.subject ?? null,
        outcome: 'denied',
      };
      const code = decision.status === 401 ? 'UNAUTHORIZED' : 'FORBIDDEN';
      return reply.code(decision.status).send(errorBody(code, DENIAL_MESSAGE[decision.status]));
    }
    const g = decision.grant;
    req.peerAudit = { grantId: g.id, peer: g.peerName, subject: g.subjectUser };
    const limited = await overLimit(g.id, g.scope.rate_per_minute);
    if (limited) {
      req.peerAudit.outcome = 'rate_limited';
      return reply
        .code(429)
        .header('retry-after', String(retryAfterSeconds(limited.retryAfterMs)))
        .send(
          errorBody('RATE_LIMITED', "the grant's rate limit is reached; retry after Retry-After seconds"),
        );
    }
    req.peerGrant = g;
    req.peerLimits = { filter: decision.filter ?? {}, limit: decision.limit ?? 1 };
  });

  // The audit row of every answer, denials included (a TLS refusal never reaches a handler).
  app.addHook('onSend', async (req, reply, payload) => {
    const p = payload as unknown;
    req.peerBytesOut =
      typeof p === 'string'
        ? Buffer.byteLength(p)
        : p instanceof Uint8Array
          ? p.byteLength
          : Number(reply.getHeader('content-length') ?? 0) || 0;
    return payload;
  });
  app.addHook('onResponse', async (req, reply) => {
    if (!d.audit) return;
    const who = req.peerAudit;
    const status = reply.statusCode;
    const route = req.routeOptions.config?.peerAction;
    const elapsed = reply.elapsedTime;
    d.audit.record({
      at: new Date(Date.now() - elapsed),
      grantId: who?.grantId ?? null,
      peer: who?.peer ?? null,
      subject: who?.subject ?? null,
      verb: route?.verb ?? req.method.toLowerCase(),
      resource: route?.resource ?? req.routeOptions.url ?? 'unmatched',
      queryHash: queryHashOf({ method: req.method, url: req.url, body: req.body }),
      outcome:
        who?.outcome ??
        (status === 401 || status === 403
          ? 'denied'
          : status === 429
            ? 'rate_limited'
            : status < 400
              ? 'ok'
              : 'error'),
      bytesOut: req.peerBytesOut ?? 0,
      latencyMs: Math.round(elapsed * 1000) / 1000,
      traceId: traceIdOf(req.headers.traceparent),
    });
  });

  app.get('/federation/v1/capabilities', async (req) => {
    const g = req.peerGrant!;
    const s = g.scope;
    return {
      cluster_id: d.clusterId,
      grant_id: g.id,
      subject: g.subjectUser,
      resources: s.resources.filter((r) => !s.excluded_resources.includes(r)),
      verbs: s.verbs,
      filters: s.filters,
      max_rows_per_query: s.max_rows_per_query,
      ...(s.max_cpu ? { max_cpu: s.max_cpu } : {}),
      rate_per_minute: s.rate_per_minute,
      cert_not_after: g.certNotAfter?.toISOString() ?? null,
    };
  });

  if (d.queries) await app.register(peerQueryRoutes(d.queries));

  if (d.federation)
    await app.register(peerFederationRoutes(d.federation, { jobBodyLimit: d.jobBodyLimit ?? 1024 * 1024 }));

  app.post('/federation/v1/renew', { bodyLimit: 16 * 1024 }, async (req) =>
    d.renew(req.peerGrant!, req.body),
  );

  return {
    app,
    applyCrl(crlPem, revokedSerials) {
      server.setSecureContext(tlsOptions(crlPem));
      const gone = new Set(revokedSerials);
      for (const [socket, cert] of sockets) if (gone.has(cert.serial)) socket.destroy();
    },
  };
};
