// The S3 probe: reachability only, by an unauthenticated GET (any HTTP answer counts; S3
// answers 403), so it needs no keys and works against any S3-compatible server.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { S3Observation } from '../../core/ports.ts';
import { reachFailure, withTimeout } from './probe-support.ts';

export const observeS3 = async (endpoint: string, opts: { timeoutMs: number }): Promise<S3Observation> => {
  const u = new URL(endpoint);
  u.username = '';
  u.password = '';
  const https = u.protocol === 'https:';
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const started = Date.now();
  let req: ReturnType<typeof httpRequest> | undefined;
  try {
    const status = await withTimeout(
      new Promise<number>((resolve, reject) => {
        req = (https ? httpsRequest : httpRequest)(u, { method: 'GET', agent: false }, (res) => {
          resolve(res.statusCode ?? 0);
          res.destroy();
        });
        req.on('error', reject);
        req.end();
      }),
      opts.timeoutMs,
      () => req?.destroy(),
    );
    return { reached: true, latencyMs: Date.now() - started, status };
  } catch (e) {
    return { reached: false, failure: reachFailure(e, host, opts.timeoutMs) };
  } finally {
    req?.destroy();
  }
};
