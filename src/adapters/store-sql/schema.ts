// The one Drizzle schema shared by PGlite and PostgreSQL. SQL accepted by both
// PostgreSQL 15 (server) and 18 (PGlite): no features newer than 15.

import { sql } from 'drizzle-orm';
import {
  bigint,
  boolean,
  customType,
  doublePrecision,
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
    // Why the job was delegated or kept here (core/delegation/decision.ts), bounded in size.
    delegation: jsonb('delegation'),
    // Receiving side of a two-step hand-over (ADR 13): held | confirmed | dropped, and the
    // deadline of a hold; null for every job not handed over with a hold.
    holdState: text('hold_state'),
    heldUntil: timestamp('held_until', { withTimezone: true }),
    // Origin side: recorded at a replica that holds it, its confirm not answered yet.
    confirmPending: boolean('confirm_pending').notNull().default(false),
  },
  (t) => [
    index('jobs_service_seq').on(t.service, t.seq),
    index('jobs_status_seq').on(t.status, t.seq),
    uniqueIndex('jobs_delegated_id').on(t.delegatedId),
    // Federated search over job logs (Store.searchText matches this very expression).
    index('jobs_log_search').using('gin', sql`to_tsvector('simple', ${t.log})`),
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
    // What the last failed attempt met (core/peer-failure.ts: refused, unreachable …).
    lastErrorKind: text('last_error_kind'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    doneAt: timestamp('done_at', { withTimezone: true }),
  },
  (t) => [
    index('outbox_peer_pending').on(t.peer, t.state, t.id),
    index('outbox_group').on(t.group),
    index('outbox_due').on(t.state, t.nextAttemptAt),
  ],
);

// ---- trust (peering, issue #18)

export const grants = pgTable(
  'grants',
  {
    id: text('id').primaryKey(),
    peerName: text('peer_name').notNull(),
    subjectUser: text('subject_user').notNull(),
    status: text('status').notNull(),
    scope: jsonb('scope').notNull(),
    certSerial: text('cert_serial'),
    certNotAfter: timestamp('cert_not_after', { withTimezone: true }),
    // After a renewal the previous certificate still works briefly, for calls in flight.
    prevCertSerial: text('prev_cert_serial'),
    prevCertUntil: timestamp('prev_cert_until', { withTimezone: true }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    activatedAt: timestamp('activated_at', { withTimezone: true }),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
    revokeReason: text('revoke_reason'),
  },
  (t) => [index('grants_status').on(t.status), index('grants_subject').on(t.subjectUser)],
);

export const enrollmentTokens = pgTable('enrollment_tokens', {
  // SHA-256 of the token: the token itself is never stored.
  hash: text('hash').primaryKey(),
  grantId: text('grant_id').notNull(),
  expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
  usedAt: timestamp('used_at', { withTimezone: true }),
});

export const issuedCertificates = pgTable(
  'issued_certificates',
  {
    serial: text('serial').primaryKey(),
    grantId: text('grant_id').notNull(),
    subject: text('subject').notNull(),
    notAfter: timestamp('not_after', { withTimezone: true }).notNull(),
    issuedAt: timestamp('issued_at', { withTimezone: true }).notNull(),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
  },
  (t) => [index('issued_certificates_grant').on(t.grantId)],
);

export const peers = pgTable('peers', {
  name: text('name').primaryKey(),
  url: text('url').notNull(),
  peerChannelUrl: text('peer_channel_url').notNull(),
  clusterId: text('cluster_id').notNull(),
  grantId: text('grant_id').notNull(),
  subject: text('subject').notNull(),
  certPem: text('cert_pem').notNull(),
  // Sealed with the secret box; never selected into an answer.
  keySealed: text('key_sealed').notNull(),
  caPem: text('ca_pem').notNull(),
  certSerial: text('cert_serial').notNull(),
  certNotAfter: timestamp('cert_not_after', { withTimezone: true }).notNull(),
  state: text('state').notNull(),
  lastSuccessAt: timestamp('last_success_at', { withTimezone: true }),
  lastFailureAt: timestamp('last_failure_at', { withTimezone: true }),
  lastError: text('last_error'),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});

// The audit trail (DESIGN §6): one hash chain over `seq`; rows past the hot age move to
// audit_cold unchanged (same seq and hash), so the chain spans both tables.
const auditColumns = {
  seq: bigint('seq', { mode: 'number' }).primaryKey(),
  at: timestamp('at', { withTimezone: true }).notNull(),
  grantId: text('grant_id'),
  peer: text('peer'),
  subject: text('subject'),
  verb: text('verb').notNull(),
  resource: text('resource').notNull(),
  queryHash: text('query_hash').notNull(),
  outcome: text('outcome').notNull(),
  bytesOut: bigint('bytes_out', { mode: 'number' }).notNull(),
  latencyMs: doublePrecision('latency_ms').notNull(),
  traceId: text('trace_id'),
  hash: text('hash').notNull(),
};

export const audit = pgTable('audit', auditColumns, (t) => [index('audit_at').on(t.at)]);
export const auditCold = pgTable('audit_cold', auditColumns, (t) => [index('audit_cold_at').on(t.at)]);
