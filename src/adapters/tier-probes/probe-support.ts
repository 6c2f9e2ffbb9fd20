// What every probe shares: a time cap, and network failures put into words.
import type { ReachFailure } from '../../core/ports.ts';

export const fmtMs = (ms: number): string => (ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${ms} ms`);

export class ProbeTimeout extends Error {
  constructor(ms: number) {
    super(`no answer within ${fmtMs(ms)}`);
    this.name = 'ProbeTimeout';
  }
}

export const withTimeout = <T>(p: Promise<T>, ms: number, onTimeout?: () => void): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      onTimeout?.();
      reject(new ProbeTimeout(ms));
    }, ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });

export const errCode = (e: unknown): string | undefined => {
  const err = e as { code?: string; errors?: Array<{ code?: string }>; cause?: { code?: string } };
  return err?.code ?? err?.errors?.find((x) => x?.code)?.code ?? err?.cause?.code;
};

/** A network failure in words (the caller prefixes the service, host and port). */
export const networkProblem = (e: unknown, host: string, timeoutMs: number): string => {
  if (e instanceof ProbeTimeout) return `no answer within ${fmtMs(timeoutMs)}`;
  const code = errCode(e);
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused: nothing listens on that port';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NONAME':
      return `host name ${host} does not resolve`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'unreachable from this machine (no route to the host)';
    case 'ETIMEDOUT':
      return 'the connection timed out';
    case 'ECONNRESET':
    case 'EPIPE':
      return 'the connection was closed (another service on that port, or TLS expected?)';
    default: {
      const msg = (e as Error)?.message || String(e);
      if (/timeout/i.test(msg)) return `no answer within ${fmtMs(timeoutMs)}`;
      if (/terminated unexpectedly|connection closed/i.test(msg)) {
        return 'the connection was closed (another service on that port, or TLS expected?)';
      }
      return `${msg}${code && !msg.includes(code) ? ` (${code})` : ''}`;
    }
  }
};

const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'EPROTO',
  'ERR_SSL_WRONG_VERSION_NUMBER',
]);

/** A failed connection: a TLS problem (by its code), or a network one in words. */
export const reachFailure = (e: unknown, host: string, timeoutMs: number): ReachFailure => {
  const code = errCode(e);
  return code && TLS_CODES.has(code)
    ? { kind: 'tls-rejected', code }
    : { kind: 'network', problem: networkProblem(e, host, timeoutMs) };
};
