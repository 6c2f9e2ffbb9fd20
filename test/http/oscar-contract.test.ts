// Responses of every route Flotilla shares with OSCAR, validated against OSCAR's own
// Swagger document (../shared/contract/oscar-swagger-v4.1.2.yaml or FLOTILLA_OSCAR_SPEC).
//
// The table below is the coverage: one row per (method, OSCAR path template). Rows run in
// order against one manager (plus a peer for federation), so a row may rely on what an
// earlier one created. New capabilities append rows; the guard at the end fails when
// Flotilla answers an OSCAR route that the table does not cover yet.
// Without the spec the test fails, saying where it looked: the compatibility target is not optional.
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, basic, startInProcess, type TestManager } from '../support/in-process.ts';
import { loadOscarContract } from '../support/oscar-contract.ts';

const loaded = loadOscarContract();
const contract = loaded.contract;

const SVC = 'contract-svc';
const FED_SVC = 'contract-fed';
const PEER_ID = 'contract-peer';

/** A service with every block OSCAR documents, so the response exercises the whole model. */
const fullService = {
  name: SVC,
  image: 'ghcr.io/grycap/alpine:3',
  script: '#!/bin/sh\necho "ran with $(cat "$INPUT_FILE_PATH")"\n',
  cpu: '500m',
  memory: '512Mi',
  log_level: 'debug',
  input: [{ storage_provider: 'minio.default', path: 'contract-svc/in', suffix: ['.jpg'] }],
  output: [{ storage_provider: 's3.aws', path: 'contract-out/out', prefix: ['result-'] }],
  storage_providers: { s3: { aws: { access_key: 'AKIA000', secret_key: 's3-secret', region: 'eu-west-1' } } },
  clusters: {
    other: {
      endpoint: 'https://oscar.example.org',
      auth_user: 'oscar',
      auth_password: 'pw',
      ssl_verify: true,
    },
  },
  environment: { variables: { MODE: 'fast' }, secrets: { API_KEY: 'k' } },
  annotations: { team: 'a' },
  labels: { app: 'contract' },
  vo: 'vo.example.eu',
  visibility: 'restricted',
  allowed_users: ['someone@example.org'],
  isolation_level: 'SERVICE',
  alpine: true,
  image_pull_secrets: ['regcred'],
};

/** What earlier rows learnt (the service token, a job id) for later rows to use. */
interface RunState {
  serviceToken?: string;
  jobId?: string;
  /** Where the peer cluster listens (federation rows). */
  peerUrl?: string;
}

type Dynamic<T> = T | ((state: RunState) => T);

interface ContractRow {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** OSCAR's path template, as in the spec. */
  template: string;
  /** The concrete URL requested. */
  url: Dynamic<string>;
  status: number;
  body?: Dynamic<unknown>;
  /** Credentials: the admin (default) or the service's own token, as OSCAR's clients invoke. */
  as?: 'admin' | 'service-token';
  contentType?: string;
  /** Runs before the request (e.g. wait for a job to finish). */
  before?: (state: RunState) => Promise<void>;
  /** Extra checks on the response beyond the schema; may record state for later rows. */
  check?: (res: LightMyRequestResponse, state: RunState) => void;
  /**
   * A documented Flotilla addition where OSCAR's schema says otherwise (DESIGN.md names it).
   * The row asserts that the validator does flag it, so the exception cannot hide a regression.
   */
  extension?: string;
}

const json = (res: LightMyRequestResponse): any => JSON.parse(res.body);
const resolve = <T>(v: Dynamic<T>, state: RunState): T =>
  typeof v === 'function' ? (v as (s: RunState) => T)(state) : v;
const BUCKET = 'contract-bucket';

let tm: TestManager;
let peer: TestManager;
const member = { type: 'oscar', cluster_id: PEER_ID, service_name: `${FED_SVC}-w` };
const VIEW_EXTENSION =
  'Flotilla answers the resulting {topology, members} view (members carry sync state); OSCAR answers a string';
const MEMBERS_NULL =
  "DESIGN §3.1: no members is `members: null`, as OSCAR's Go handler answers (its Swagger says a list)";
const ERROR_BODY = "Flotilla's errors are JSON {code, message, statusCode}; OSCAR declares a plain string";
const NEEDS_K8S = 'DESIGN §3.1: what needs Kubernetes answers 501 naming the executor';

/** Polls the job listing until the job has finished, so every time field is set. */
const waitForJob = async (state: RunState): Promise<void> => {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const res = await tm.manager.http.inject({
      method: 'GET',
      url: `/system/logs/${SVC}`,
      headers: { authorization: basic() },
    });
    const status = json(res).jobs?.[state.jobId!]?.status;
    if (status === 'Succeeded' || status === 'Failed') return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`job ${state.jobId} did not finish`);
};

const ROWS: ContractRow[] = [
  {
    method: 'GET',
    template: '/health',
    url: '/health',
    status: 200,
    check: (res) => expect(res.body).toBe('Ok'),
  },
  {
    method: 'GET',
    template: '/system/info',
    url: '/system/info',
    status: 200,
    check: (res) =>
      expect(json(res)).toMatchObject({ version: expect.any(String), git_commit: expect.any(String) }),
  },
  {
    method: 'GET',
    template: '/system/config',
    url: '/system/config',
    status: 200,
    check: (res) => expect(json(res)).toHaveProperty('minio_provider'),
  },
  {
    method: 'GET',
    template: '/system/status',
    url: '/system/status',
    status: 200,
    check: (res) => expect(json(res).cluster.nodes_count).toBeGreaterThan(0),
  },
  // ---- services
  { method: 'POST', template: '/system/services', url: '/system/services', status: 201, body: fullService },
  {
    method: 'GET',
    template: '/system/services',
    url: '/system/services',
    status: 200,
    check: (res) => expect(json(res).map((s: { name: string }) => s.name)).toContain(SVC),
  },
  {
    method: 'GET',
    template: '/system/services/{serviceName}',
    url: `/system/services/${SVC}`,
    status: 200,
    check: (res, state) => {
      expect(json(res)).toMatchObject({ name: SVC, cpu: '0.5', owner: 'cluster_admin' });
      state.serviceToken = json(res).token;
    },
  },
  {
    method: 'PUT',
    template: '/system/services',
    url: '/system/services',
    status: 204,
    body: { ...fullService, memory: '1Gi' },
  },
  // ---- invocations (OSCAR's clients use the service token)
  {
    method: 'POST',
    template: '/run/{serviceName}',
    url: `/run/${SVC}`,
    status: 200,
    as: 'service-token',
    contentType: 'application/octet-stream',
    body: Buffer.from('hello').toString('base64'),
    check: (res) => expect(res.body).toContain('ran'),
  },
  {
    method: 'POST',
    template: '/job/{serviceName}',
    url: `/job/${SVC}`,
    status: 201,
    as: 'service-token',
    contentType: 'application/json',
    body: '{"event": 1}',
    extension: 'DESIGN §3: POST /job answers {job_id, cluster_id, delegated_to}; OSCAR answers an empty body',
    check: (res, state) => {
      expect(json(res)).toMatchObject({
        job_id: expect.any(String),
        cluster_id: expect.any(String),
        delegated_to: null,
      });
      state.jobId = json(res).job_id;
    },
  },
  // ---- logs
  {
    method: 'GET',
    template: '/system/logs/{serviceName}',
    url: `/system/logs/${SVC}`,
    status: 200,
    before: waitForJob,
    check: (res, state) => expect(json(res).jobs[state.jobId!]).toMatchObject({ status: 'Succeeded' }),
  },
  {
    method: 'GET',
    template: '/system/logs/{serviceName}/{jobName}',
    url: (s) => `/system/logs/${SVC}/${s.jobId}`,
    status: 200,
    check: (res) => expect(res.body).toContain('ran'),
  },
  {
    method: 'DELETE',
    template: '/system/logs/{serviceName}/{jobName}',
    url: (s) => `/system/logs/${SVC}/${s.jobId}`,
    status: 204,
  },
  {
    method: 'DELETE',
    template: '/system/logs/{serviceName}',
    url: `/system/logs/${SVC}?all=true`,
    status: 204,
  },
  // ---- buckets
  {
    method: 'POST',
    template: '/system/buckets',
    url: '/system/buckets',
    status: 201,
    body: { bucket_name: BUCKET, visibility: 'private' },
  },
  {
    method: 'PUT',
    template: '/system/buckets',
    url: '/system/buckets',
    status: 204,
    body: { bucket_name: BUCKET, visibility: 'restricted', allowed_users: ['someone@example.org'] },
  },
  {
    method: 'GET',
    template: '/system/buckets',
    url: '/system/buckets',
    status: 200,
    check: (res) => expect(json(res).map((b: { bucket_name: string }) => b.bucket_name)).toContain(BUCKET),
  },
  {
    method: 'GET',
    template: '/system/buckets/{bucket}',
    url: `/system/buckets/${BUCKET}`,
    status: 200,
    check: (res) => expect(json(res)).toMatchObject({ bucket_name: BUCKET, visibility: 'restricted' }),
  },
  {
    method: 'POST',
    template: '/system/buckets/{bucket}/presign',
    url: `/system/buckets/${BUCKET}/presign`,
    status: 200,
    body: { object_key: 'in/photo.jpg', operation: 'upload' },
    check: (res) => expect(json(res)).toMatchObject({ method: 'PUT', url: expect.stringMatching(/^http/) }),
  },
  { method: 'DELETE', template: '/system/buckets/{bucket}', url: `/system/buckets/${BUCKET}`, status: 204 },
  // ---- federation (DESIGN §4): a coordinator here, its worker on the peer
  {
    method: 'POST',
    template: '/system/services',
    url: '/system/services',
    status: 201,
    body: (s: RunState) => ({
      name: FED_SVC,
      image: 'alpine',
      script: 'echo fed',
      federation: { topology: 'star', delegation: 'static' },
      clusters: { [PEER_ID]: { endpoint: s.peerUrl, auth_user: 'oscar', auth_password: ADMIN_PASSWORD } },
    }),
  },
  {
    method: 'GET',
    template: '/system/federation/{serviceName}',
    url: `/system/federation/${FED_SVC}`,
    status: 200,
    extension: MEMBERS_NULL,
    check: (res) => expect(json(res)).toMatchObject({ topology: 'star', members: null }),
  },
  {
    method: 'POST',
    template: '/system/federation/{serviceName}',
    url: `/system/federation/${FED_SVC}`,
    status: 200,
    body: { members: [member] },
    extension: VIEW_EXTENSION,
    check: (res) => expect(json(res).members).toEqual([expect.objectContaining(member)]),
  },
  {
    method: 'PUT',
    template: '/system/federation/{serviceName}',
    url: `/system/federation/${FED_SVC}`,
    status: 200,
    body: { update: [{ ...member, priority: 3 }] },
    extension: VIEW_EXTENSION,
    check: (res) => expect(json(res).members[0]).toMatchObject({ priority: 3 }),
  },
  {
    method: 'DELETE',
    template: '/system/federation/{serviceName}',
    url: `/system/federation/${FED_SVC}`,
    status: 200,
    body: { members: [member], delete: true },
    extension: VIEW_EXTENSION,
    check: (res) => expect(json(res).members).toEqual([]),
  },
  {
    method: 'DELETE',
    template: '/system/services/{serviceName}',
    url: `/system/services/${FED_SVC}`,
    status: 204,
  },
  // ---- the rest of OSCAR v4.1 (DESIGN §3.1)
  {
    method: 'GET',
    template: '/system/logs/',
    url: '/system/logs/',
    status: 200,
    check: (res) => expect(String(res.headers['content-type'])).toMatch(/^text\/plain/),
  },
  {
    method: 'PUT',
    template: '/system/config',
    url: '/system/config',
    status: 501,
    body: {},
    extension: 'Flotilla reads its configuration from the flags of `flotilla up` (501)',
  },
  {
    method: 'GET',
    template: '/system/metrics',
    url: '/system/metrics',
    status: 200,
    check: (res) => expect(json(res).totals.services_count_active).toBeGreaterThan(0),
  },
  {
    method: 'GET',
    template: '/system/metrics/{serviceName}',
    url: `/system/metrics/${SVC}`,
    status: 200,
    check: (res) => expect(json(res).service_name).toBe(SVC),
  },
  {
    method: 'GET',
    template: '/system/metrics/breakdown',
    url: '/system/metrics/breakdown?group_by=service&format=csv',
    status: 200,
    check: (res) => expect(res.body).toMatch(/^key,membership,requests_count_total/),
  },
  {
    method: 'GET',
    template: '/system/metrics/breakdown',
    url: '/system/metrics/breakdown?group_by=service',
    status: 200,
    extension:
      "OSCAR's handler answers types.MetricsBreakdownResponse for json; its Swagger keeps only the CSV string",
    check: (res) => expect(json(res)).toMatchObject({ group_by: 'service', items: expect.any(Array) }),
  },
  // Own quotas are a bearer user's (OSCAR: 401 without a user id).
  {
    method: 'GET',
    template: '/system/quotas/user',
    url: '/system/quotas/user',
    status: 401,
    extension: ERROR_BODY,
  },
  {
    method: 'GET',
    template: '/system/quotas/user/{userId}',
    url: '/system/quotas/user/someone',
    status: 501,
    extension: NEEDS_K8S,
  },
  {
    method: 'PUT',
    template: '/system/quotas/user/{userId}',
    url: '/system/quotas/user/someone',
    status: 501,
    body: { cpu: '2', memory: '4Gi' },
    extension: NEEDS_K8S,
  },
  {
    method: 'GET',
    template: '/system/services/{serviceName}/auth',
    url: `/system/services/${SVC}/auth`,
    status: 200,
  },
  {
    method: 'GET',
    template: '/system/services/{serviceName}/deployment',
    url: `/system/services/${SVC}/deployment`,
    status: 200,
    check: (res) => expect(json(res)).toMatchObject({ service_name: SVC, state: 'unavailable' }),
  },
  {
    method: 'GET',
    template: '/system/services/{serviceName}/deployment/logs',
    url: `/system/services/${SVC}/deployment/logs?tailLines=10`,
    status: 200,
    check: (res) => expect(json(res)).toMatchObject({ available: false, entries: [] }),
  },
  ...(['start', 'stop', 'restart'] as const).map(
    (action): ContractRow => ({
      method: 'POST',
      template: `/system/services/{serviceName}/${action}`,
      url: `/system/services/${SVC}/${action}`,
      status: 400,
      extension: ERROR_BODY,
      check: (res) => expect(json(res).message).toContain('is not exposed'),
    }),
  ),
  { method: 'GET', template: '/system/volumes', url: '/system/volumes', status: 501, extension: NEEDS_K8S },
  {
    method: 'POST',
    template: '/system/volumes',
    url: '/system/volumes',
    status: 501,
    body: { name: 'data', size: '1Gi' },
    extension: NEEDS_K8S,
  },
  {
    method: 'GET',
    template: '/system/volumes/{volumeName}',
    url: '/system/volumes/data',
    status: 501,
    extension: NEEDS_K8S,
  },
  {
    method: 'DELETE',
    template: '/system/volumes/{volumeName}',
    url: '/system/volumes/data',
    status: 501,
    extension: NEEDS_K8S,
  },
  // ---- last: the service goes
  {
    method: 'DELETE',
    template: '/system/services/{serviceName}',
    url: `/system/services/${SVC}`,
    status: 204,
  },
];

/** Guards against a validator that accepts anything (e.g. an unresolved $ref). */
const checkValidatorRejects = (): void => {
  const bad = contract!.validateOscarResponse('GET', '/system/services/{serviceName}', 200, {
    name: SVC,
    image: 'x',
    script: 'y',
    cpu: 0.5,
  });
  expect(bad.ok).toBe(false);
  expect(bad.errors.join()).toMatch(/cpu must be string/);
  expect(
    contract!.validateOscarResponse('GET', '/system/status', 200, { cluster: { nodes_count: 'one' } }).ok,
  ).toBe(false);
  expect(contract!.validateOscarResponse('GET', '/system/info', 200, '').ok).toBe(false);
  expect(contract!.validateOscarResponse('GET', '/system/info', 418, {}).ok).toBe(false);
  expect(contract!.validateOscarResponse('POST', '/system/services', 201, '').ok).toBe(true);
};

/** OSCAR operations Flotilla answers (anything but "no route") that no row covers. */
const uncoveredRoutes = async (): Promise<string[]> => {
  const inTable = new Set(ROWS.map((r) => `${r.method} ${r.template}`));
  const missing: string[] = [];
  for (const template of contract!.paths) {
    for (const method of ['GET', 'POST', 'PUT', 'DELETE'] as const) {
      if (!contract!.hasOperation(method, template) || inTable.has(`${method} ${template}`)) continue;
      const url = template.replace(/\{[^}]+\}/g, 'contract-probe');
      // No credentials: an existing route answers 401 (or its own status), a missing one "no route".
      const res = await tm.manager.http.inject({ method, url });
      const unrouted = res.statusCode === 404 && /^no route /.test(JSON.parse(res.body).message ?? '');
      if (!unrouted) missing.push(`${method} ${template} (answered ${res.statusCode})`);
    }
  }
  return missing;
};

describe('OSCAR v4.1 contract', () => {
  const covered: string[] = [];

  beforeAll(async () => {
    if (!contract) return;
    [tm, peer] = await Promise.all([
      startInProcess({ clusterId: 'contract-a' }),
      startInProcess({ clusterId: PEER_ID }),
    ]);
  });
  afterAll(async () => {
    if (covered.length)
      console.info(`[oscar-contract] covered ${covered.length} routes:\n  ${covered.join('\n  ')}`);
    await Promise.all([tm?.close(), peer?.close()]);
  });

  it('every route Flotilla shares with OSCAR answers as OSCAR documents it', async () => {
    if (!contract) throw new Error(`[oscar-contract] ${loaded.reason}`);
    checkValidatorRejects();
    const state: RunState = { peerUrl: await peer.manager.listen() };
    for (const row of ROWS) {
      const url = resolve(row.url, state);
      const where = `${row.method} ${url}`;
      expect(
        contract!.hasOperation(row.method, row.template),
        `${row.method} ${row.template} is not in OSCAR's spec`,
      ).toBe(true);
      await row.before?.(state);
      const authorization = row.as === 'service-token' ? `Bearer ${state.serviceToken}` : basic();
      const headers: Record<string, string> = { authorization };
      if (row.contentType) headers['content-type'] = row.contentType;
      const req: InjectOptions = { method: row.method, url, headers };
      const body = row.body === undefined ? undefined : resolve(row.body, state);
      if (body !== undefined) req.payload = body as InjectOptions['payload'];
      const res = await tm.manager.http.inject(req);
      expect(res.statusCode, `${where}: ${res.body}`).toBe(row.status);
      const isJson = String(res.headers['content-type'] ?? '').includes('json');
      const answer = res.body === '' ? '' : isJson ? json(res) : res.body;
      const result = contract!.validateOscarResponse(row.method, row.template, res.statusCode, answer);
      if (row.extension) {
        expect(result.ok, `${where} now matches OSCAR: drop its "extension" note`).toBe(false);
      } else {
        expect(result.errors, `${where} does not match OSCAR's ${row.status} schema`).toEqual([]);
        expect(result.ok).toBe(true);
      }
      row.check?.(res, state);
      covered.push(
        `${row.method} ${row.template} → ${row.status}${row.extension ? ` (extension: ${row.extension})` : ''}`,
      );
    }
    expect(covered).toHaveLength(ROWS.length);
    expect(
      await uncoveredRoutes(),
      'Flotilla serves these OSCAR routes: append a row to ROWS for each',
    ).toEqual([]);
  });
});
