// POST /system/federation/query (DESIGN §6, "Users ask their own manager"): the local part as
// the caller, each peer as the grant subject of the caller's own peer record, asked in
// parallel with a short timeout. A failing peer lands in `_partial` and the answer still
// comes. Peers' list/get answers are cached 30 s (never search) and flushed when a peer record
// changes (enrollment, renewal, revocation seen, removal); a per-peer circuit breaker fails
// fast while a peer is down and signals "peer offline" once per transition.
import type { CircuitBreakerPolicy } from 'cockatiel';
import { ownerOf, type Principal } from '../../core/auth/principal.ts';
import { FlotillaError, fail, isFlotillaError } from '../../core/errors.ts';
import type { Clock, Log, PeerRecord, TrustStore } from '../../core/ports.ts';
import {
  DEFAULT_QUERY_LIMIT,
  type FederationQuery,
  mergeAnswers,
  type Row,
  SEARCHABLE,
  type SourceAnswer,
} from '../../core/trust/query.ts';
import type { Resource } from '../../core/trust/scope.ts';
import type { PeerChannel } from '../../core/trust/trust-ports.ts';
import type { CursorSigner } from './query-cursor.ts';
import type { Position, QueryRows } from './query-rows.ts';

export const CACHE_TTL_MS = 30_000;
const CACHE_MAX_ENTRIES = 2000;
const LOCAL = 'local';
/** Rows asked of a peer per page: its answer must stay under the channel's 1 MiB. */
const PEER_PAGE_MAX = 1000;

export interface PeerSignals {
  peerOffline(peer: string): void;
  peerOnline(peer: string): void;
}

export interface FederatedQueryDeps {
  rows: QueryRows;
  /** This manager's peer records, as they are now. */
  peers(): PeerRecord[];
  channel: Pick<PeerChannel, 'request'>;
  cursors: CursorSigner;
  clock: Clock;
  log: Pick<Log, 'info' | 'warn'>;
  trust: Pick<TrustStore, 'updatePeer'>;
  signals?: PeerSignals;
  /** A call to this peer record got no HTTP answer: check whether the peer revoked us (its
   * CRL); a revocation then changes the record, which flushes its cached answers. */
  suspect?(peerName: string): void;
  /** How long one peer may take (default 1.5 s: the answer comes within 2 s when one is down). */
  peerTimeoutMs?: number;
  /** Failures in a row that open a peer's circuit (default 2). */
  breakAfter?: number;
  /** How long an open circuit fails fast before one call tries again (default 5 s). */
  halfOpenAfterMs?: number;
  cacheTtlMs?: number;
}

export interface QueryAnswer {
  rows: Row[];
  next_cursor: string | null;
  _partial?: string[];
  _truncated?: boolean;
}

export type CircuitView = 'closed' | 'open' | 'half-open';

/** A peer's answer that is not a failure of the peer: a 404 on get is "no row there". */
class PeerRefused extends Error {}

export class FederatedQuery {
  private readonly cache = new Map<string, { until: number; rows: Row[]; next: string | null }>();
  private readonly breakers = new Map<string, CircuitBreakerPolicy>();
  private readonly offline = new Map<string, Date>();
  private readonly lastSuccessWrite = new Map<string, number>();
  private readonly lastSuspect = new Map<string, number>();
  private cockatiel?: Promise<typeof import('cockatiel')>;

  constructor(private readonly d: FederatedQueryDeps) {}

  /** Drops cached peer answers (all, or one peer record's). */
  flush(peer?: string): void {
    if (!peer) this.cache.clear();
    else for (const k of this.cache.keys()) if (k.startsWith(`${peer}\u0000`)) this.cache.delete(k);
  }

  /** What `flotilla federation status` shows of a peer cluster's circuit. */
  circuit(peer: string): { circuit: CircuitView; offline_since: string | null } {
    const b = this.breakers.get(peer);
    // CircuitState: 0 closed, 1 open, 2 half-open, 3 isolated (never used here).
    const state = b ? Number(b.state) : 0;
    return {
      circuit: state === 0 ? 'closed' : state === 2 ? 'half-open' : 'open',
      offline_since: this.offline.get(peer)?.toISOString() ?? null,
    };
  }

  /**
   * The peer records a caller asks through, one per peer cluster: a user only those whose
   * grant subject is the user (one user never reads through another's grant), the admin any
   * (the first by name for each cluster). Revoked records never.
   */
  private peersOf(p: Principal): Map<string, PeerRecord> {
    const out = new Map<string, PeerRecord>();
    const usable = this.d
      .peers()
      .filter(
        (r) => r.state !== 'revoked' && (p.kind === 'admin' || (p.kind === 'user' && r.subject === p.sub)),
      )
      .sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
    for (const r of usable) if (!out.has(r.clusterId)) out.set(r.clusterId, r);
    return out;
  }

  async query(p: Principal, q: FederationQuery): Promise<QueryAnswer> {
    if (p.kind !== 'admin' && p.kind !== 'user')
      fail('FORBIDDEN', 'federated queries are for users and the admin');
    const mine = this.peersOf(p);
    let sources: string[];
    if (q.source === LOCAL) sources = [LOCAL];
    else if (q.source === 'all') sources = [LOCAL, ...[...mine.keys()].sort()];
    else {
      // A peer by its cluster id, or by the caller's own record name for it.
      const named = [...mine.values()].find((r) => r.clusterId === q.source || r.name === q.source);
      if (!named) fail('NOT_FOUND', `source: no peer "${q.source}" this caller may query`);
      sources = [named!.clusterId];
    }
    const limit = q.limit ?? DEFAULT_QUERY_LIMIT;
    const bind = JSON.stringify([ownerOf(p), q.verb, q.resource ?? null, q.q ?? null, q.source, limit]);
    // A next page asks only the sources that had more, each from where it stopped.
    let from: Record<string, string> | undefined;
    if (q.cursor !== undefined) {
      const opened = this.d.cursors.open(bind, q.cursor);
      if (!opened || typeof opened !== 'object' || Array.isArray(opened))
        fail('VALIDATION_FAILED', 'cursor: not a cursor this manager gave for this query');
      from = opened as Record<string, string>;
      sources = sources.filter((s) => typeof from![s] === 'string');
    }
    const answers = await Promise.all(
      sources.map((s) =>
        s === LOCAL
          ? this.local(p, q, limit, from?.[s])
          : this.remote(mine.get(s)!, q, Math.min(limit, PEER_PAGE_MAX), from?.[s]),
      ),
    );
    const merged = mergeAnswers(q.verb, answers);
    const next = Object.keys(merged.more).length ? this.d.cursors.seal(bind, merged.more) : null;
    return {
      rows: merged.rows,
      next_cursor: next,
      ...(merged.partial.length ? { _partial: merged.partial } : {}),
      ...(next ? { _truncated: true } : {}),
    };
  }

  private async local(p: Principal, q: FederationQuery, limit: number, from?: string): Promise<SourceAnswer> {
    const filter = {};
    if (q.verb === 'get') {
      const row = await this.d.rows.get(p, q.resource!, q.id!, filter);
      return { source: LOCAL, ok: true, rows: row ? [row] : [], next: null };
    }
    if (q.verb === 'search') {
      const resources = q.resource ? [q.resource] : [...SEARCHABLE];
      const page = await this.d.rows.search(p, q.q!, resources, () => filter, limit, from ? Number(from) : 0);
      return {
        source: LOCAL,
        ok: true,
        rows: page.rows,
        next: page.next === null ? null : String(page.next),
      };
    }
    const after = from === undefined ? undefined : (JSON.parse(from) as Position);
    const page = await this.d.rows.list(p, q.resource!, { filter, limit, after });
    return {
      source: LOCAL,
      ok: true,
      rows: page.rows,
      next: page.next === null ? null : JSON.stringify(page.next),
    };
  }

  private request(q: FederationQuery, limit: number, cursor?: string): { path: string; body: unknown } {
    const r = q.resource as Resource;
    if (q.verb === 'get') return { path: `/federation/v1/get/${r}/${encodeURIComponent(q.id!)}`, body: {} };
    if (q.verb === 'search')
      return {
        path: '/federation/v1/search',
        body: { q: q.q, limit, cursor, ...(r ? { resources: [r] } : {}) },
      };
    return { path: `/federation/v1/list/${r}`, body: { limit, cursor } };
  }

  private async remote(
    peer: PeerRecord,
    q: FederationQuery,
    limit: number,
    cursor?: string,
  ): Promise<SourceAnswer> {
    const source = peer.clusterId;
    // Keyed by the record and its certificate serial: a renewed or re-enrolled peer never hits old rows.
    const key = [peer.name, peer.certSerial, q.verb, q.resource, q.id ?? '', cursor ?? '', limit].join(
      '\u0000',
    );
    const cacheable = q.verb !== 'search';
    const now = this.d.clock.now().getTime();
    const hit = cacheable ? this.cache.get(key) : undefined;
    if (hit && hit.until > now) return { source, ok: true, rows: hit.rows, next: hit.next, cached: true };
    const { path, body } = this.request(q, limit, cursor);
    try {
      const breaker = await this.breaker(peer.clusterId);
      const res = await breaker.execute(async () => {
        const r = await this.d.channel.request(peer, 'POST', path, body, {
          timeoutMs: this.d.peerTimeoutMs ?? 1500,
        });
        // 5xx: the peer is failing; a 4xx is its answer (not granted, not found, bad cursor).
        if (r.status >= 500) throw new FlotillaError('PEER_UNREACHABLE', `peer answered ${r.status}`);
        return r;
      });
      this.succeeded(peer.name);
      if (res.status === 404 && q.verb === 'get') return { source, ok: true, rows: [], next: null };
      if (res.status !== 200) throw new PeerRefused(`peer answered ${res.status}`);
      const b = res.body as { rows?: unknown; row?: unknown; next_cursor?: unknown } | undefined;
      const rows = (q.verb === 'get' ? [b?.row] : Array.isArray(b?.rows) ? b.rows : []).filter(
        (r): r is Row => typeof r === 'object' && r !== null && !Array.isArray(r),
      );
      const next = typeof b?.next_cursor === 'string' ? b.next_cursor : null;
      if (cacheable) this.remember(key, now, rows, next);
      return { source, ok: true, rows, next };
    } catch (e) {
      if (!(e instanceof PeerRefused) && !isBrokenCircuit(e) && !isFlotillaError(e)) throw e;
      if (isFlotillaError(e) && e.details?.transport === true) this.suspectOnce(peer.name);
      return { source, ok: false };
    }
  }

  private remember(key: string, now: number, rows: Row[], next: string | null): void {
    if (this.cache.size >= CACHE_MAX_ENTRIES) {
      for (const [k, v] of this.cache) if (v.until <= now) this.cache.delete(k);
      // Still full: the oldest entry goes (a Map iterates in insertion order).
      if (this.cache.size >= CACHE_MAX_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
    }
    this.cache.set(key, { until: now + (this.d.cacheTtlMs ?? CACHE_TTL_MS), rows, next });
  }

  /** One breaker per peer cluster (all records for it share the outage). */
  private async breaker(peer: string): Promise<CircuitBreakerPolicy> {
    const have = this.breakers.get(peer);
    if (have) return have;
    // Loaded on the first federated query: an idle manager never loads it.
    this.cockatiel ??= import('cockatiel');
    const { circuitBreaker, ConsecutiveBreaker, handleAll } = await this.cockatiel;
    const again = this.breakers.get(peer);
    if (again) return again;
    const b = circuitBreaker(handleAll, {
      halfOpenAfter: this.d.halfOpenAfterMs ?? 5000,
      breaker: new ConsecutiveBreaker(this.d.breakAfter ?? 2),
    });
    // A half-open trial that fails breaks again: that is the same outage, not a new signal.
    b.onBreak(() => this.wentOffline(peer));
    b.onReset(() => this.cameBack(peer));
    this.breakers.set(peer, b);
    return b;
  }

  private wentOffline(peer: string): void {
    if (this.offline.has(peer)) return;
    const at = this.d.clock.now();
    this.offline.set(peer, at);
    this.d.signals?.peerOffline(peer);
    this.d.log.warn({ peer }, 'peer offline: its circuit is open, queries go on without it');
    for (const r of this.d.peers().filter((x) => x.clusterId === peer))
      void this.d.trust
        .updatePeer(r.name, { lastFailureAt: at, lastError: 'offline: federated queries failed' })
        .catch(() => {});
  }

  private cameBack(peer: string): void {
    if (!this.offline.delete(peer)) return;
    this.d.signals?.peerOnline(peer);
    this.d.log.info({ peer }, 'peer back online');
  }

  /** At most one revocation check per peer record every 30 s (a CRL fetch each). */
  private suspectOnce(name: string): void {
    const now = this.d.clock.now().getTime();
    if (now - (this.lastSuspect.get(name) ?? 0) < 30_000) return;
    this.lastSuspect.set(name, now);
    this.d.suspect?.(name);
  }

  /** Records a success at most every 10 s per peer (not a write per query). */
  private succeeded(peer: string): void {
    const now = this.d.clock.now();
    if (now.getTime() - (this.lastSuccessWrite.get(peer) ?? 0) < 10_000) return;
    this.lastSuccessWrite.set(peer, now.getTime());
    void this.d.trust.updatePeer(peer, { lastSuccessAt: now }).catch(() => {});
  }
}

/** cockatiel's "the circuit is open" (its class is loaded lazily, so no instanceof). */
const isBrokenCircuit = (e: unknown): boolean =>
  (e as { isBrokenCircuitError?: boolean })?.isBrokenCircuitError === true;
