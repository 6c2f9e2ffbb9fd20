// The receiving side of the two-step delegation hand-over (ADR 13) against one real manager
// in process (fastify inject) with a real OIDC provider: a job handed over with
// X-Delegation-Hold is stored but never runs until its origin confirms it; an abandon or an
// expiry drops it for good (a late confirm or send is refused); confirm and abandon are the
// hand-over's caller's alone; bad headers and paths are 4xx naming them; the delegation
// token never shows in an answer or a log line.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgliteStore } from '../../src/adapters/store-pglite/pglite-store.ts';
import { loadConfig } from '../../src/config/config.ts';
import { createLogger } from '../../src/main/logger.ts';
import { createManager, type Manager } from '../../src/main/manager.ts';
import { ADMIN_PASSWORD, basic } from '../support/in-process.ts';
import { type OidcProviderFixture, startOidcProvider } from '../support/oidc-provider.ts';
import { waitFor } from '../support/wait.ts';

const ALICE = 'alice@egi.example';
const BOB = 'bob@egi.example';
const ADMIN = { authorization: basic() };
const ORIGIN = 'origin-a';
const DLG_TOKEN = `dlg_${'5ec7'.repeat(16)}`;

let idp: OidcProviderFixture;
let manager: Manager;
let store: PgliteStore;
let dataDir: string;
const logs: string[] = [];
const answers: string[] = [];
const tokens: Record<string, string> = {};
const bearer = (who: string) => ({ authorization: `Bearer ${tokens[who]}` });

const call = async (
  headers: Record<string, string>,
  opts: InjectOptions,
): Promise<LightMyRequestResponse> => {
  const res = await manager.http.inject({ ...opts, headers: { ...headers, ...opts.headers } });
  answers.push(res.body);
  return res;
};

/** The store's own parameterised query (protected on the adapter): what the test looks at. */
const sql = <R>(text: string, params: unknown[]): Promise<R[]> =>
  (store as unknown as { rawQuery<T>(t: string, p: unknown[]): Promise<T[]> }).rawQuery<R>(text, params);

const delegatedId = () => `${ORIGIN}.held-${randomUUID()}`;

/** A hand-over as an origin sends it: raw event, the delegation headers, a hold. */
const handOver = (
  who: Record<string, string>,
  service: string,
  id: string,
  extra: Record<string, string> = {},
) =>
  call(who, {
    method: 'POST',
    url: `/job/${service}`,
    payload: 'eA==',
    headers: {
      'content-type': 'application/octet-stream',
      'x-delegated-job-id': id,
      'x-delegated-from': ORIGIN,
      'x-delegation-token': DLG_TOKEN,
      'x-delegation-hold': '60',
      ...extra,
    },
  });

const step = (
  who: Record<string, string>,
  service: string,
  id: string,
  what: 'confirm' | 'abandon',
  /** null: no X-Delegated-From header at all. */
  from: string | null = ORIGIN,
) =>
  call(who, {
    method: 'POST',
    url: `/job/${service}/delegated/${encodeURIComponent(id)}/${what}`,
    headers: from === null ? {} : { 'x-delegated-from': from },
  });

interface JobInfo {
  status: string;
  start_time: string | null;
  reason?: string | null;
}

const jobOf = async (service: string, id: string): Promise<JobInfo | undefined> => {
  const res = await call(ADMIN, { method: 'GET', url: `/system/logs/${service}` });
  expect(res.statusCode, res.body).toBe(200);
  return (res.json().jobs as Record<string, JobInfo>)[id];
};

const ended = (service: string, id: string) =>
  waitFor(
    async () => {
      const j = await jobOf(service, id);
      return j && (j.status === 'Succeeded' || j.status === 'Failed') ? j : undefined;
    },
    20_000,
    `job ${id} to end`,
  );

/** A plain job of the service, submitted after `id`, has ended while `id` still waits. */
const stillWaits = async (service: string, id: string) => {
  const other = await call(bearer(ALICE), {
    method: 'POST',
    url: `/job/${service}`,
    payload: 'eA==',
    headers: { 'content-type': 'application/octet-stream' },
  });
  expect(other.statusCode, other.body).toBe(201);
  expect((await ended(service, other.json().job_id)).status).toBe('Succeeded');
  expect(await jobOf(service, id)).toMatchObject({ status: 'Pending', start_time: null });
};

beforeAll(async () => {
  idp = await startOidcProvider();
  dataDir = await mkdtemp(join(tmpdir(), 'flotilla-hold-'));
  const destination = new Writable({
    write(chunk, _enc, done) {
      logs.push(String(chunk));
      done();
    },
  });
  const config = loadConfig(
    { dataDir, adminPassword: ADMIN_PASSWORD, logLevel: 'debug', port: '0', oidcIssuers: idp.issuer },
    {},
  );
  store = await PgliteStore.open(undefined);
  manager = await createManager(config, {
    store,
    logger: createLogger({ level: 'debug', clusterId: config.clusterId, destination }),
  });
  for (const who of [ALICE, BOB]) tokens[who] = (await idp.mintTokens(who)).accessToken;
  for (const name of ['held', 'held-other']) {
    const res = await call(bearer(ALICE), {
      method: 'POST',
      url: '/system/services',
      payload: {
        name,
        image: 'alpine',
        script: 'echo ran',
        cpu: '0.1',
        memory: '64Mi',
        visibility: 'public',
      },
    });
    expect(res.statusCode, res.body).toBe(201);
  }
}, 60_000);

afterAll(async () => {
  await manager?.close();
  await idp?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('a held hand-over (ADR 13)', () => {
  it('is stored but never runs until confirmed; then runs once; repeats are idempotent', async () => {
    const id = delegatedId();
    const first = await handOver(bearer(ALICE), 'held', id);
    expect(first.statusCode, first.body).toBe(201);
    expect(first.json()).toMatchObject({ held: true, delegated_to: null });
    const job = first.json().job_id as string;
    // The answer lost, the origin asks again: the same job, still held.
    const again = await handOver(bearer(ALICE), 'held', id);
    expect(again.json()).toMatchObject({ job_id: job, held: true });
    await stillWaits('held', job);

    const ok = await step(bearer(ALICE), 'held', id, 'confirm');
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.json()).toEqual({ job_id: job, state: 'confirmed' });
    expect((await ended('held', job)).status).toBe('Succeeded');
    // A duplicate confirm and a late repeat of the send change nothing.
    expect((await step(bearer(ALICE), 'held', id, 'confirm')).json()).toEqual({
      job_id: job,
      state: 'confirmed',
    });
    expect((await handOver(bearer(ALICE), 'held', id)).json()).toMatchObject({ job_id: job, held: false });
    const late = await step(bearer(ALICE), 'held', id, 'abandon');
    expect(late.statusCode, late.body).toBe(409);
    expect(late.json().code).toBe('DELEGATION_CONFIRMED');
    expect((await store.getJob(job))?.attempts).toBe(1);
  });

  it('an abandon drops it for good: it never runs, a late confirm or send is refused', async () => {
    const id = delegatedId();
    const job = (await handOver(bearer(ALICE), 'held', id)).json().job_id as string;
    const gone = await step(bearer(ALICE), 'held', id, 'abandon');
    expect(gone.statusCode, gone.body).toBe(200);
    expect(gone.json()).toEqual({ job_id: job, state: 'abandoned' });
    expect(await jobOf('held', job)).toMatchObject({ status: 'Failed', start_time: null });
    expect((await jobOf('held', job))?.reason).toMatch(/abandoned by the origin.*never ran/);
    const confirm = await step(bearer(ALICE), 'held', id, 'confirm');
    expect(confirm.statusCode, confirm.body).toBe(409);
    expect(confirm.json().code).toBe('DELEGATION_DROPPED');
    const send = await handOver(bearer(ALICE), 'held', id);
    expect(send.statusCode, send.body).toBe(409);
    expect(send.json().code).toBe('DELEGATION_DROPPED');
    // Abandoning twice answers the same.
    expect((await step(bearer(ALICE), 'held', id, 'abandon')).json()).toEqual({
      job_id: job,
      state: 'abandoned',
    });
    expect((await store.getJob(job))?.attempts).toBe(0);
  });

  it('an abandon of an id never seen is remembered: the hand-over arriving late is refused, not held', async () => {
    const id = delegatedId();
    const gone = await step(bearer(ALICE), 'held', id, 'abandon');
    expect(gone.statusCode, gone.body).toBe(200);
    expect(gone.json().state).toBe('abandoned');
    const late = await handOver(bearer(ALICE), 'held', id);
    expect(late.statusCode, late.body).toBe(409);
    expect(late.json().code).toBe('DELEGATION_DROPPED');
    const row = await store.getJobByDelegatedId(id);
    expect(row).toMatchObject({ status: 'Failed', holdState: 'dropped', attempts: 0 });
  });

  it('a hold nobody confirms expires: the rescheduler pass drops it, a late confirm is refused', async () => {
    const id = delegatedId();
    const res = await handOver(bearer(ALICE), 'held', id, { 'x-delegation-hold': '1' });
    expect(res.json().held).toBe(true);
    const job = res.json().job_id as string;
    const dropped = await waitFor(
      async () => {
        const j = await jobOf('held', job);
        return j?.status === 'Failed' ? j : undefined;
      },
      20_000,
      'the expired hold to be dropped',
    );
    expect(dropped.start_time).toBeNull();
    expect(dropped.reason).toMatch(/not confirmed by the origin in time/);
    const late = await step(bearer(ALICE), 'held', id, 'confirm');
    expect(late.statusCode, late.body).toBe(409);
    expect(late.json().code).toBe('DELEGATION_DROPPED');
  });

  it('a confirm after the deadline is refused at once, even before any sweep', async () => {
    const id = delegatedId();
    const res = await handOver(bearer(ALICE), 'held', id, { 'x-delegation-hold': '1' });
    const job = res.json().job_id as string;
    // Move the deadline into the past directly: the confirm's own conditional update decides.
    await sql("UPDATE jobs SET held_until = now() - interval '1 second' WHERE id = $1", [job]);
    const late = await step(bearer(ALICE), 'held', id, 'confirm');
    expect(late.statusCode, late.body).toBe(409);
    expect(late.json().code).toBe('DELEGATION_DROPPED');
    expect(await store.getJob(job)).toMatchObject({ holdState: 'dropped', status: 'Failed', attempts: 0 });
  });
});

describe('confirm and abandon belong to the hand-over’s caller', () => {
  it('another user of the public service, another origin, a missing origin: 404/400, the hold untouched', async () => {
    const id = delegatedId();
    const job = (await handOver(bearer(ALICE), 'held', id)).json().job_id as string;
    for (const what of ['confirm', 'abandon'] as const) {
      const bob = await step(bearer(BOB), 'held', id, what);
      expect(bob.statusCode, `${what}: ${bob.body}`).toBe(404);
      expect(bob.body).not.toContain(job);
      const admin = await step(ADMIN, 'held', id, what);
      expect(admin.statusCode, `${what}: ${admin.body}`).toBe(404);
      const other = await step(bearer(ALICE), 'held', id, what, 'origin-b');
      expect(other.statusCode, other.body).toBe(404);
      const wrongService = await step(bearer(ALICE), 'held-other', id, what);
      expect(wrongService.statusCode, wrongService.body).toBe(404);
      const none = await step(bearer(ALICE), 'held', id, what, null);
      expect(none.statusCode, none.body).toBe(400);
      expect(none.json().message).toMatch(/X-Delegated-From/);
    }
    // Bob cannot take the id over with a hand-over of his own either.
    const steal = await handOver(bearer(BOB), 'held', id);
    expect(steal.statusCode, steal.body).toBe(409);
    expect(steal.body).not.toContain(job);
    expect(await store.getJob(job)).toMatchObject({ holdState: 'held', status: 'Pending' });
    expect((await step(bearer(ALICE), 'held', id, 'confirm')).json().state).toBe('confirmed');
    await ended('held', job);
  });

  it('unauthenticated → 401; a service that is not there → 404', async () => {
    const id = delegatedId();
    expect((await step({}, 'held', id, 'confirm')).statusCode).toBe(401);
    const missing = await step(bearer(ALICE), 'no-such-service', id, 'confirm');
    expect(missing.statusCode).toBe(404);
    expect(missing.json().code).toBe('SERVICE_NOT_FOUND');
  });

  it('bad headers and paths are 4xx naming them, and store nothing', async () => {
    for (const hold of ['abc', '0', '901', '-1', '1e3', ' ', '99999']) {
      const res = await handOver(bearer(ALICE), 'held', delegatedId(), { 'x-delegation-hold': hold });
      expect(res.statusCode, `hold "${hold}": ${res.body}`).toBe(400);
      expect(res.json().message).toMatch(/X-Delegation-Hold/);
    }
    const noId = await call(bearer(ALICE), {
      method: 'POST',
      url: '/job/held',
      payload: 'eA==',
      headers: { 'content-type': 'application/octet-stream', 'x-delegation-hold': '30' },
    });
    expect(noId.statusCode, noId.body).toBe(400);
    expect(noId.json().message).toMatch(/X-Delegated-Job-ID/);
    for (const bad of ['has space', 'x'.repeat(129), '..', 'a/b']) {
      const res = await step(bearer(ALICE), 'held', bad, 'confirm');
      expect(res.statusCode, `id "${bad}": ${res.body}`).toBeGreaterThanOrEqual(400);
      expect(res.statusCode, `id "${bad}": ${res.body}`).toBeLessThan(500);
    }
    const rows = await sql<{ n: number }>(
      "SELECT count(*)::int AS n FROM jobs WHERE delegated_id LIKE '% %' OR delegated_id LIKE '%/%'",
      [],
    );
    expect(rows[0].n).toBe(0);
  });

  it('the delegation token is in no answer and no log line', () => {
    expect(answers.length).toBeGreaterThan(10);
    for (const a of answers) expect(a).not.toContain(DLG_TOKEN);
    expect(logs.length).toBeGreaterThan(0);
    for (const l of logs) expect(l).not.toContain(DLG_TOKEN);
  });
});
