// OSCAR drop-in with two OIDC users (a real oidc-provider on loopback), requests sent as OSCAR's
// Robot Framework suite sends them (Authorization: Bearer, Content-Type: text/json, Accept:
// application/json, Content-Length: 0 on body-less calls): secrets.robot,
// delete-not-own-service.robot, visibility.robot, system-logs.robot, and who sees which
// jobs, logs, buckets, metrics and quotas. Every answer is checked against OSCAR's contract.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, startInProcess, type TestManager } from '../support/in-process.ts';
import { type OidcProviderFixture, startOidcProvider } from '../support/oidc-provider.ts';
import { basicAuth, expectOscar, JOB_NAME, send, waitForJob } from './oscar-clients.ts';

const ALICE = 'alice@egi.example';
const BOB = 'bob@egi.example';
const ADMIN = basicAuth('oscar', ADMIN_PASSWORD);

let provider: OidcProviderFixture;
let tm: TestManager;
let base: string;
const bearer: Record<string, string> = {};

const as = (who: string) => bearer[who] ?? ADMIN;
const robot = (who: string, method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown) =>
  send(base, 'robot', method, path, {
    authorization: as(who),
    body: body === undefined ? undefined : JSON.stringify(body),
  });

/** data/00-cowsay.yaml's service as the suite builds it (its script, VO, visibility). */
const cowsay = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  vo: 'vo.example.eu',
  memory: '256Mi',
  image: 'ghcr.io/grycap/cowsay',
  script: '#!/bin/sh\necho "Secret key is: $SECRET_KEY"\ncat "$INPUT_FILE_PATH"\n',
  input: [{ storage_provider: 'minio', path: `${name}/input` }],
  ...extra,
});

beforeAll(async () => {
  provider = await startOidcProvider();
  tm = await startInProcess({ oidcIssuers: provider.issuer, clusterId: 'compat-oidc' });
  base = await tm.manager.listen();
  for (const who of [ALICE, BOB]) bearer[who] = `Bearer ${(await provider.mintTokens(who)).accessToken}`;
});
afterAll(async () => {
  await tm?.close();
  await provider?.stop();
});

/** Runs one job and answers its log. */
const jobLog = async (who: string, service: string): Promise<string> => {
  const job = await robot(who, 'POST', `/job/${service}`, { message: 'Hello' });
  expect(job.status, job.text).toBe(201);
  const name = job.json.job_id as string;
  expect(name).toMatch(JOB_NAME(service));
  expect(await waitForJob(base, service, name, as(who))).toBe('Succeeded');
  const log = await robot(who, 'GET', `/system/logs/${service}/${name}`);
  expect(log.status).toBe(200);
  expectOscar('GET', '/system/logs/{serviceName}/{jobName}', log);
  return log.text;
};

describe('secrets.robot: a PUT without environment.secrets keeps the secrets', () => {
  const NAME = 'robot-secret-svc';

  it('a created secret reaches the job; a new one replaces it; one left out stays', async () => {
    const created = await robot(ALICE, 'POST', '/system/services', {
      ...cowsay(NAME),
      environment: { secrets: { SECRET_KEY: 'robot-secret' } },
    });
    expect(created.status, created.text).toBe(201);
    expectOscar('POST', '/system/services', created);
    expect(await jobLog(ALICE, NAME)).toContain('Secret key is: robot-secret');

    const replaced = await robot(ALICE, 'PUT', '/system/services', {
      ...cowsay(NAME),
      environment: { secrets: { SECRET_KEY: 'another-robot-secret' } },
    });
    expect([200, 204]).toContain(replaced.status);
    expect(await jobLog(ALICE, NAME)).toContain('Secret key is: another-robot-secret');

    // "OSCAR Update Service Again": the file without a secret.
    const again = await robot(ALICE, 'PUT', '/system/services', cowsay(NAME));
    expect([200, 204]).toContain(again.status);
    expectOscar('PUT', '/system/services', again);
    expect(await jobLog(ALICE, NAME)).toContain('Secret key is: another-robot-secret');
    const shown = await robot(ALICE, 'GET', `/system/services/${NAME}`);
    expect(shown.json.environment.secrets).toEqual({ SECRET_KEY: '***' });
    expect(shown.text).not.toContain('another-robot-secret');
  });
});

describe('delete-not-own-service.robot: OSCAR refuses with its own words', () => {
  const RESTRICTED = 'robot-test-not-own';
  const PRIVATE = 'robot-test-not-own-private';

  beforeAll(async () => {
    for (const [name, extra] of [
      [RESTRICTED, { visibility: 'restricted', allowed_users: [ALICE, BOB] }],
      [PRIVATE, { visibility: 'private' }],
    ] as const) {
      const res = await robot(ALICE, 'POST', '/system/services', cowsay(name, extra));
      expect(res.status, res.text).toBe(201);
    }
  });

  it('another user deleting a restricted or private service: 403 "You do not have permission to delete this service"', async () => {
    for (const name of [RESTRICTED, PRIVATE]) {
      const res = await robot(BOB, 'DELETE', `/system/services/${name}`);
      expect(res.status, res.text).toBe(403);
      expect(res.text).toContain('You do not have permission to delete this service');
      expectOscar('DELETE', '/system/services/{serviceName}', res);
      const still = await robot(ALICE, 'GET', `/system/services/${name}`);
      expect(still.text).toContain(`"name":"${name}"`);
    }
  });

  it('a user deleting a service that does not exist: the same 403 (the name is not revealed); the admin gets 404', async () => {
    const res = await robot(BOB, 'DELETE', '/system/services/robot-test-non-existent-abc123');
    expect(res.status).toBe(403);
    expect(res.text).toContain('You do not have permission to delete this service');
    const admin = await robot('admin', 'DELETE', '/system/services/robot-test-non-existent-abc123');
    expect(admin.status).toBe(404);
    expectOscar('DELETE', '/system/services/{serviceName}', admin);
  });
});

describe('visibility.robot: who lists and reads which service', () => {
  const names = { private: 'vis-private', restricted: 'vis-restricted', public: 'vis-public' };

  beforeAll(async () => {
    for (const [visibility, name] of Object.entries(names)) {
      const res = await robot(ALICE, 'POST', '/system/services', {
        ...cowsay(name),
        visibility,
        allowed_users: visibility === 'restricted' ? [ALICE, BOB] : [ALICE],
      });
      expect(res.status, res.text).toBe(201);
    }
  });

  it("bob's list holds the restricted and public ones, never the private one; alice's all three", async () => {
    const bobs = await robot(BOB, 'GET', '/system/services');
    expectOscar('GET', '/system/services', bobs);
    const bobNames = bobs.json.map((s: { name: string }) => s.name);
    expect(bobNames).toEqual(expect.arrayContaining([names.restricted, names.public]));
    expect(bobNames).not.toContain(names.private);
    const alices = (await robot(ALICE, 'GET', '/system/services')).json.map((s: { name: string }) => s.name);
    expect(alices).toEqual(expect.arrayContaining(Object.values(names)));
  });

  it("bob is refused alice's private service, its jobs, deployment, federation and metrics (403)", async () => {
    for (const [template, path] of [
      ['/system/services/{serviceName}', `/system/services/${names.private}`],
      ['/system/logs/{serviceName}', `/system/logs/${names.private}`],
      ['/system/services/{serviceName}/deployment', `/system/services/${names.private}/deployment`],
      ['/system/services/{serviceName}/auth', `/system/services/${names.private}/auth`],
      ['/system/federation/{serviceName}', `/system/federation/${names.private}`],
      ['/system/metrics/{serviceName}', `/system/metrics/${names.private}`],
    ] as const) {
      const res = await robot(BOB, 'GET', path);
      expect(res.status, `${path}: ${res.text}`).toBe(403);
      // Where OSCAR's contract names no 403 the status is Flotilla's (its tenancy, DESIGN §3.2).
      expectOscar('GET', template, res, contractDeclares403(template) ? {} : { extension: 'DESIGN §3.2' });
    }
    const run = await robot(BOB, 'POST', `/run/${names.private}`, { message: 'x' });
    expect(run.status).toBe(403);
  });

  it('bob may run the public one (his job, his name in the usage metrics)', async () => {
    expect(await jobLog(BOB, names.public)).toContain('Hello');
    const summary = await robot(BOB, 'GET', '/system/metrics');
    expect(summary.status).toBe(200);
    expectOscar('GET', '/system/metrics', summary);
    expect(summary.json.totals.users).toEqual([BOB]);
    const byUser = await robot('admin', 'GET', '/system/metrics/breakdown?group_by=user');
    expect(byUser.json.items).toEqual(
      expect.arrayContaining([expect.objectContaining({ key: BOB, membership: 'member' })]),
    );
  });
});

/** Whether OSCAR's contract lists a 403 for the GET of this template. */
const contractDeclares403 = (template: string): boolean =>
  ['/system/services/{serviceName}/deployment', '/system/services/{serviceName}/auth'].includes(template);

describe('admin-only routes refuse an OIDC user', () => {
  it("system-logs.robot: the manager's log is 401 or 403 for an OIDC token", async () => {
    const res = await robot(ALICE, 'GET', '/system/logs');
    expect([401, 403]).toContain(res.status);
    expectOscar('GET', '/system/logs/', res, {
      extension: 'DESIGN §3.1: the manager log is admin only (403)',
    });
  });

  it("quotas: one's own needs the kubernetes executor (501); another user's is the admin's (403)", async () => {
    const own = await robot(ALICE, 'GET', '/system/quotas/user');
    expect(own.status, own.text).toBe(501);
    expectOscar('GET', '/system/quotas/user', own, { extension: 'DESIGN §3.1: 501 names the executor' });
    const other = await robot(ALICE, 'GET', `/system/quotas/user/${encodeURIComponent(BOB)}`);
    expect(other.status).toBe(403);
    expectOscar('GET', '/system/quotas/user/{userId}', other);
    const put = await robot(ALICE, 'PUT', `/system/quotas/user/${encodeURIComponent(BOB)}`, { cpu: '1' });
    expect(put.status).toBe(403);
  });
});

describe('buckets and presigned URLs per user', () => {
  const BUCKET = 'alice-private-bucket';

  it("alice's private bucket: she presigns and uploads; bob may neither list nor presign it", async () => {
    const created = await robot(ALICE, 'POST', '/system/buckets', {
      bucket_name: BUCKET,
      visibility: 'private',
    });
    expect(created.status, created.text).toBe(201);
    expectOscar('POST', '/system/buckets', created);
    const signed = await robot(ALICE, 'POST', `/system/buckets/${BUCKET}/presign`, {
      object_key: 'a.txt',
      operation: 'upload',
    });
    expect(signed.status, signed.text).toBe(200);
    expectOscar('POST', '/system/buckets/{bucket}/presign', signed);
    expect((await fetch(signed.json.url, { method: 'PUT', body: 'mine' })).status).toBe(200);
    const listed = await robot(ALICE, 'GET', `/system/buckets/${BUCKET}`);
    expect(listed.json.objects.map((o: { object_name: string }) => o.object_name)).toEqual(['a.txt']);
    const bobList = await robot(BOB, 'GET', '/system/buckets');
    expect(bobList.json.map((b: { bucket_name: string }) => b.bucket_name)).not.toContain(BUCKET);
    const bobSign = await robot(BOB, 'POST', `/system/buckets/${BUCKET}/presign`, {
      object_key: 'a.txt',
      operation: 'download',
    });
    expect(bobSign.status).toBe(403);
    const bobDelete = await robot(BOB, 'DELETE', `/system/buckets/${BUCKET}`);
    expect(bobDelete.status).toBe(403);
    expectOscar('DELETE', '/system/buckets/{bucket}', bobDelete);
    const gone = await robot(ALICE, 'DELETE', `/system/buckets/${BUCKET}`);
    expect(gone.status).toBe(204);
  });
});

describe("buckets.robot and delete-not-own.robot: the bucket API in OSCAR's shape and words", () => {
  const NAME = 'robot-test';
  /** buckets.robot's "Check Bucket Visibility": the entry whose bucket_path is the bucket. */
  const listed = async (who: string) => {
    const res = await robot(who, 'GET', '/system/buckets');
    expect(res.status).toBe(200);
    expectOscar('GET', '/system/buckets', res, {
      extension: 'OSCAR (Go) answers allowed_users: null for a bucket that is not restricted',
    });
    return (res.json as Array<Record<string, unknown>>).find((b) => b.bucket_path === NAME);
  };

  it('create public → restricted (two users) → private: allowed_users a list only when restricted, else null', async () => {
    // data/bucket.json, as the suite sends it (text/json, visibility changed in place).
    const created = await robot(ALICE, 'POST', '/system/buckets', {
      bucket_name: NAME,
      visibility: 'public',
      allowed_users: [],
    });
    expect(created.status, created.text).toBe(201);
    expect(await listed(ALICE)).toMatchObject({
      bucket_name: NAME,
      visibility: 'public',
      allowed_users: null,
    });
    // The suite's "Should Contain … "bucket_name":"X","visibility":"…"": the two keys side by side.
    expect((await robot(ALICE, 'GET', '/system/buckets')).text).toContain(
      `"bucket_name":"${NAME}","visibility":"public"`,
    );
    const restricted = await robot(ALICE, 'PUT', '/system/buckets', {
      bucket_name: NAME,
      visibility: 'restricted',
      allowed_users: [ALICE, BOB],
    });
    expect([200, 204]).toContain(restricted.status);
    expectOscar('PUT', '/system/buckets', restricted);
    const entry = await listed(ALICE);
    expect(entry?.visibility).toBe('restricted');
    expect([...((entry?.allowed_users ?? []) as string[])].sort()).toEqual([ALICE, BOB].sort());
    expect(await listed(BOB)).toMatchObject({ owner: ALICE, visibility: 'restricted' });
    const one = await robot(BOB, 'GET', `/system/buckets/${NAME}`);
    expect(one.status).toBe(200);
    expect(one.json).toMatchObject({ bucket_name: NAME, bucket_path: NAME, allowed_users: [ALICE, BOB] });

    const priv = await robot(ALICE, 'PUT', '/system/buckets', { bucket_name: NAME, visibility: 'private' });
    expect([200, 204]).toContain(priv.status);
    expect(await listed(ALICE)).toMatchObject({ visibility: 'private', allowed_users: null });
    expect(await listed(BOB)).toBeUndefined();
  });

  it('delete-not-own.robot: another user deleting it → 403 "is not authorised"; it stays', async () => {
    await robot(ALICE, 'PUT', '/system/buckets', {
      bucket_name: NAME,
      visibility: 'restricted',
      allowed_users: [ALICE, BOB],
    });
    // Bob may read it (restricted, listed) and still not delete it: only the owner and the admin.
    const res = await robot(BOB, 'DELETE', `/system/buckets/${NAME}`);
    expect(res.status, res.text).toBe(403);
    expect(res.text).toContain('is not authorised');
    expect(res.text).toContain(`User '${BOB}'`);
    expectOscar('DELETE', '/system/buckets/{bucket}', res);
    const put = await robot(BOB, 'PUT', '/system/buckets', { bucket_name: NAME, visibility: 'public' });
    expect(put.status).toBe(403);
    expect(put.text).toContain('is not authorised');
    expect((await robot(ALICE, 'GET', '/system/buckets')).text).toContain(`"bucket_name":"${NAME}"`);
  });

  it('a private bucket read by another user → 403 "is not authorised" (OSCAR\'s get handler words)', async () => {
    await robot(ALICE, 'PUT', '/system/buckets', { bucket_name: NAME, visibility: 'private' });
    const res = await robot(BOB, 'GET', `/system/buckets/${NAME}`);
    expect(res.status).toBe(403);
    expect(res.text).toContain(`User '${BOB}' is not authorised`);
  });

  it('an unknown bucket: 404 "The bucket \'…\' does not exist"; the owner deletes hers (204)', async () => {
    const missing = await robot(ALICE, 'DELETE', '/system/buckets/robot-never-made');
    expect(missing.status).toBe(404);
    expect(missing.text).toContain("The bucket 'robot-never-made' does not exist");
    expectOscar('DELETE', '/system/buckets/{bucket}', missing);
    const gone = await robot(ALICE, 'DELETE', `/system/buckets/${NAME}`);
    expect(gone.status).toBe(204);
    expect(await listed(ALICE)).toBeUndefined();
  });

  it('OSCAR v3 clients name the bucket bucket_path; a folder in it is a 400 naming the field', async () => {
    const v3 = await robot(ALICE, 'POST', '/system/buckets', { bucket_path: ' /robot-v3-bucket/ ' });
    expect(v3.status, v3.text).toBe(201);
    expect((await robot(ALICE, 'GET', '/system/buckets/robot-v3-bucket')).json).toMatchObject({
      owner: ALICE,
      visibility: 'private',
    });
    const folder = await robot(ALICE, 'POST', '/system/buckets', { bucket_path: 'robot-v3-other/folder' });
    expect(folder.status).toBe(400);
    expect(folder.json.message).toMatch(/^bucket_path:/);
    expect((await robot(ALICE, 'DELETE', '/system/buckets/robot-v3-bucket')).status).toBe(204);
  });

  it("a service's bucket cannot be changed through the bucket API, even by its owner (403, OSCAR's words)", async () => {
    const svc = await robot(ALICE, 'POST', '/system/services', cowsay('robot-bucket-svc'));
    expect(svc.status, svc.text).toBe(201);
    const res = await robot(ALICE, 'PUT', '/system/buckets', {
      bucket_name: 'robot-bucket-svc',
      visibility: 'public',
    });
    expect(res.status, res.text).toBe(403);
    expect(res.text).toContain("A bucket from a service can't be modified");
    expect((await robot(ALICE, 'GET', '/system/buckets/robot-bucket-svc')).json.visibility).toBe('private');
    expect((await robot(ALICE, 'DELETE', '/system/services/robot-bucket-svc')).status).toBe(204);
  });
});
