// The Store port over a Drizzle Postgres database. PGlite and node-postgres give the same
// query API, so both adapters share this code and differ only in how they connect.
import {
  and,
  asc,
  count,
  desc,
  eq,
  getTableColumns,
  gt,
  gte,
  inArray,
  isNotNull,
  isNull,
  lt,
  lte,
  or,
  type SQL,
  sql,
} from 'drizzle-orm';
import type { PgDatabase } from 'drizzle-orm/pg-core';
import type { DelegationDecision } from '../../core/delegation/decision.ts';
import type { HoldState } from '../../core/delegation/hand-over.ts';
import { FlotillaError } from '../../core/errors.ts';
import type { Service } from '../../core/fdl/service.ts';
import type {
  BucketRecord,
  JobPage,
  JobRecord,
  JobStatus,
  JobSummary,
  MirroredState,
  NewJob,
  NewOutboxRow,
  OutboxRow,
  OutboxSyncRow,
  PeerTarget,
  Store,
  TextHit,
  TextSearch,
} from '../../core/ports.ts';
import { SqlAuditStore } from './audit-store.ts';
import { buckets, jobs, outbox, services, settings } from './schema.ts';
import { SqlTrustStore } from './trust-store.ts';

// Both drivers' query-result types differ, so the database type stays open.
export type AnyPgDatabase = PgDatabase<any, any, any>;

const UNIQUE_VIOLATION = '23505';

const isUniqueViolation = (e: unknown): boolean => {
  const err = e as { code?: string; cause?: { code?: string } };
  return err?.code === UNIQUE_VIOLATION || err?.cause?.code === UNIQUE_VIOLATION;
};

type BucketRow = typeof buckets.$inferSelect;

const toBucket = (r: BucketRow): BucketRecord => ({
  name: r.name,
  owner: r.owner,
  visibility: r.visibility as BucketRecord['visibility'],
  allowedUsers: Array.isArray(r.allowedUsers) ? r.allowedUsers : [],
  createdBy: r.createdByService,
});

type JobRow = typeof jobs.$inferSelect;

/** Not a held hand-over: a held job is stored but never claimed, run or sent on (ADR 13). */
const runnable = or(isNull(jobs.holdState), eq(jobs.holdState, 'confirmed'));

const toJob = (r: JobRow): JobRecord => ({
  id: r.id,
  service: r.service,
  status: r.status as JobStatus,
  event: r.event instanceof Uint8Array ? r.event : new Uint8Array(r.event as ArrayBuffer),
  owner: r.owner,
  cpuMillis: r.cpuMillis,
  memoryBytes: Number(r.memoryBytes),
  createdAt: r.createdAt,
  startedAt: r.startedAt,
  finishedAt: r.finishedAt,
  exitCode: r.exitCode,
  reason: r.reason,
  log: r.log,
  delegatedTo: r.delegatedTo,
  delegatedId: r.delegatedId,
  remoteJobId: r.remoteJobId,
  originCluster: r.originCluster,
  originToken: r.originToken,
  attempts: r.attempts,
  delegation: (r.delegation as DelegationDecision | null) ?? null,
  holdState: (r.holdState as HoldState | null) ?? null,
  heldUntil: r.heldUntil ?? null,
  confirmPending: r.confirmPending ?? false,
});

// Scheduling reads many rows often: leave the event bytes, the log and the decision in the table.
const { event: _event, log: _log, delegation: _delegation, ...SUMMARY_COLUMNS } = getTableColumns(jobs);

const toSummary = (r: Omit<JobRow, 'event' | 'log' | 'delegation'>): JobSummary => {
  const {
    event: _e,
    log: _l,
    delegation: _d,
    ...rest
  } = toJob({ ...r, event: new Uint8Array(0), log: null, delegation: null } as JobRow);
  return rest;
};

type OutboxDbRow = typeof outbox.$inferSelect;
// What sync states read of a row: all but its definition and target.
const { payload: _payload, target: _target, ...SYNC_COLUMNS } = getTableColumns(outbox);

const toSyncRow = (r: Omit<OutboxDbRow, 'payload' | 'target'>): OutboxSyncRow => ({
  id: Number(r.id),
  peer: r.peer,
  service: r.service,
  op: r.op as OutboxRow['op'],
  group: r.group,
  revision: r.revision,
  state: r.state as OutboxRow['state'],
  attempts: r.attempts,
  nextAttemptAt: r.nextAttemptAt,
  lastError: r.lastError,
  lastErrorKind: (r.lastErrorKind as OutboxRow['lastErrorKind']) ?? null,
  createdAt: r.createdAt,
  doneAt: r.doneAt,
});

const toOutbox = (r: OutboxDbRow): OutboxRow => ({
  ...toSyncRow(r),
  payload: (r.payload as Record<string, unknown> | null) ?? null,
  target: r.target as PeerTarget,
});

/** The rows of a raw statement: node-postgres answers `{ rows }`, PGlite's driver the rows. */
const rowsOf = <T>(result: unknown): T[] => (result as { rows?: T[] }).rows ?? (result as T[]);

const encodeCursor = (seq: number): string => Buffer.from(String(seq)).toString('base64url');
const decodeCursor = (cursor: string): number | undefined => {
  const n = Number(Buffer.from(cursor, 'base64url').toString());
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
};

export abstract class SqlStore implements Store {
  abstract readonly kind: 'pglite' | 'postgres';
  readonly trust: SqlTrustStore;
  readonly audit: SqlAuditStore;
  /** `soleWriter`: no other process writes this database (PGlite owns its data dir). */
  protected constructor(
    protected readonly db: AnyPgDatabase,
    opts: { soleWriter?: boolean } = {},
  ) {
    this.trust = new SqlTrustStore(db);
    this.audit = new SqlAuditStore(db, opts);
  }
  abstract close(): Promise<void>;

  // ------------------------------------------------------------ services

  async createService(service: Service, queue: NewOutboxRow[] = []): Promise<number[]> {
    try {
      if (queue.length > 0) {
        // An insert either writes its row or throws.
        const ids = await this.writeWithOutbox(
          sql`INSERT INTO ${services} (name, owner, definition)
            VALUES (${service.name}, ${service.owner}, ${JSON.stringify(service)}::jsonb) RETURNING name`,
          queue,
        );
        return ids ?? [];
      }
      await this.db
        .insert(services)
        .values({ name: service.name, owner: service.owner, definition: service });
      return [];
    } catch (e) {
      if (isUniqueViolation(e))
        throw new FlotillaError('SERVICE_EXISTS', `service "${service.name}" already exists`);
      throw e;
    }
  }

  async updateService(service: Service, queue: NewOutboxRow[] = []): Promise<number[]> {
    const missing = () => new FlotillaError('SERVICE_NOT_FOUND', `service "${service.name}" not found`);
    if (queue.length > 0) {
      const ids = await this.writeWithOutbox(
        sql`UPDATE ${services} SET owner = ${service.owner}, definition = ${JSON.stringify(service)}::jsonb,
          updated_at = now() WHERE name = ${service.name} RETURNING name`,
        queue,
      );
      if (!ids) throw missing();
      return ids;
    }
    const rows = await this.db
      .update(services)
      .set({ owner: service.owner, definition: service, updatedAt: new Date() })
      .where(eq(services.name, service.name))
      .returning({ name: services.name });
    if (rows.length === 0) throw missing();
    return [];
  }

  async getService(name: string): Promise<Service | undefined> {
    const rows = await this.db.select().from(services).where(eq(services.name, name));
    return rows[0]?.definition as Service | undefined;
  }

  async listServices(): Promise<Service[]> {
    const rows = await this.db.select().from(services).orderBy(asc(services.name));
    return rows.map((r) => r.definition as Service);
  }

  async deleteService(name: string, queue: NewOutboxRow[] = []): Promise<number[] | undefined> {
    if (queue.length > 0) {
      return this.writeWithOutbox(sql`DELETE FROM ${services} WHERE name = ${name} RETURNING name`, queue);
    }
    const rows = await this.db
      .delete(services)
      .where(eq(services.name, name))
      .returning({ name: services.name });
    return rows.length > 0 ? [] : undefined;
  }

  // ------------------------------------------------------------ settings

  async getSetting(key: string): Promise<string | undefined> {
    const rows = await this.db.select().from(settings).where(eq(settings.key, key));
    return rows[0]?.value;
  }

  async setSetting(key: string, value: string): Promise<void> {
    await this.db
      .insert(settings)
      .values({ key, value })
      .onConflictDoUpdate({ target: settings.key, set: { value } });
  }

  async pruneSettings(prefix: string, before: Date): Promise<number> {
    // left() rather than LIKE: a prefix needs no escaping; CASE: a value that is no time is kept.
    const rows = await this.db
      .delete(settings)
      .where(
        sql`left(${settings.key}, ${prefix.length}) = ${prefix} AND CASE WHEN ${settings.value} ~ '^[0-9]{1,15}$'
          THEN ${settings.value}::bigint < ${before.getTime()} ELSE false END`,
      )
      .returning({ key: settings.key });
    return rows.length;
  }

  async setSettingIfAbsent(key: string, value: string): Promise<string> {
    await this.db.insert(settings).values({ key, value }).onConflictDoNothing({ target: settings.key });
    return (await this.getSetting(key)) as string;
  }

  // ------------------------------------------------------------ buckets

  async claimBucket(record: BucketRecord): Promise<BucketRecord> {
    await this.db
      .insert(buckets)
      .values({
        name: record.name,
        owner: record.owner,
        visibility: record.visibility,
        allowedUsers: record.allowedUsers,
        createdByService: record.createdBy,
      })
      .onConflictDoNothing({ target: buckets.name });
    // First claim wins: whoever lost reads the winner's row.
    return (await this.getBucket(record.name)) as BucketRecord;
  }

  async getBucket(name: string): Promise<BucketRecord | undefined> {
    const rows = await this.db.select().from(buckets).where(eq(buckets.name, name));
    return rows[0] ? toBucket(rows[0]) : undefined;
  }

  async listBucketRecords(): Promise<BucketRecord[]> {
    return (await this.db.select().from(buckets).orderBy(asc(buckets.name))).map(toBucket);
  }

  async updateBucket(
    name: string,
    patch: Partial<Pick<BucketRecord, 'visibility' | 'allowedUsers' | 'createdBy'>>,
  ): Promise<boolean> {
    const set: Partial<typeof buckets.$inferInsert> = {};
    if (patch.visibility !== undefined) set.visibility = patch.visibility;
    if (patch.allowedUsers !== undefined) set.allowedUsers = patch.allowedUsers;
    if (patch.createdBy !== undefined) set.createdByService = patch.createdBy;
    if (Object.keys(set).length === 0) return (await this.getBucket(name)) !== undefined;
    const rows = await this.db
      .update(buckets)
      .set(set)
      .where(eq(buckets.name, name))
      .returning({ name: buckets.name });
    return rows.length > 0;
  }

  async deleteBucketRecord(name: string): Promise<boolean> {
    const rows = await this.db
      .delete(buckets)
      .where(eq(buckets.name, name))
      .returning({ name: buckets.name });
    return rows.length > 0;
  }

  async bucketsCreatedBy(service: string): Promise<BucketRecord[]> {
    const rows = await this.db
      .select()
      .from(buckets)
      .where(eq(buckets.createdByService, service))
      .orderBy(asc(buckets.name));
    return rows.map(toBucket);
  }

  // ------------------------------------------------------------ jobs

  /** A raw parameterised query on the adapter's own client (hot paths skip the query builder). */
  protected abstract rawQuery<R>(text: string, params: unknown[]): Promise<R[]>;

  async insertJobs(newJobs: NewJob[]): Promise<string[]> {
    if (newJobs.length === 0) return [];
    // One statement of a dozen array parameters, whatever the batch size: building a
    // multi-row VALUES list through the query builder cost more than the insert itself.
    const col = <T>(f: (j: NewJob) => T) => newJobs.map(f);
    const inserted = await this.rawQuery<{ id: string; delegated_id: string | null }>(
      `INSERT INTO jobs (id, service, status, event, owner, cpu_millis, memory_bytes, created_at,
                         delegated_id, delegated_to, origin_cluster, origin_token, hold_state, held_until,
                         reason, finished_at)
       SELECT id, service, status, decode(event_hex, 'hex'), owner, cpu, mem, created, did, dto, oc, ot,
              hs, hu, rs, CASE WHEN status IN ('Succeeded', 'Failed') THEN created END
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::bigint[],
                   $8::timestamptz[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],
                   $14::timestamptz[], $15::text[])
         AS t(id, service, status, event_hex, owner, cpu, mem, created, did, dto, oc, ot, hs, hu, rs)
       ON CONFLICT DO NOTHING
       RETURNING id, delegated_id`,
      [
        col((j) => j.id),
        col((j) => j.service),
        col((j) => j.status ?? 'Pending'),
        col((j) => Buffer.from(j.event.buffer, j.event.byteOffset, j.event.byteLength).toString('hex')),
        col((j) => j.owner),
        col((j) => j.cpuMillis),
        col((j) => j.memoryBytes),
        col((j) => (j.createdAt ?? new Date()).toISOString()),
        col((j) => j.delegatedId ?? null),
        col((j) => j.delegatedTo ?? null),
        col((j) => j.originCluster ?? null),
        col((j) => j.originToken ?? null),
        col((j) => j.holdState ?? null),
        col((j) => j.heldUntil?.toISOString() ?? null),
        col((j) => j.reason ?? null),
      ],
    );
    if (inserted.length === newJobs.length) return newJobs.map((j) => j.id);
    // Some delegated ids were seen before: answer with the job that already holds each.
    const dedupeIds = newJobs.map((j) => j.delegatedId).filter((d): d is string => !!d);
    const held = dedupeIds.length
      ? await this.db
          .select({ id: jobs.id, delegatedId: jobs.delegatedId })
          .from(jobs)
          .where(inArray(jobs.delegatedId, dedupeIds))
      : [];
    const byDelegated = new Map(held.map((h) => [h.delegatedId, h.id]));
    return newJobs.map((j) => (j.delegatedId ? (byDelegated.get(j.delegatedId) ?? j.id) : j.id));
  }

  async runnersWithRunningJobs(): Promise<string[]> {
    const rows = await this.db
      .selectDistinct({ runner: jobs.runner })
      .from(jobs)
      .where(and(eq(jobs.status, 'Running'), isNull(jobs.delegatedTo), isNotNull(jobs.runner)));
    return rows.map((r) => r.runner as string);
  }

  async runningJobsOf(runner: string): Promise<JobSummary[]> {
    const rows = await this.db
      .select(SUMMARY_COLUMNS)
      .from(jobs)
      .where(and(eq(jobs.status, 'Running'), isNull(jobs.delegatedTo), eq(jobs.runner, runner)))
      .orderBy(asc(jobs.seq));
    return rows.map(toSummary);
  }

  async getJobs(ids: string[]): Promise<JobSummary[]> {
    if (ids.length === 0) return [];
    const rows = await this.db.select(SUMMARY_COLUMNS).from(jobs).where(inArray(jobs.id, ids));
    return rows.map(toSummary);
  }

  async getJob(id: string): Promise<JobRecord | undefined> {
    const rows = await this.db.select().from(jobs).where(eq(jobs.id, id));
    return rows[0] ? toJob(rows[0]) : undefined;
  }

  async listJobs(
    service: string,
    opts: { cursor?: string | null; limit: number; owner?: string },
  ): Promise<JobPage> {
    const before = opts.cursor ? decodeCursor(opts.cursor) : undefined;
    // Another user of a public service lists only the jobs they submitted.
    const mine =
      opts.owner !== undefined
        ? and(eq(jobs.service, service), eq(jobs.owner, opts.owner))
        : eq(jobs.service, service);
    const where = before ? and(mine, lt(jobs.seq, before)) : mine;
    const rows = await this.db
      .select()
      .from(jobs)
      .where(where)
      .orderBy(desc(jobs.seq))
      .limit(opts.limit + 1);
    const page = rows.slice(0, opts.limit);
    if (rows.length <= opts.limit) return { jobs: page.map(toJob), next: null, remaining: 0 };
    const last = page[page.length - 1].seq;
    const [{ n }] = await this.db
      .select({ n: count() })
      .from(jobs)
      .where(and(mine, lt(jobs.seq, last)));
    return { jobs: page.map(toJob), next: encodeCursor(last), remaining: Number(n) };
  }

  async claimJob(id: string, at: Date, runner?: string): Promise<boolean> {
    const rows = await this.db
      .update(jobs)
      .set({ status: 'Running', startedAt: at, runner: runner ?? null, attempts: sql`${jobs.attempts} + 1` })
      .where(and(eq(jobs.id, id), eq(jobs.status, 'Pending'), runnable))
      .returning({ id: jobs.id });
    return rows.length > 0;
  }

  async finishJob(
    id: string,
    r: {
      status: 'Succeeded' | 'Failed';
      at: Date;
      exitCode: number | null;
      reason: string | null;
      log: string;
    },
  ): Promise<void> {
    await this.db
      .update(jobs)
      .set({ status: r.status, finishedAt: r.at, exitCode: r.exitCode, reason: r.reason, log: r.log })
      .where(eq(jobs.id, id));
  }

  async pendingJobs(limit: number): Promise<JobSummary[]> {
    const rows = await this.db
      .select(SUMMARY_COLUMNS)
      .from(jobs)
      .where(and(eq(jobs.status, 'Pending'), isNull(jobs.delegatedTo), runnable))
      .orderBy(asc(jobs.seq))
      .limit(limit);
    return rows.map(toSummary);
  }

  async releaseJob(id: string): Promise<void> {
    await this.db
      .update(jobs)
      .set({ status: 'Pending', startedAt: null })
      .where(and(eq(jobs.id, id), eq(jobs.status, 'Running')));
  }

  async markDelegated(
    id: string,
    clusterId: string,
    remoteJobId: string,
    opts: { confirmPending?: boolean } = {},
  ): Promise<void> {
    await this.db
      .update(jobs)
      .set({
        ...(opts.confirmPending ? {} : { status: 'Pending', startedAt: null }),
        delegatedTo: clusterId,
        remoteJobId,
        confirmPending: opts.confirmPending ?? false,
      })
      .where(eq(jobs.id, id));
  }

  async recordDelegation(id: string, decision: DelegationDecision): Promise<void> {
    await this.db.update(jobs).set({ delegation: decision }).where(eq(jobs.id, id));
  }

  async confirmedDelegation(id: string): Promise<void> {
    await this.db
      .update(jobs)
      .set({ status: 'Pending', startedAt: null, confirmPending: false })
      .where(and(eq(jobs.id, id), eq(jobs.confirmPending, true)));
  }

  async takeBackDelegation(id: string, status: 'Running' | 'Pending'): Promise<boolean> {
    const rows = await this.db
      .update(jobs)
      .set({
        status,
        ...(status === 'Pending' ? { startedAt: null } : {}),
        delegatedTo: null,
        remoteJobId: null,
        confirmPending: false,
      })
      .where(and(eq(jobs.id, id), eq(jobs.confirmPending, true)))
      .returning({ id: jobs.id });
    return rows.length > 0;
  }

  async getJobByDelegatedId(delegatedId: string): Promise<JobRecord | undefined> {
    const rows = await this.db.select().from(jobs).where(eq(jobs.delegatedId, delegatedId));
    return rows[0] ? toJob(rows[0]) : undefined;
  }

  async confirmHold(id: string, now: Date): Promise<boolean> {
    // One conditional update decides between a confirm and an expiry: never both.
    const rows = await this.db
      .update(jobs)
      .set({ holdState: 'confirmed' })
      .where(and(eq(jobs.id, id), eq(jobs.holdState, 'held'), gt(jobs.heldUntil, now)))
      .returning({ id: jobs.id });
    return rows.length > 0;
  }

  async confirmHoldOf(
    delegatedId: string,
    caller: { service: string; owner: string; originCluster: string },
    now: Date,
  ): Promise<string | undefined> {
    const rows = await this.db
      .update(jobs)
      .set({ holdState: 'confirmed' })
      .where(
        and(
          eq(jobs.delegatedId, delegatedId),
          eq(jobs.service, caller.service),
          eq(jobs.owner, caller.owner),
          eq(jobs.originCluster, caller.originCluster),
          eq(jobs.holdState, 'held'),
          gt(jobs.heldUntil, now),
        ),
      )
      .returning({ id: jobs.id });
    return rows[0]?.id;
  }

  async dropHold(id: string, reason: string, now: Date): Promise<boolean> {
    const rows = await this.db
      .update(jobs)
      .set({ holdState: 'dropped', status: 'Failed', finishedAt: now, reason })
      .where(and(eq(jobs.id, id), eq(jobs.holdState, 'held')))
      .returning({ id: jobs.id });
    return rows.length > 0;
  }

  async dropExpiredHolds(reason: string, now: Date): Promise<string[]> {
    const rows = await this.db
      .update(jobs)
      .set({ holdState: 'dropped', status: 'Failed', finishedAt: now, reason })
      .where(and(eq(jobs.holdState, 'held'), lte(jobs.heldUntil, now)))
      .returning({ id: jobs.id });
    return rows.map((r) => r.id);
  }

  async delegatedActiveJobs(limit: number): Promise<JobRecord[]> {
    const rows = await this.db
      .select()
      .from(jobs)
      .where(and(isNotNull(jobs.delegatedTo), inArray(jobs.status, ['Pending', 'Running'])))
      .orderBy(asc(jobs.seq))
      .limit(limit);
    return rows.map(toJob);
  }

  async mirrorDelegated(id: string, m: MirroredState): Promise<void> {
    await this.db
      .update(jobs)
      .set({
        status: m.status,
        startedAt: m.startedAt,
        finishedAt: m.finishedAt,
        log: m.log,
        reason: m.reason,
        exitCode: m.exitCode,
      })
      .where(eq(jobs.id, id));
  }

  async failRunningJobs(reason: string, at: Date, runner?: string): Promise<string[]> {
    // Delegated jobs mirror a remote status: they are not running here.
    const running = and(eq(jobs.status, 'Running'), isNull(jobs.delegatedTo));
    const rows = await this.db
      .update(jobs)
      .set({ status: 'Failed', finishedAt: at, reason })
      .where(runner ? and(running, eq(jobs.runner, runner)) : running)
      .returning({ id: jobs.id });
    return rows.map((r) => r.id);
  }

  async deleteJob(id: string): Promise<boolean> {
    const rows = await this.db.delete(jobs).where(eq(jobs.id, id)).returning({ id: jobs.id });
    return rows.length > 0;
  }

  async deleteJobs(service: string, opts: { all: boolean; owner?: string }): Promise<number> {
    const ofService =
      opts.owner !== undefined
        ? and(eq(jobs.service, service), eq(jobs.owner, opts.owner))
        : eq(jobs.service, service);
    const where = opts.all ? ofService : and(ofService, inArray(jobs.status, ['Succeeded', 'Failed']));
    const rows = await this.db.delete(jobs).where(where).returning({ id: jobs.id });
    return rows.length;
  }

  async countJobs(): Promise<Record<JobStatus, number>> {
    const rows = await this.db.select({ status: jobs.status, n: count() }).from(jobs).groupBy(jobs.status);
    const out: Record<JobStatus, number> = { Pending: 0, Running: 0, Succeeded: 0, Failed: 0 };
    for (const r of rows) out[r.status as JobStatus] = Number(r.n);
    return out;
  }

  // ------------------------------------------------------------ outbox

  async enqueueOutbox(rows: NewOutboxRow[]): Promise<number[]> {
    if (rows.length === 0) return [];
    const result = await this.db.execute(this.outboxInsert(rows));
    return this.insertedIds(rowsOf<{ id: string | number }>(result), rows.length);
  }

  /**
   * A service write (a statement `RETURNING name`) and the outbox rows it carries, in one
   * statement: the rows are stored only when the write touched a service, and a row the
   * database refuses fails the write too. The rows' ids, or undefined when no service was touched.
   */
  private async writeWithOutbox(write: SQL, rows: NewOutboxRow[]): Promise<number[] | undefined> {
    const result = await this.db.execute(sql`
      WITH written AS (${write}), queued AS (${this.outboxInsert(rows, true)})
      SELECT w.n AS written, q.id FROM (SELECT count(*)::int AS n FROM written) w LEFT JOIN queued q ON true`);
    const out = rowsOf<{ written: number | string; id: string | number | null }>(result);
    if (Number(out[0]?.written ?? 0) === 0) return undefined;
    return this.insertedIds(out as Array<{ id: string | number }>, rows.length);
  }

  /** One statement with one JSON parameter for the whole plan (as the audit's batches): a
   * mesh's plan is N rows of N-long definitions, and bound parameters cost far more to build.
   * `afterWrite`: one row per service the CTE `written` touched (none: nothing inserted). */
  private outboxInsert(rows: NewOutboxRow[], afterWrite = false): SQL {
    const json = JSON.stringify(
      rows.map((r, i) => ({
        ord: i,
        peer: r.peer,
        service: r.service,
        op: r.op,
        payload: r.payload ?? null,
        target: r.target,
        group_name: r.group,
        revision: r.revision,
        next_attempt_at: r.notBefore?.toISOString() ?? null,
      })),
    );
    return sql`
      INSERT INTO ${outbox} (peer, service, op, payload, target, group_name, revision, state, next_attempt_at)
      SELECT peer, service, op, payload, target, group_name, revision, 'pending', coalesce(next_attempt_at, now())
      FROM json_to_recordset(${json}::json) AS r(ord int, peer text, service text, op text, payload jsonb,
        target jsonb, group_name text, revision int, next_attempt_at timestamptz)${afterWrite ? sql`, written` : sql``}
      ORDER BY ord
      RETURNING id`;
  }

  /** Identity values are taken in insertion order, which is the rows' order. */
  private insertedIds(rows: Array<{ id: string | number }>, expected: number): number[] {
    const ids = rows.map((r) => Number(r.id)).sort((a, b) => a - b);
    if (ids.length !== expected) throw new Error(`outbox insert stored ${ids.length} of ${expected} rows`);
    return ids;
  }

  async duePeers(now: Date): Promise<string[]> {
    const rows = await this.db
      .selectDistinct({ peer: outbox.peer })
      .from(outbox)
      .where(and(eq(outbox.state, 'pending'), lte(outbox.nextAttemptAt, now)));
    return rows.map((r) => r.peer);
  }

  async headsOfPeer(peer: string): Promise<OutboxRow[]> {
    const rows = await this.db
      .selectDistinctOn([outbox.service])
      .from(outbox)
      .where(and(eq(outbox.peer, peer), eq(outbox.state, 'pending')))
      .orderBy(asc(outbox.service), asc(outbox.id));
    return rows.map(toOutbox).sort((a, b) => a.id - b.id);
  }

  async hasLaterRow(row: Pick<OutboxRow, 'id' | 'peer' | 'service' | 'revision'>): Promise<boolean> {
    const rows = await this.db
      .select({ id: outbox.id })
      .from(outbox)
      .where(
        and(
          eq(outbox.peer, row.peer),
          eq(outbox.service, row.service),
          eq(outbox.state, 'pending'),
          gt(outbox.id, row.id),
          gte(outbox.revision, row.revision),
        ),
      )
      .limit(1);
    return rows.length > 0;
  }

  async deletedAbove(row: Pick<OutboxRow, 'id' | 'peer' | 'service' | 'revision'>): Promise<boolean> {
    // Applied at the peer: a superseded row is marked done at SUPERSEDED_AT (the epoch). A
    // create applied after the delete (a federation made again) makes the worker one to keep.
    const result = await this.db.execute(sql`
      SELECT 1 FROM outbox d
      WHERE d.peer = ${row.peer} AND d.service = ${row.service} AND d.op = 'delete'
        AND d.state = 'done' AND d.done_at > to_timestamp(0)
        AND d.id < ${row.id} AND d.revision > ${row.revision}
        AND NOT EXISTS (
          SELECT 1 FROM outbox c
          WHERE c.peer = d.peer AND c.service = d.service AND c.op = 'create'
            AND c.state = 'done' AND c.done_at > to_timestamp(0)
            AND c.id > d.id AND c.id < ${row.id})
      LIMIT 1`);
    return rowsOf(result).length > 0;
  }

  async markOutboxDone(id: number | readonly number[], at: Date): Promise<void> {
    const ids = typeof id === 'number' ? [id] : [...id];
    if (ids.length === 0) return;
    await this.db
      .update(outbox)
      .set({ state: 'done', doneAt: at, lastError: null, lastErrorKind: null })
      .where(ids.length === 1 ? eq(outbox.id, ids[0]) : inArray(outbox.id, ids));
  }

  async markOutboxRetry(
    id: number,
    error: string,
    nextAttemptAt: Date,
    kind: NonNullable<OutboxRow['lastErrorKind']>,
  ): Promise<void> {
    await this.db
      .update(outbox)
      .set({
        attempts: sql`${outbox.attempts} + 1`,
        lastError: error.slice(0, 1000),
        lastErrorKind: kind,
        nextAttemptAt,
      })
      .where(eq(outbox.id, id));
  }

  async outboxOfGroup(group: string): Promise<OutboxRow[]> {
    const rows = await this.db
      .select()
      .from(outbox)
      .where(eq(outbox.group, group))
      .orderBy(desc(outbox.id))
      .limit(2000);
    return rows.map(toOutbox);
  }

  async syncRowsOfGroup(group: string): Promise<OutboxSyncRow[]> {
    const rows = await this.db
      .select(SYNC_COLUMNS)
      .from(outbox)
      .where(eq(outbox.group, group))
      .orderBy(desc(outbox.id))
      .limit(2000);
    return rows.map(toSyncRow);
  }

  async pendingOutboxCount(): Promise<number> {
    const [{ n }] = await this.db.select({ n: count() }).from(outbox).where(eq(outbox.state, 'pending'));
    return Number(n);
  }

  async pruneOutbox(before: Date): Promise<number> {
    // Keep the newest done row of each (peer, service): it records the revision applied there.
    const rows = await this.db.execute(sql`
      DELETE FROM outbox o
      WHERE o.state = 'done' AND o.done_at < ${before}
        AND EXISTS (SELECT 1 FROM outbox n WHERE n.peer = o.peer AND n.service = o.service AND n.id > o.id)
      RETURNING o.id`);
    return rowsOf(rows).length;
  }

  // ------------------------------------------------------------ full-text search

  async searchText(s: TextSearch): Promise<TextHit[]> {
    // Plain SQL both PostgreSQL 15 and PGlite (18) accept. The 'simple' configuration: names
    // and logs are not English prose, and it needs no dictionary files. websearch_to_tsquery
    // takes any text (quotes, "or", "-"), so a user's q never is tsquery syntax.
    // Each part matches and ranks inside itself (an expression index on a document can serve
    // its own part's @@); the union only orders.
    const json = (xs: string[]) => JSON.stringify(xs);
    const serviceDoc = sql`(setweight(to_tsvector('simple', sv.name), 'A') ||
          setweight(to_tsvector('simple', coalesce(sv.definition->>'image', '')), 'B') ||
          setweight(to_tsvector('simple', coalesce(sv.definition->>'script', '')), 'C'))`;
    const parts = [];
    if (s.services?.length)
      parts.push(sql`
        SELECT 'services' AS resource, sv.name AS key, ts_rank(${serviceDoc}, q.query) AS rank
        FROM services sv, q
        WHERE sv.name IN (SELECT jsonb_array_elements_text(${json(s.services)}::jsonb))
          AND ${serviceDoc} @@ q.query`);
    if (s.logs && (s.logs.all.length || s.logs.own.length))
      parts.push(sql`
        SELECT 'logs' AS resource, j.id AS key, ts_rank(to_tsvector('simple', j.log), q.query) AS rank
        FROM jobs j, q
        WHERE j.log IS NOT NULL AND (
          j.service IN (SELECT jsonb_array_elements_text(${json(s.logs.all)}::jsonb))
          OR (j.owner = ${s.logs.owner}
              AND j.service IN (SELECT jsonb_array_elements_text(${json(s.logs.own)}::jsonb))))
          AND to_tsvector('simple', j.log) @@ q.query`);
    if (s.buckets?.length)
      parts.push(sql`
        SELECT 'buckets' AS resource, b.name AS key, ts_rank(to_tsvector('simple', b.name), q.query) AS rank
        FROM (SELECT jsonb_array_elements_text(${json(s.buckets)}::jsonb) AS name) b, q
        WHERE to_tsvector('simple', b.name) @@ q.query`);
    if (parts.length === 0) return [];
    const union = sql.join(parts, sql` UNION ALL `);
    const result = await this.db.execute(sql`
      WITH q AS (SELECT websearch_to_tsquery('simple', ${s.q}) AS query)
      SELECT hits.resource, hits.key, hits.rank FROM (${union}) hits
      ORDER BY hits.rank DESC, hits.resource, hits.key
      LIMIT ${s.limit} OFFSET ${s.offset}`);
    return rowsOf<Record<string, unknown>>(result).map((r) => ({
      resource: r.resource as TextHit['resource'],
      key: String(r.key),
      rank: Number(r.rank),
    }));
  }
}
