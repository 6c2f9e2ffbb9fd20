// GET /metrics: Prometheus text for the admin only, request timings by route template,
// stored jobs by status, finished-job durations, services — and no secret in it.
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, basic, startInProcess, type TestManager } from '../support/in-process.ts';
import { type OidcProviderFixture, startOidcProvider } from '../support/oidc-provider.ts';
import { waitFor } from '../support/wait.ts';

let tm: TestManager;
let oidc: OidcProviderFixture;
const admin = { authorization: basic() };
const call = (opts: InjectOptions) => tm.manager.http.inject(opts);

/** The value of one sample line, e.g. `flotilla_services{cluster_id="m"}`. */
const sample = (text: string, name: string, labels: Record<string, string> = {}): number | undefined => {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const labelText = line.slice(name.length).match(/^\{([^}]*)\}/)?.[1] ?? '';
    if (Object.entries(labels).every(([k, v]) => labelText.includes(`${k}="${v}"`))) {
      return Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return undefined;
};

const scrape = async () => {
  const res = await call({ method: 'GET', url: '/metrics', headers: admin });
  expect(res.statusCode, res.body).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.body;
};

let serviceToken: string;

beforeAll(async () => {
  oidc = await startOidcProvider();
  tm = await startInProcess({ clusterId: 'metrics-a', oidcIssuers: oidc.issuer });
  const created = await call({
    method: 'POST',
    url: '/system/services',
    headers: admin,
    payload: {
      name: 'm-svc',
      image: 'alpine',
      script: 'echo hi',
      cpu: '0.1',
      memory: '64Mi',
      environment: { secrets: { API_KEY: 'metrics-secret-value-77' } },
    },
  });
  expect(created.statusCode, created.body).toBe(201);
  const got = await call({ method: 'GET', url: '/system/services/m-svc', headers: admin });
  serviceToken = got.json().token;
});
afterAll(async () => {
  await tm?.close();
  await oidc?.stop();
});

describe('GET /metrics', () => {
  it('needs the admin: 401 without credentials or with a service token, 403 for a user', async () => {
    const none = await call({ method: 'GET', url: '/metrics' });
    expect(none.statusCode).toBe(401);
    const svc = await call({
      method: 'GET',
      url: '/metrics',
      headers: { authorization: `Bearer ${serviceToken}` },
    });
    expect(svc.statusCode).toBe(401);
    const { accessToken } = await oidc.mintTokens('alice');
    const user = await call({
      method: 'GET',
      url: '/metrics',
      headers: { authorization: `Bearer ${accessToken}` },
    });
    expect(user.statusCode).toBe(403);
    expect(user.json().message).toMatch(/admin/);
  });

  it('counts requests by route template, services, stored jobs and finished jobs', async () => {
    const before = await scrape();
    const okBefore =
      sample(before, 'flotilla_http_request_duration_seconds_count', {
        route: '/system/services/:serviceName',
        status: '200',
      }) ?? 0;
    for (let i = 0; i < 3; i++) await call({ method: 'GET', url: '/system/services/m-svc', headers: admin });
    await call({ method: 'GET', url: '/system/services/does-not-exist', headers: admin });

    const job = await call({
      method: 'POST',
      url: '/job/m-svc',
      headers: { authorization: `Bearer ${serviceToken}` },
      payload: 'aGk=',
    });
    expect(job.statusCode, job.body).toBe(201);
    const jobId = job.json().job_id as string;
    await waitFor(
      async () => {
        const logs = await call({ method: 'GET', url: '/system/logs/m-svc', headers: admin });
        return logs.json().jobs?.[jobId]?.status === 'Succeeded';
      },
      30_000,
      'the job to succeed',
    );

    const text = await scrape();
    // The route label is the template, never the raw path (bounded label values).
    expect(
      sample(text, 'flotilla_http_request_duration_seconds_count', {
        route: '/system/services/:serviceName',
        status: '200',
      }),
    ).toBe(okBefore + 3);
    expect(
      sample(text, 'flotilla_http_request_duration_seconds_count', {
        route: '/system/services/:serviceName',
        status: '404',
      }),
    ).toBe(1);
    expect(text).not.toContain('does-not-exist');
    // Routes in encapsulated plugins (invocations) are timed too.
    expect(
      sample(text, 'flotilla_http_request_duration_seconds_count', {
        method: 'POST',
        route: '/job/:serviceName',
        status: '201',
      }),
    ).toBe(1);
    expect(sample(text, 'flotilla_services', { cluster_id: 'metrics-a' })).toBe(1);
    expect(sample(text, 'flotilla_jobs', { status: 'Succeeded' })).toBe(1);
    expect(sample(text, 'flotilla_jobs', { status: 'Pending' })).toBe(0);
    expect(sample(text, 'flotilla_job_duration_seconds_count', { status: 'Succeeded' })).toBe(1);
    expect(sample(text, 'flotilla_outbox_pending')).toBe(0);
    // Node's own figures, under the same prefix.
    expect(sample(text, 'flotilla_process_cpu_user_seconds_total')).toBeGreaterThan(0);
  });

  it('holds no secret: admin password, service token, secret values', async () => {
    const text = await scrape();
    for (const secret of [ADMIN_PASSWORD, serviceToken, 'metrics-secret-value-77']) {
      expect(text).not.toContain(secret);
    }
  });
});
