// The one applier of federation changes: every remote create, update and delete a use case
// plans is an outbox row, and this worker performs it. It drains the durable per-peer
// outbox in the background: each (peer, service)'s rows are applied in order, one at a time;
// a row that fails stays at the head of its service and is retried with backoff, so later
// changes to that service cannot overtake it (other services' rows go on), but a later row of
// that service at the same revision or a higher one supersedes it at once. Rows carry full
// state and are idempotent: a create is POST, falling back to PUT when an earlier attempt
// already made it; an update is PUT, falling back to POST on 404 (unless a newer delete was
// applied before it); a delete tolerates 404; a
// 409 for a stale revision means the peer already holds something newer. A use case that
// must know the outcome before it answers (a federated create) has its rows applied at once
// (applyNow) — the same calls, the outcome recorded on the same rows. Each failure is
// recorded with its kind (core/peer-failure.ts), never parsed from its text.
import PQueue from 'p-queue';
import type { ChangeApplier, ChangeOutcome, PreflightOutcome } from '../app/federation/federation-common.ts';
import { type AuditEntry, requestDigest } from '../core/audit/chain.ts';
import { isFlotillaError } from '../core/errors.ts';
import { SUPERSEDED_AT } from '../core/federation/sync-state.ts';
import { type PeerFailure, peerFailureOf, peerIsDown } from '../core/peer-failure.ts';
import type {
  Clock,
  Log,
  NewOutboxRow,
  OutboxRow,
  OutboxStore,
  PeerClient,
  PeerTarget,
} from '../core/ports.ts';
import { NO_TRACING, type Tracing } from '../core/tracing.ts';

export type OutboxLogger = Pick<Log, 'info' | 'warn'>;

export interface OutboxWorkerOptions {
  store: OutboxStore;
  peers: PeerClient;
  clock: Clock;
  logger: OutboxLogger;
  /** Backoff: first retry delay and cap. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  pollMs?: number;
  /** Per-call timeout to a peer. */
  callTimeoutMs?: number;
  /** Peers drained at once. */
  concurrency?: number;
  /** Rows applied at once by applyNow (and checks by preflight). */
  nowConcurrency?: number;
  /**
   * The service owner's token (app/credentials/refresh-tokens.ts): mints it for a kept
   * target that names the owner, and opens it, sealed in a kept definition, right before the
   * definition is sent (it is never stored open).
   */
  ownerToken?: {
    resolveTarget(target: PeerTarget): Promise<PeerTarget>;
    openForSending(payload: Record<string, unknown>): Record<string, unknown>;
  };
  /** The audit trail: one row per change applied (or tried) at a member. */
  audit?: { record(entry: AuditEntry): boolean };
  /** The grant and subject a peer record acts with (for the audit row of a change sent over
   * the peer channel). */
  grantOf?: (peer: string) => { grantId: string; subject: string } | undefined;
  /** A client span per applied row (its context goes to the peer as `traceparent`). */
  tracing?: Pick<Tracing, 'enabled' | 'inSpan' | 'traceId' | 'captureContext' | 'withContext'>;
}

/** What applying a row reads of it. */
type AppliedRow = Pick<OutboxRow, 'id' | 'op' | 'service' | 'payload' | 'target' | 'peer' | 'revision'>;

/** A persisted row as applyNow takes it: what was inserted, and the id it got. */
export type StoredChange = NewOutboxRow & { id: number };

export interface ApplyNowOptions {
  /**
   * The caller's own credentials for this request (an OIDC caller's bearer token), used
   * where the kept target says "the service owner"; never stored.
   */
  via?: PeerTarget['auth'];
  /**
   * A failed row: 'retry' leaves it to the background drain (from the first backoff on);
   * 'abandon' closes it unapplied (an atomic plan that failed is undone, never completed).
   */
  onFailure: 'retry' | 'abandon';
}

/** Exponential backoff with full jitter in the upper half. */
export const backoffMs = (attempts: number, base: number, max: number, rand = Math.random): number => {
  const ceiling = Math.min(max, base * 2 ** Math.min(attempts, 20));
  return Math.round(ceiling / 2 + rand() * (ceiling / 2));
};

export class OutboxWorker implements ChangeApplier {
  private timer: NodeJS.Timeout | undefined;
  private readonly active = new Set<string>();
  /**
   * Peers where nothing can move before a time (every service's head row waits out its
   * backoff, or the peer is unreachable). duePeers lists a peer when ANY pending row is due,
   * rows behind a waiting head included: without this, each pass would drain such a peer
   * again at once (a busy loop) and keep settle() waiting its full timeout.
   */
  private readonly blockedUntil = new Map<string, number>();
  private passing = false;
  private again = false;
  private stopped = false;
  private readonly listeners = new Set<() => void>();
  /** With tracing on: the context of the request that last queued changes for a peer. */
  private readonly queuedIn = new Map<string, unknown>();

  constructor(private readonly o: OutboxWorkerOptions) {}

  start(): void {
    this.stopped = false;
    this.timer = setInterval(() => this.wake(), this.o.pollMs ?? 500);
    this.timer.unref();
    this.wake();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    const deadline = Date.now() + 5000;
    while (this.active.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  }

  wake(): void {
    if (this.stopped) return;
    if (this.passing) {
      this.again = true;
      return;
    }
    this.passing = true;
    setImmediate(() => void this.pass());
  }

  /** Resolves after the next pass that leaves nothing due (or at the timeout). */
  async settle(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      // While drains run there is no need to ask the store: the next one to finish says so.
      if (this.active.size === 0) {
        if ((await this.duePeers()).length === 0) return;
        this.wake();
      }
      await new Promise<void>((r) => {
        const t = setTimeout(r, 100);
        this.listeners.add(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  private async pass(): Promise<void> {
    try {
      do {
        this.again = false;
        const peers = (await this.duePeers()).filter((p) => !this.active.has(p));
        const limit = this.o.concurrency ?? 16;
        const slots = Math.max(0, limit - this.active.size);
        for (const peer of peers.slice(0, slots)) {
          this.active.add(peer);
          void this.drainTraced(peer).finally(() => {
            this.active.delete(peer);
            this.notify();
            this.wake();
          });
        }
      } while (this.again && !this.stopped);
    } catch (e) {
      this.o.logger.warn({ err: (e as Error).message }, 'outbox pass failed');
    } finally {
      this.passing = false;
    }
  }

  /** Peers with a due row whose head is not waiting out a backoff. */
  private async duePeers(): Promise<string[]> {
    const now = this.o.clock.now();
    const peers = await this.o.store.duePeers(now);
    return peers.filter((p) => {
      const until = this.blockedUntil.get(p);
      if (until === undefined) return true;
      if (until > now.getTime()) return false;
      this.blockedUntil.delete(p);
      return true;
    });
  }

  private notify(): void {
    for (const l of this.listeners) l();
    this.listeners.clear();
  }

  /**
   * Applies a peer's rows, each service's in order. A row the peer refuses waits out its
   * backoff and holds back only its own service's later rows; an unreachable peer holds
   * back everything (the rest would fail the same way).
   */
  private async drainPeer(peer: string): Promise<void> {
    for (let progressed = true; progressed && !this.stopped; ) {
      progressed = false;
      const heads = await this.o.store.headsOfPeer(peer);
      let wait = Number.POSITIVE_INFINITY;
      for (const row of heads) {
        if (this.stopped) return;
        // A head still waiting is either held (applied at once right now: nothing may
        // overtake it) or waiting out the backoff of a failed attempt (nobody is applying it,
        // so a later row may supersede it now rather than after the backoff).
        const waiting = row.nextAttemptAt > this.o.clock.now();
        if (waiting && row.attempts === 0) {
          wait = Math.min(wait, row.nextAttemptAt.getTime());
          continue;
        }
        // Full-state rows: a later row for the same service supersedes this one.
        // Marked with SUPERSEDED_AT so sync states do not count it as applied at the peer.
        if (await this.o.store.hasLaterRow(row)) {
          await this.o.store.markOutboxDone(row.id, SUPERSEDED_AT);
          progressed = true;
          continue;
        }
        if (waiting) {
          wait = Math.min(wait, row.nextAttemptAt.getTime());
          continue;
        }
        try {
          await this.apply(row);
          await this.o.store.markOutboxDone(row.id, this.o.clock.now());
          progressed = true;
        } catch (e) {
          const failure = peerFailureOf(e);
          const next = await this.recordFailure(row, e, failure);
          wait = Math.min(wait, next.getTime());
          if (peerIsDown(failure)) {
            this.blockedUntil.set(peer, next.getTime());
            return;
          }
        }
      }
      // Nothing could move: the peer waits for its earliest due row.
      if (!progressed && wait < Number.POSITIVE_INFINITY) this.blockedUntil.set(peer, wait);
    }
  }

  /** New rows for these peers: they need not wait for another service's backoff. */
  nudge(peers: Iterable<string>): void {
    const tracing = this.o.tracing;
    for (const p of peers) {
      this.blockedUntil.delete(p);
      if (tracing?.enabled) this.queuedIn.set(p, tracing.captureContext());
    }
    this.wake();
  }

  /**
   * A peer's drain in the trace of the request that queued its changes (when this process
   * saw it), else in none: never in whatever context the pass happened to start in.
   */
  private drainTraced(peer: string): Promise<void> {
    const tracing = this.o.tracing;
    if (!tracing?.enabled) return this.drainPeer(peer);
    const captured = this.queuedIn.get(peer);
    this.queuedIn.delete(peer);
    return tracing.withContext(captured, () => this.drainPeer(peer));
  }

  /** A failed attempt: recorded with its kind, retried after a backoff; resolves to when. */
  private async recordFailure(
    row: Pick<OutboxRow, 'id' | 'peer' | 'service' | 'op' | 'attempts'>,
    e: unknown,
    failure: PeerFailure,
  ): Promise<Date> {
    const message = (e as Error).message;
    const delay = backoffMs(row.attempts, this.o.baseDelayMs ?? 250, this.o.maxDelayMs ?? 5000);
    const next = new Date(this.o.clock.now().getTime() + delay);
    await this.o.store.markOutboxRetry(row.id, message, next, failure.kind);
    if (row.attempts === 0 || row.attempts % 20 === 0) {
      this.o.logger.warn(
        { peer: row.peer, service: row.service, op: row.op, attempts: row.attempts + 1, err: message },
        'outbox change not applied yet; will retry',
      );
    }
    return next;
  }

  // ---------------------------------------------------------------- applied at once

  /**
   * Until when rows about to be applied at once are kept from the background drain (and
   * from another instance's): long enough for every call applyNow makes for them, so the
   * drain takes a row over only from a process that died while applying it.
   */
  holdUntil(rows: number): Date {
    const rounds = Math.ceil(Math.max(1, rows) / (this.o.nowConcurrency ?? 32));
    const ms = (this.o.callTimeoutMs ?? 10_000) * (2 * rounds + 2);
    return new Date(this.o.clock.now().getTime() + ms);
  }

  /**
   * Applies persisted rows now (in parallel, as the drain would one by one) and records each
   * outcome on its row: done, or failed with its kind and then retried in the background or
   * abandoned. Resolves to the outcomes, in the rows' order.
   */
  async applyNow(rows: readonly StoredChange[], opts: ApplyNowOptions): Promise<ChangeOutcome[]> {
    const q = new PQueue({ concurrency: this.o.nowConcurrency ?? 32 });
    const outcomes = await Promise.all(
      rows.map(
        (row) =>
          q.add(async (): Promise<ChangeOutcome> => {
            try {
              await this.apply(row, opts.via);
              return { ok: true };
            } catch (error) {
              return { ok: false, error, failure: peerFailureOf(error) };
            }
          }) as Promise<ChangeOutcome>,
      ),
    );
    const now = this.o.clock.now();
    const failed = rows.filter((_, i) => !outcomes[i].ok);
    await this.o.store.markOutboxDone(
      rows.filter((_, i) => outcomes[i].ok).map((r) => r.id),
      now,
    );
    if (opts.onFailure === 'abandon') {
      await this.o.store.markOutboxDone(
        failed.map((r) => r.id),
        SUPERSEDED_AT,
      );
    } else {
      for (const [i, row] of rows.entries()) {
        const o = outcomes[i];
        if (!o.ok) await this.recordFailure({ ...row, attempts: 0 }, o.error, o.failure);
      }
      if (failed.length) this.nudge(new Set(failed.map((r) => r.peer)));
    }
    return outcomes;
  }

  /**
   * The atomic create's check, before anything is stored: each member is reachable, accepts
   * the credentials and says whether it holds the service's name already (one read each).
   */
  async preflight(
    checks: ReadonlyArray<{ target: PeerTarget; service: string }>,
    via?: PeerTarget['auth'],
  ): Promise<PreflightOutcome[]> {
    const q = new PQueue({ concurrency: this.o.nowConcurrency ?? 32 });
    return Promise.all(
      checks.map(
        (c) =>
          q.add(async (): Promise<PreflightOutcome> => {
            try {
              const signal = AbortSignal.timeout(this.o.callTimeoutMs ?? 10_000);
              const target = await this.callable(c.target, via);
              return { ok: true, present: !!(await this.o.peers.getService(target, c.service, signal)) };
            } catch (error) {
              return { ok: false, error, failure: peerFailureOf(error) };
            }
          }) as Promise<PreflightOutcome>,
      ),
    );
  }

  // ---------------------------------------------------------------- one change

  /** A kept target made ready to call: the caller's credentials, or the owner's token minted. */
  private async callable(target: PeerTarget, via?: PeerTarget['auth']): Promise<PeerTarget> {
    if (via && target.auth.kind === 'service-owner') return { ...target, auth: via };
    return this.o.ownerToken ? this.o.ownerToken.resolveTarget(target) : target;
  }

  /** One row sent to its peer, in its own span (no payload, target or credentials in it). */
  private apply(row: AppliedRow, via?: PeerTarget['auth']): Promise<void> {
    const attributes = {
      'flotilla.outbox.op': row.op,
      'flotilla.peer': row.peer,
      'flotilla.service': row.service,
      'flotilla.revision': row.revision,
    };
    return (this.o.tracing ?? NO_TRACING).inSpan('outbox.send', 'client', attributes, () =>
      this.audited(row, via),
    );
  }

  /** One change, with its audit row (the request is kept only as the hash of what was sent). */
  private async audited(row: AppliedRow, via?: PeerTarget['auth']) {
    const started = this.o.clock.now();
    const t0 = performance.now();
    let outcome: AuditEntry['outcome'] = 'ok';
    try {
      await this.send(row, via);
    } catch (e) {
      outcome = peerFailureOf(e).kind === 'refused' ? 'denied' : 'error';
      throw e;
    } finally {
      if (this.o.audit) this.recordChange(this.o.audit, row, started, outcome, performance.now() - t0);
    }
  }

  /** The audit row of one change (its definition kept only as its hash and size). */
  private recordChange(
    audit: NonNullable<OutboxWorkerOptions['audit']>,
    row: AppliedRow,
    started: Date,
    outcome: AuditEntry['outcome'],
    elapsedMs: number,
  ): void {
    const auth = row.target.auth;
    const who = auth.kind === 'peer' ? this.o.grantOf?.(auth.peer) : undefined;
    // One serialisation of the definition gives both its hash and its size.
    const digest = requestDigest({
      method: row.op,
      url: `${row.target.clusterId}/${row.service}#${row.revision}`,
      body: row.payload,
    });
    audit.record({
      at: started,
      grantId: who?.grantId ?? null,
      peer: row.peer,
      subject: who?.subject ?? null,
      verb: row.op,
      resource: `services/${row.service}`,
      queryHash: digest.queryHash,
      outcome,
      bytesOut: row.payload ? digest.bodyBytes : 0,
      latencyMs: Math.round(elapsedMs * 1000) / 1000,
      traceId: this.o.tracing?.traceId() ?? null,
    });
  }

  private async send(row: AppliedRow, via?: PeerTarget['auth']) {
    const signal = AbortSignal.timeout(this.o.callTimeoutMs ?? 10_000);
    const target = await this.callable(row.target, via);
    if (row.op === 'delete') {
      await this.o.peers.deleteService(target, row.service, signal);
      return;
    }
    const payload = this.o.ownerToken?.openForSending(row.payload ?? {}) ?? row.payload ?? {};
    if (row.op === 'create') await this.create(target, payload, signal);
    // 'update', and 'upsert' from rows written before creates had an op of their own.
    else await this.update(target, payload, signal, row);
  }

  private async create(t: PeerTarget, payload: Record<string, unknown>, signal: AbortSignal): Promise<void> {
    const { peers } = this.o;
    try {
      await peers.createService(t, payload, signal);
    } catch (e) {
      if (!(isFlotillaError(e) && e.code === 'SERVICE_EXISTS')) throw e;
      // Made by an earlier attempt whose answer was lost: bring it up to date.
      try {
        await peers.updateService(t, payload, signal);
      } catch (e2) {
        if (isFlotillaError(e2) && e2.code === 'STALE_REVISION') return;
        // Not this federation's worker either: the create's own refusal says what is there.
        throw peerFailureOf(e2).kind === 'conflict' ? e : e2;
      }
    }
  }

  private async update(
    t: PeerTarget,
    payload: Record<string, unknown>,
    signal: AbortSignal,
    row: AppliedRow,
  ): Promise<void> {
    const { peers } = this.o;
    try {
      await peers.updateService(t, payload, signal);
    } catch (e) {
      if (isFlotillaError(e) && (e.code === 'SERVICE_NOT_FOUND' || e.code === 'NOT_FOUND')) {
        // Gone because its coordinator was deleted after this change was planned: done.
        if (await this.o.store.deletedAbove(row)) return;
        try {
          await peers.createService(t, payload, signal);
        } catch (e2) {
          // Created meanwhile by an earlier attempt that timed out: update it.
          if (isFlotillaError(e2) && e2.code === 'SERVICE_EXISTS')
            await peers.updateService(t, payload, signal);
          else throw e2;
        }
        return;
      }
      if (isFlotillaError(e) && e.code === 'STALE_REVISION') return;
      throw e;
    }
  }
}
