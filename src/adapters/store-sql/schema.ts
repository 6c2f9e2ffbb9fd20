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
    attempts: integer('attempts').notNull().default(0),
  },
  (t) => [
    index('jobs_service_seq').on(t.service, t.seq),
    index('jobs_status_seq').on(t.status, t.seq),
    uniqueIndex('jobs_delegated_id').on(t.delegatedId),
  ],
);
