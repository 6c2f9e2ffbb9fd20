// Cluster endpoints (DESIGN §3.2): the manager calls only fixed OSCAR paths under one, so an
// endpoint is normalised where it is written — a user name or password in it is refused
// (they belong in auth_user/auth_password, and a URL gets echoed), a query or fragment is
// dropped (it would pick another path) — and every peer URL is rebuilt from its parts.
import { fail } from '../errors.ts';

const parse = (raw: string): URL | undefined => {
  if (typeof raw !== 'string' || !URL.canParse(raw)) return undefined;
  const u = new URL(raw);
  return u.protocol === 'http:' || u.protocol === 'https:' ? u : undefined;
};

/** An endpoint as stored: http(s), no user or password, no query or fragment, no trailing "/". */
export const normalizeEndpoint = (raw: string, field: string): string => {
  const u = parse(raw);
  if (!u) return fail('VALIDATION_FAILED', `${field}: must be an http(s) URL`, { fields: [field] });
  if (u.username || u.password) {
    fail(
      'VALIDATION_FAILED',
      `${field}: must not carry a user name or password; put them in auth_user and auth_password`,
      { fields: [field] },
    );
  }
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
};

/** The URL of a fixed OSCAR path (starting with "/") under an endpoint, whatever was stored. */
export const peerUrl = (endpoint: string, path: string): URL | undefined => {
  const u = parse(endpoint);
  if (!u) return undefined;
  return new URL(`${u.origin}${u.pathname.replace(/\/+$/, '')}${path}`);
};

/** Scheme, host and port of an endpoint, for messages: never a user, password or query. */
export const endpointHost = (endpoint: string): string => parse(endpoint)?.host ?? 'an invalid endpoint';

/** A URL for messages: its user name and password left out. */
export const withoutUserInfo = (raw: string): string => {
  if (!URL.canParse(raw)) return raw.replace(/\/\/[^/@]*@/, '//');
  const u = new URL(raw);
  if (!u.username && !u.password) return raw;
  u.username = '';
  u.password = '';
  return u.toString();
};

/** true when an http(s) URL carries a user name or password. */
export const hasUserInfo = (raw: string): boolean => {
  const u = parse(raw);
  return !!u && (u.username !== '' || u.password !== '');
};

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * A service (or a /system/federation request) with every `clusters.*.endpoint` normalised,
 * and `replicas[].url` refused when it carries a user or password. The input is not changed.
 */
export const normalizeServiceEndpoints = <T extends Obj>(s: T): T => {
  const out: Obj = { ...s };
  if (isObj(s.clusters)) {
    out.clusters = Object.fromEntries(
      Object.entries(s.clusters).map(([id, entry]) =>
        isObj(entry) && typeof entry.endpoint === 'string'
          ? [id, { ...entry, endpoint: normalizeEndpoint(entry.endpoint, `clusters.${id}.endpoint`) }]
          : [id, entry],
      ),
    );
  }
  if (Array.isArray(s.replicas)) {
    s.replicas.forEach((r, i) => {
      if (isObj(r) && typeof r.url === 'string' && hasUserInfo(r.url)) {
        fail(
          'VALIDATION_FAILED',
          `replicas[${i}].url: must not carry a user name or password; send credentials in headers`,
          { fields: [`replicas[${i}].url`] },
        );
      }
    });
  }
  return out as T;
};
