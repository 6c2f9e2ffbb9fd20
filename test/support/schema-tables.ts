// Every table of the schema, in migrate-tier's copy order (the first four by rank, the later
// ones by name). Written out, not read from the schema, so that a new table or a changed order
// is a decision a test sees.
export const SCHEMA_TABLES = [
  'services',
  'settings',
  'jobs',
  'outbox',
  'audit',
  'audit_cold',
  'buckets',
  'enrollment_tokens',
  'grants',
  'issued_certificates',
  'peers',
] as const;
