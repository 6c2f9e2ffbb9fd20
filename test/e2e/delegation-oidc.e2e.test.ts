// Delegation with OIDC credentials end to end (DESIGN §4 "Credentials", "Secrets rules"):
// ONE real oidc-provider on loopback trusted by three real managers, each also holding the
// manager's OIDC client (id, secret, resource). A user creates a federated service with a
// bearer token and `environment.secrets.refresh_token`; the `clusters` map carries
// endpoints only, no passwords anywhere, so every delegation must go with an access token
// the origin mints from the sealed refresh token. The refresh token never shows up in a
// GET of the service (any cluster, any caller), in a job's environment, in an error text,
// or in any manager's log file (run at debug level).
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlotillaClient, jobsApi } from '../../client/api-client.ts';
import type { ClusterProcess, Harness } from '../support/cluster-harness.ts';
import {
  allJobs,
  CACHE_ROUND_MS,
  newMarker,
  type Submitted,
  sleep,
  startDelegationClusters,
  submitMarked,
  waitCacheOnline,
  waitJobsEnded,
} from '../support/delegation.ts';
import { waitFor } from '../support/federation.ts';
import { type OidcProviderFixture, startOidcProvider } from '../support/oidc-provider.ts';

const USER = 'alice@egi.example';
const SVC = 'oidcdlg';
/** A plain secret the job is meant to see (shows the environment dump works). */
const JOB_SECRET = `visible-${randomBytes(6).toString('hex')}`;

/** Prints the whole environment, so a leak of the refresh token into a job would show. */
const ENV_SCRIPT = `#!/bin/sh
marker=$(head -n 1 "$INPUT_FILE_PATH" | tr -cd 'A-Za-z0-9._-')
echo "marker=$marker ran-on=$OSCAR_SERVICE_NAME"
echo "--- env"
env | sort
echo "--- files"
ls -la . "$(dirname "$INPUT_FILE_PATH")" 2>&1
echo "--- end"
case "$marker" in *long*) sleep 600 ;; esac
echo "$marker processed by $OSCAR_SERVICE_NAME" > "$TMP_OUTPUT_DIR/$marker.txt"
`;

describe('delegation with OIDC refresh-token credentials', () => {
  let idp: OidcProviderFixture;
  let h: Harness;
  let a: ClusterProcess;
  let refreshToken: string;
  let accessToken: string;
  /** Refresh tokens that must never appear anywhere (the good one and a bad one). */
  const secrets: string[] = [];
  let longJob: Submitted;
  const delegated: Submitted[] = [];

  const as = (c: ClusterProcess) => new FlotillaClient({ endpoint: c.url, token: accessToken });

  beforeAll(async () => {
    idp = await startOidcProvider();
    const env = {
      FLOTILLA_OIDC_ISSUERS: idp.issuer,
      FLOTILLA_OIDC_CLIENT_ID: idp.clientId,
      FLOTILLA_OIDC_CLIENT_SECRET: idp.clientSecret,
      FLOTILLA_OIDC_RESOURCE: idp.resource,
    };
    h = await startDelegationClusters(
      [
        // debug: the log files hold as much as the managers ever write.
        { id: 'a', args: ['--cpus', '1', '--log-level', 'debug'], env },
        { id: 'b', args: ['--cpus', '2', '--log-level', 'debug'], env },
        { id: 'c', args: ['--cpus', '2', '--log-level', 'debug'], env },
      ],
      { adminPassword: 'pw' },
    );
    a = h.get('a');
    const minted = await idp.mintTokens(USER);
    accessToken = minted.accessToken;
    refreshToken = minted.refreshToken as string;
    expect(refreshToken).toEqual(expect.any(String));
    secrets.push(refreshToken);
  }, 240_000);

  afterAll(async () => {
    await h?.close();
    await idp?.stop();
  });

  /** The service as the user writes it: endpoints only in `clusters`, no password anywhere. */
  const definition = (name: string, rt: string, extra: Record<string, unknown> = {}) => ({
    name,
    image: 'ghcr.io/grycap/alpine',
    script: ENV_SCRIPT,
    cpu: '1',
    memory: '64Mi',
    environment: { variables: { MODE: 'oidc' }, secrets: { refresh_token: rt, JOB_SECRET } },
    output: [{ storage_provider: 'minio.default', path: `${name}/out` }],
    clusters: Object.fromEntries(h.clusters.map((c) => [c.id, { endpoint: c.url }])),
    federation: {
      topology: 'mesh',
      delegation: 'static',
      rescheduler_threshold: 30,
      members: [
        { type: 'oscar', cluster_id: 'b', service_name: `${name}-b`, priority: 0 },
        { type: 'oscar', cluster_id: 'c', service_name: `${name}-c`, priority: 1 },
      ],
    },
    ...extra,
  });

  it('a user creates the federated service with a bearer token and a refresh token, no passwords', async () => {
    const res = await a.client.send('POST', '/system/services', {
      body: definition(SVC, refreshToken),
      token: accessToken,
      timeoutMs: 120_000,
    });
    const text = await res.text();
    for (const s of secrets) expect(text).not.toContain(s);
    expect(res.status, text).toBe(201);
    expect(JSON.parse(text)).toMatchObject({ outcome: 'created' });
    // Every node belongs to the user (workers too: they must accept the user's delegated jobs).
    for (const [c, name] of [
      ['a', SVC],
      ['b', `${SVC}-b`],
      ['c', `${SVC}-c`],
    ] as const) {
      const svc = (await h.get(c).client.getService(name)) as Record<string, any>;
      expect(svc.owner, `owner of ${c}/${name}`).toBe(USER);
      for (const entry of Object.values(svc.clusters ?? {}) as Array<Record<string, unknown>>) {
        expect(entry.auth_password ?? null).toBeNull();
      }
    }
  }, 150_000);

  it('jobs are delegated with an access token minted from it while no cluster has a password', async () => {
    longJob = await submitMarked(as(a), SVC, newMarker('long', 'occupier'));
    expect(longJob.delegatedTo).toBeNull();
    await waitFor(async () => expect((await allJobs(as(a), SVC))[longJob.jobId]?.status).toBe('Running'), {
      what: 'the long job running on a',
    });
    await waitCacheOnline(a.client, SVC, ['b', 'c']); // polled with the minted token, online
    await sleep(CACHE_ROUND_MS); // and polled again since the long job took a's cpu
    for (let i = 0; i < 2; i++)
      delegated.push(await submitMarked(as(a), SVC, newMarker('quick', `oidc${i}`)));
    expect(delegated.map((s) => s.delegatedTo)).toEqual(['b', 'b']);
    const listing = await waitJobsEnded(
      as(a),
      SVC,
      delegated.map((s) => s.jobId),
      60_000,
    );
    for (const s of delegated) {
      expect(listing[s.jobId]).toMatchObject({ status: 'Succeeded', delegated_to: 'b' });
      const { text } = await jobsApi(as(a)).log(SVC, s.jobId);
      expect(text).toContain(`marker=${s.marker} ran-on=${SVC}-b`);
    }
    // The worker took them as the user's jobs: the user sees them on b.
    const onB = await allJobs(as(h.get('b')), `${SVC}-b`);
    expect(Object.values(onB).filter((j) => j.status === 'Succeeded')).toHaveLength(2);
    // Outputs in the origin's bucket, through the delegation token's scoped keys.
    const names = (await jobsApi(a.client).objects(SVC)).objects.map((o) => o.object_name);
    for (const s of delegated) expect(names).toContain(`out/${s.marker}.txt`);
  }, 120_000);

  it('the refresh token is not in any GET of the service, on any cluster, for any caller', async () => {
    for (const c of h.clusters) {
      const name = c.id === 'a' ? SVC : `${SVC}-${c.id}`;
      for (const client of [c.client, as(c)]) {
        const bodies = [
          await client.send('GET', `/system/services/${name}`),
          await client.send('GET', '/system/services'),
          await client.send('GET', `/system/federation/${name}`),
          await client.send('GET', `/system/replicas/${name}`),
        ];
        for (const res of bodies) {
          const text = await res.text();
          expect(res.status, `${c.id} ${res.url}: ${text.slice(0, 200)}`).toBe(200);
          for (const s of secrets) expect(text, `${c.id} ${res.url}`).not.toContain(s);
        }
        const svc = (await client.getService(name)) as { environment?: { secrets?: Record<string, string> } };
        expect([undefined, '***']).toContain(svc.environment?.secrets?.refresh_token);
        expect(svc.environment?.secrets?.JOB_SECRET).toBe('***');
      }
    }
  }, 60_000);

  it("the refresh token is not in a job's environment (local or delegated)", async () => {
    const logs = [
      (await jobsApi(as(a)).log(SVC, longJob.jobId)).text,
      ...(await Promise.all(delegated.map(async (s) => (await jobsApi(as(a)).log(SVC, s.jobId)).text))),
    ];
    for (const log of logs) {
      expect(log).toContain('--- env');
      expect(log).toContain(`JOB_SECRET=${JOB_SECRET}`); // the dump works: other secrets are there
      expect(log).not.toMatch(/refresh_token/i);
      for (const s of secrets) expect(log).not.toContain(s);
    }
  }, 60_000);

  it('a worker delegates onward with its own copy of the owner token (no passwords there either)', async () => {
    const b = h.get('b');
    const worker = `${SVC}-b`;
    // Fill b's two cpus with the user's own jobs there; a is full too (the long job).
    const fillers: Submitted[] = [];
    for (let i = 0; i < 2; i++)
      fillers.push(await submitMarked(as(b), worker, newMarker('long', `bfill${i}`)));
    expect(fillers.map((f) => f.delegatedTo)).toEqual([null, null]);
    await waitFor(
      async () => {
        const jobs = await allJobs(as(b), worker);
        for (const f of fillers) expect(jobs[f.jobId]?.status).toBe('Running');
      },
      { what: "b's two long jobs running" },
    );
    await sleep(CACHE_ROUND_MS); // b's cache sees a full (and c free)
    const onward = await submitMarked(as(b), worker, newMarker('quick', 'onward'));
    expect(onward.delegatedTo).toBe('c');
    const listing = await waitJobsEnded(as(b), worker, [onward.jobId], 60_000);
    expect(listing[onward.jobId]).toMatchObject({ status: 'Succeeded', delegated_to: 'c' });
    const { text } = await jobsApi(as(b)).log(worker, onward.jobId);
    expect(text).toContain(`marker=${onward.marker} ran-on=${SVC}-c`);
    for (const s of secrets) expect(text).not.toContain(s);
    for (const f of fillers) await jobsApi(as(b)).log(worker, f.jobId); // live logs readable
    for (const f of fillers) {
      const res = await as(b).send('DELETE', `/system/logs/${worker}/${f.jobId}`);
      expect(res.status, await res.text()).toBeLessThan(300);
    }
  }, 120_000);

  it('error answers that carry the request never echo the refresh token', async () => {
    const rt = refreshToken;
    const cases: Array<[string, Record<string, unknown>]> = [
      ['invalid field', { ...definition('oidcerr', rt), cpu: 'lots' }],
      [
        'unknown member cluster',
        {
          ...definition('oidcerr', rt),
          federation: { members: [{ type: 'oscar', cluster_id: 'zz', service_name: 'x' }] },
        },
      ],
      ['name taken', definition(SVC, rt)],
      [
        'bad delegation policy',
        { ...definition('oidcerr', rt), federation: { delegation: 'fastest', members: [] } },
      ],
    ];
    for (const [what, body] of cases) {
      const res = await as(a).send('POST', '/system/services', { body, timeoutMs: 60_000 });
      const text = await res.text();
      expect(res.status, `${what}: ${text}`).toBeGreaterThanOrEqual(400);
      expect(text, what).not.toContain(rt);
    }
    const put = await as(a).send('PUT', '/system/services', {
      body: { ...definition(SVC, rt), memory: 'huge' },
    });
    const putText = await put.text();
    expect(put.status, putText).toBeGreaterThanOrEqual(400);
    expect(putText).not.toContain(rt);
  }, 60_000);

  it('a bad refresh token fails without its value in any error text', async () => {
    const bad = `bad-rt-${randomBytes(24).toString('base64url')}`;
    secrets.push(bad);
    // 1. A new federated service whose refresh token the issuer refuses.
    const badDef = definition('oidcbad', bad);
    badDef.federation.members = [{ type: 'oscar', cluster_id: 'b', service_name: 'oidcbad-b', priority: 0 }];
    const sent = await as(a).send('POST', '/system/services', { body: badDef, timeoutMs: 120_000 });
    const res = { status: sent.status, body: await sent.text() };
    expect(res.body).not.toContain(bad);
    if (res.status === 201) {
      // Accepted (the token is checked only when used): a job that would be delegated stays here.
      const job = await submitMarked(as(a), 'oidcbad', newMarker('quick', 'bad'));
      expect(job.delegatedTo).toBeNull();
      const info = (await allJobs(as(a), 'oidcbad'))[job.jobId];
      expect(JSON.stringify(info)).not.toContain(bad);
    } else {
      expect(res.status).toBeGreaterThanOrEqual(400);
    }

    // 2. The working service gets the bad token by PUT (the user edits what GET showed): the
    // next delegation cannot mint a token; the job stays on a; the change's propagation to
    // the workers reports errors without the token.
    const current = (await as(a).getService(SVC)) as Record<string, any>;
    current.environment.secrets.refresh_token = bad;
    const put = await as(a).send('PUT', '/system/services', { body: current, timeoutMs: 60_000 });
    const putText = await put.text();
    expect(putText).not.toContain(bad);
    expect(put.status, putText).toBeLessThan(300);
    await sleep(CACHE_ROUND_MS);
    // Delegation at intake finds b in the plan but no credential to reach it: the job stays.
    const stuck = await submitMarked(as(a), SVC, newMarker('quick', 'stuck'));
    expect(stuck.delegatedTo).toBeNull();
    await sleep(2_000); // the refused exchanges are logged meanwhile (checked below)
    const listing = await allJobs(as(a), SVC);
    expect(listing[stuck.jobId]).toMatchObject({ status: 'Pending', delegated_to: null });
    for (const text of [
      JSON.stringify(listing),
      (await jobsApi(as(a)).log(SVC, stuck.jobId)).text,
      await (await as(a).send('GET', `/system/federation/${SVC}`)).text(),
    ]) {
      expect(text).not.toContain(bad);
      expect(text).not.toContain(refreshToken);
    }
  }, 120_000);

  it('neither refresh token is in any manager log file (debug level)', async () => {
    await sleep(1_000);
    // The failed exchanges were logged (so the check below looks at real error lines), once
    // per service: a refused token is not sent to the issuer again on every poll.
    const warnings = (await a.log())
      .split('\n')
      .filter((l) => l.includes('refresh-token exchange failed'))
      .map((l) => (JSON.parse(l) as { service: string }).service);
    expect(warnings).toContain(SVC);
    expect(warnings.filter((s) => s === SVC)).toHaveLength(1);
    for (const c of h.clusters) {
      const log = await c.log();
      expect(log.length, `${c.id} wrote a log`).toBeGreaterThan(0);
      for (const s of secrets) expect(log.includes(s), `${c.id}.log holds a refresh token`).toBe(false);
      expect(log.includes(idp.clientSecret), `${c.id}.log holds the OIDC client secret`).toBe(false);
    }
  }, 30_000);
});
