// What a PostgreSQL or Valkey/Redis URL points at, read without connecting. Throws (as
// `new URL` does) for a text that is not a URL.
import { safeDecode } from './redaction.ts';

/** Host, port, database and user of a PostgreSQL URL (never the password). */
export const describePostgresUrl = (
  raw: string,
): { host: string; port: number; database: string; user: string | undefined } => {
  const u = new URL(raw);
  const hostParam = u.searchParams.get('host');
  const host = u.hostname ? u.hostname.replace(/^\[|\]$/g, '') : (hostParam ?? 'localhost');
  const port = Number(u.port || u.searchParams.get('port') || 5432);
  const user = safeDecode(u.username) || u.searchParams.get('user') || undefined;
  const database = safeDecode(u.pathname.replace(/^\//, '')) || user || 'postgres';
  return { host, port, database, user };
};

export const describeValkeyUrl = (
  raw: string,
): {
  host: string;
  port: number;
  tls: boolean;
  user: string | undefined;
  password: string | undefined;
  db: number;
} => {
  const u = new URL(raw);
  const tls = u.protocol === 'rediss:' || u.protocol === 'valkeys:';
  const host = (u.hostname || 'localhost').replace(/^\[|\]$/g, '');
  const port = Number(u.port || 6379);
  const user = safeDecode(u.username) || undefined;
  const password = u.password ? safeDecode(u.password) : undefined;
  const db = Number(u.pathname.replace(/^\//, '') || 0) || 0;
  return { host, port, tls, user, password, db };
};
