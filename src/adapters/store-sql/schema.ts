// The one Drizzle schema shared by PGlite and PostgreSQL. SQL accepted by both
// PostgreSQL 15 (server) and 18 (PGlite): no features newer than 15.
import {
  bigint,
  customType,
  index,
  integer,
  jsonb,
  pgTable,
  text,
  timestamp,
  uniqueIndex,
} from 'drizzle-orm/pg-core';

const bytea = customType<{ data: Uint8Array; driverData: Uint8Array }>({
  dataType: () => 'bytea',
  // node-postgres returns Buffer, PGlite Uint8Array: both are Uint8Array.
  fromDriver: (v) => v,
  toDriver: (v) => (Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength)),
});

export const services = pgTable('services', {
  name: text('name').primaryKey(),
  owner: text('owner').notNull(),
  definition: jsonb('definition').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

export const settings = pgTable('settings', {
  key: text('key').primaryKey(),
  value: text('value').notNull(),
});

// Bucket owners on this cluster's store (DESIGN §3.2): the first claim of a name wins.
export const buckets = pgTable(
  'buckets',
  {
    name: text('name').primaryKey(),
    owner: text('owner').notNull(),
    visibility: text('visibility').notNull().default('private'),
    allowedUsers: jsonb('allowed_users').$type<string[]>().notNull().default([]),
    // The service whose create or update made it; deleting that service deletes the bucket.
    createdByService: text('created_by_service'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('buckets_created_by').on(t.createdByService)],
);

export const jobs = pgTable(
  'jobs',
  {
    id: text('id').primaryKey(),
    // Insertion order, for stable paging and FIFO.
    seq: bigint('seq', { mode: 'number' }).generatedAlwaysAsIdentity(),
    service: text('service').notNull(),
    status: text('status').notNull(),
    event: bytea('event').notNull(),
    owner: text('owner').notNull(),
    cpuMillis: integer('cpu_millis').notNull(),
    memoryBytes: bigint('memory_bytes', { mode: 'number' }).notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    startedAt: timestamp('started_at', { withTimezone: true }),
    finishedAt: timestamp('finished_at', { withTimezone: true }),
    exitCode: integer('exit_code'),
    reason: text('reason'),
    log: text('log'),
    delegatedTo: text('delegated_to'),
    delegatedId: text('delegated_id'),
    // Origin side: the job's id on the cluster it was delegated to.
    remoteJobId: text('remote_job_id'),
    // Receiving side: who delegated it, and its sealed token for the origin's storage keys.
    originCluster: text('origin_cluster'),
    originToken: text('origin_token'),
    // The manager replica that claimed it (several replicas share one database).
    runner: text('runner'),
    attempts: integer('attempts').notNull().default(0),
  },
  (t) => [
    index('jobs_service_seq').on(t.service, t.seq),
    index('jobs_status_seq').on(t.status, t.seq),
    uniqueIndex('jobs_delegated_id').on(t.delegatedId),
  ],
);

export const outbox = pgTable(
  'outbox',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    peer: text('peer').notNull(),
    service: text('service').notNull(),
    op: text('op').notNull(),
    payload: jsonb('payload'),
    // How to reach the peer, kept with the row: a delete must still reach it after the
    // coordinator that knew the credentials is gone.
    target: jsonb('target').notNull(),
    group: text('group_name').notNull(),
    revision: integer('revision').notNull(),
    state: text('state').notNull().default('pending'),
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: timestamp('next_attempt_at', { withTimezone: true }).notNull().defaultNow(),
    lastError: text('last_error'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    doneAt: timestamp('done_at', { withTimezone: true }),
  },
  (t) => [
    index('outbox_peer_pending').on(t.peer, t.state, t.id),
    index('outbox_group').on(t.group),
    index('outbox_due').on(t.state, t.nextAttemptAt),
  ],
);
