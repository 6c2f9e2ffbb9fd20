// The audit trail and the per-grant rate limit on a real manager (B, on the machine's real
// PostgreSQL) over its real mTLS peer channel, with a second real manager (A) federating to
// it: a row within 1 s of each peer request, denials audited, 429 with Retry-After and
// recovery, rows moved to the cold table still listed and verifiable, a row changed by SQL
// named by `flotilla audit verify`, the route admin only, and no secret in rows or logs.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import fc from 'fast-check';
import pg from 'pg';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlotillaClient } from '../../client/api-client.ts';
import type { AuditRowView } from '../../client/audit-api.ts';
import { certTools } from '../../src/adapters/pki/x509-pki.ts';
import { PostgresStore } from '../../src/adapters/store-postgres/postgres-store.ts';
import { registerAudit } from '../../src/cli/commands/audit.ts';
import { loadConfig } from '../../src/config/config.ts';
import type { TokenVerifier } from '../../src/core/ports.ts';
import { OID_GRANT_ID, OID_SUBJECT } from '../../src/core/trust/claims.ts';
import { createManager, type Manager } from '../../src/main/manager.ts';
import { runCli } from '../support/cli.ts';
import { ADMIN_PASSWORD, basic, startInProcess, type TestManager } from '../support/in-process.ts';
import { forgeClient, managerCa, mtlsCall, utf8Ext } from '../support/peering.ts';
import { createTempDatabase, type TempDatabase } from '../support/postgres.ts';
import { sleep, waitFor } from '../support/wait.ts';

// A signed-in user who is not the admin (the route's own check is what is tested here).
const users: TokenVerifier = {
  issuers: ['https://issuer.test'],
  async verify(token) {
    const m = /^token-([a-z]+)$/.exec(token);
    return m ? { sub: `${m[1]}@example.org`, issuer: 'https://issuer.test', claims: {} } : undefined;
  },
};

const SECRET = `S3CR3T-${randomBytes(8).toString('hex')}`;
const HOT_SECONDS = 4;

let db: TempDatabase;
let dataDir: string;
let b: Manager;
let a: TestManager;
let cb: FlotillaClient;
let bUrl: string;
let channel: string;
let bCa: string;
const logs: string[] = [];
/** Every credential the test handled: none may reach a row or a log line. */
const secrets: string[] = [SECRET, ADMIN_PASSWORD];

const grant = (subject: string, scope: unknown, peer = 'a') =>
  cb.request<{ id: string }>('POST', '/system/grants', { body: { peer, subject, scope } });
const token = async (id: string) => {
  const t = (
    await cb.request<{ token: string }>('POST', `/system/grants/${id}/token`, { body: { ttl: 600 } })
  ).token;
  secrets.push(t);
  return t;
};

/** A certificate of B's CA for a new grant, enrolled by hand (the test holds the key). */
const rawPeer = async (subject: string, scope: unknown) => {
  const g = await grant(subject, scope);
  const { keyPem, csrPem } = await certTools.createKeyAndCsr('audit-test');
  secrets.push(
    keyPem
      .replace(/-----[A-Z ]+-----/g, '')
      .replace(/\s+/g, '')
      .slice(0, 60),
  );
  const res = await fetch(`${bUrl}/federation/v1/enroll`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token: await token(g.id), csr: csrPem }),
  });
  expect(res.status).toBe(200);
  const { certificate } = (await res.json()) as { certificate: string };
  return { grantId: g.id, tls: { ca: bCa, cert: certificate, key: keyPem } };
};

const allRows = async (): Promise<AuditRowView[]> => {
  const out: AuditRowView[] = [];
  for (let after: number | null = 0; after !== null; ) {
    const page: { rows: AuditRowView[]; next_after: number | null } = await cb.request<{
      rows: AuditRowView[];
      next_after: number | null;
    }>('GET', '/system/audit', {
      query: { after: String(after), limit: '1000' },
    });
    out.push(...page.rows);
    after = page.next_after;
  }
  return out;
};

const sql = async (text: string) => {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    return (await c.query(text)).rows;
  } finally {
    await c.end();
  }
};

/** `flotilla audit …` in this process (a child per command costs seconds on the shared machine). */
const cli = async (args: string[]) => {
  const program = new Command('flotilla').exitOverride();
  registerAudit(program);
  let stdout = '';
  let stderr = '';
  const out = process.stdout.write;
  const err = process.stderr.write;
  process.stdout.write = ((s: string) => {
    stdout += s;
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => {
    stderr += s;
    return true;
  }) as typeof process.stderr.write;
  process.exitCode = undefined;
  let code = 0;
  try {
    await program.parseAsync([...args, '--endpoint', bUrl, '--password', ADMIN_PASSWORD], { from: 'user' });
    code = Number(process.exitCode ?? 0);
  } catch (e) {
    code = (e as { exitCode?: number }).exitCode ?? 1;
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
    process.exitCode = undefined;
  }
  return { code, stdout, stderr };
};

beforeAll(async () => {
  db = await createTempDatabase();
  dataDir = await mkdtemp(join(tmpdir(), 'flotilla-audit-'));
  const config = loadConfig(
    {
      dataDir,
      adminPassword: ADMIN_PASSWORD,
      logLevel: 'debug',
      port: '0',
      clusterId: 'b',
      peerListen: '127.0.0.1:0',
      auditColdAfter: String(HOT_SECONDS),
      cpus: '2',
    },
    {},
  );
  b = await createManager(config, {
    store: await PostgresStore.open(db.url),
    verifier: users,
    logDestination: { write: (line) => void logs.push(line) },
  });
  bUrl = await b.listen();
  cb = new FlotillaClient({ endpoint: bUrl, password: ADMIN_PASSWORD });
  channel = `${(await cb.request<{ peer_channel_url: string }>('GET', '/system/info')).peer_channel_url}/federation/v1`;
  bCa = (await managerCa(b.store, dataDir)).certPem;
  a = await startInProcess({ clusterId: 'a', peerListen: '127.0.0.1:0' });
  await a.manager.listen();
}, 120_000);

afterAll(async () => {
  await a?.close();
  await b?.close();
  await rm(dataDir, { recursive: true, force: true });
  await db?.drop();
});

describe('audit rows for peer requests', () => {
  it('a peer request is audited within 1 s: who, what, outcome, bytes out, latency, trace id; the request only as its hash', async () => {
    const p = await rawPeer('alice', { resources: ['services'], verbs: ['list'] });
    const traceId = randomBytes(16).toString('hex');
    const res = await mtlsCall(`${channel}/list/services`, p.tls, {
      method: 'POST',
      body: { limit: 5, note: SECRET },
      headers: { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01`, 'x-secret': SECRET },
    });
    expect(res.status, res.text).toBe(200);
    const answered = Date.now();
    const row = await waitFor(
      async () => (await allRows()).find((r) => r.trace_id === traceId),
      1000,
      'the audit row within 1 s',
    );
    expect(Date.now() - answered).toBeLessThan(1000);
    expect(row).toMatchObject({
      grant_id: p.grantId,
      peer: 'a',
      subject: 'alice',
      verb: 'list',
      resource: 'services',
      outcome: 'ok',
      bytes_out: Buffer.byteLength(res.text!),
    });
    expect(row.query_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(row.latency_ms).toBeGreaterThanOrEqual(0);
    expect(Date.parse(row.at)).toBeLessThanOrEqual(answered);
    // The same request again hashes the same (the hash identifies, the row never holds it).
    const again = await mtlsCall(`${channel}/list/services`, p.tls, {
      method: 'POST',
      body: { note: SECRET, limit: 5 },
      headers: { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` },
    });
    expect(again.status).toBe(200);
    const rows = await waitFor(
      async () => {
        const rs = (await allRows()).filter((r) => r.trace_id === traceId);
        return rs.length === 2 ? rs : undefined;
      },
      5000,
      'the second row',
    );
    expect(rows[1].query_hash).toBe(rows[0].query_hash);
    // A hostile traceparent is not echoed into the row.
    await mtlsCall(`${channel}/list/services`, p.tls, {
      method: 'POST',
      body: {},
      headers: { traceparent: `00-${SECRET}-x-01` },
    });
    await waitFor(async () => (await allRows()).length >= 3, 5000, 'the third row');
  });

  it('denials are audited: a verb the grant lacks (403) and a certificate of an unknown grant (401)', async () => {
    const p = await rawPeer('bob', { resources: ['services'], verbs: ['get'] });
    const res = await mtlsCall(`${channel}/list/services`, p.tls, { method: 'POST', body: {} });
    expect(res.status).toBe(403);
    const denied = await waitFor(
      async () => (await allRows()).find((r) => r.grant_id === p.grantId),
      5000,
      'the 403 row',
    );
    expect(denied).toMatchObject({
      outcome: 'denied',
      peer: 'a',
      subject: 'bob',
      verb: 'list',
      resource: 'services',
    });

    const ca = await managerCa(b.store, dataDir);
    const ghost = `grt_${randomBytes(12).toString('hex')}`;
    const forged = await forgeClient(ca, [utf8Ext(OID_GRANT_ID, ghost), utf8Ext(OID_SUBJECT, 'eve')]);
    const unknown = await mtlsCall(`${channel}/capabilities`, {
      ca: bCa,
      cert: forged.certPem,
      key: forged.keyPem,
    });
    expect(unknown.status).toBe(401);
    const row401 = await waitFor(
      async () => (await allRows()).find((r) => r.grant_id === ghost),
      5000,
      'the 401 row',
    );
    expect(row401).toMatchObject({ outcome: 'denied', subject: 'eve', peer: null });
  });
});

describe('rate limit per grant', () => {
  it('answers 429 with Retry-After under a burst, lets the grant in again after waiting it, and audits rate_limited', async () => {
    const p = await rawPeer('carol', { resources: ['services'], verbs: ['list'], rate_per_minute: 20 });
    const agent = new Agent({ connect: { ...p.tls, rejectUnauthorized: true } });
    const call = async () => {
      const res = await request(`${channel}/capabilities`, { dispatcher: agent });
      const text = await res.body.text();
      return { status: res.statusCode, retryAfter: res.headers['retry-after'], text };
    };
    try {
      const burst = [];
      for (let i = 0; i < 26; i++) burst.push(await call());
      const ok = burst.filter((r) => r.status === 200).length;
      const limited = burst.filter((r) => r.status === 429);
      // 20 a minute: the burst is the minute's 20 (one more may drip in on a slow machine).
      expect(ok).toBeGreaterThanOrEqual(20);
      expect(ok).toBeLessThanOrEqual(22);
      expect(limited.length).toBeGreaterThan(0);
      const last = limited[limited.length - 1];
      expect(JSON.parse(last.text)).toMatchObject({ code: 'RATE_LIMITED', statusCode: 429 });
      const wait = Number(last.retryAfter);
      expect(Number.isInteger(wait) && wait >= 1 && wait <= 3).toBe(true);
      await sleep(wait * 1000);
      expect((await call()).status).toBe(200);
      const rows = await waitFor(
        async () => {
          const rs = (await allRows()).filter((r) => r.grant_id === p.grantId);
          return rs.length === burst.length + 1 ? rs : undefined;
        },
        5000,
        'a row for every request of the burst',
      );
      expect(rows.filter((r) => r.outcome === 'rate_limited')).toHaveLength(limited.length);
    } finally {
      await agent.destroy();
    }
  }, 30_000);
});

describe('federation changes', () => {
  it('a replica created over the peer channel is audited on both sides: the change at A, the request at B', async () => {
    const g = await grant('alice', { resources: ['services'], verbs: ['get', 'replicate'] });
    const ca = new FlotillaClient({ endpoint: a.manager.publicUrl(), password: ADMIN_PASSWORD });
    const peer = await ca.request<{ name: string }>('POST', '/system/peers', {
      body: { url: bUrl, token: await token(g.id) },
    });
    expect(peer.name).toBe('b');
    const res = await ca.send('POST', '/system/services', {
      body: {
        name: 'audited',
        image: 'ghcr.io/grycap/alpine',
        script: 'echo hi',
        cpu: '0.5',
        memory: '64Mi',
        federation: {
          topology: 'star',
          members: [{ type: 'oscar', cluster_id: 'b', service_name: 'audited-b' }],
        },
      },
    });
    expect(res.status, await res.text()).toBe(201);
    const atA = await waitFor(
      async () => (await a.store.audit.list({ limit: 100 })).find((r) => r.resource === 'services/audited-b'),
      5000,
      "A's row for the change",
    );
    expect(atA).toMatchObject({ peer: 'b', verb: 'create', outcome: 'ok', grantId: g.id, subject: 'alice' });
    const atB = await waitFor(
      async () =>
        (await allRows()).find((r) => r.grant_id === g.id && r.verb === 'replicate' && r.outcome === 'ok'),
      5000,
      "B's row for the request",
    );
    expect(atB).toMatchObject({ peer: 'a', subject: 'alice', resource: 'services' });
  }, 60_000);
});

describe('GET /system/audit', () => {
  it('is for the admin only: 401 without credentials, 403 for a signed-in user', async () => {
    const anon = await b.http.inject({ method: 'GET', url: '/system/audit' });
    expect(anon.statusCode).toBe(401);
    const user = await b.http.inject({
      method: 'GET',
      url: '/system/audit',
      headers: { authorization: 'Bearer token-mallory' },
    });
    expect(user.statusCode).toBe(403);
    expect(user.body).not.toContain('grt_');
    const wrong = await b.http.inject({
      method: 'GET',
      url: '/system/audit',
      headers: { authorization: basic('nope') },
    });
    expect(wrong.statusCode).toBe(401);
  });

  it('answers bad since, limit and after with 400 naming the field; since filters', async () => {
    const get = (qs: string) =>
      b.http.inject({ method: 'GET', url: `/system/audit?${qs}`, headers: { authorization: basic() } });
    for (const [qs, field] of [
      ['since=yesterday', 'since'],
      ['since=2026-13-45T00:00:00Z', 'since'],
      ['since=0000-01-01T00:00:00Z', 'since'],
      ['since=2026-01-01T00:00:00', 'since'],
      ['limit=0', 'limit'],
      ['limit=1001', 'limit'],
      ['limit=abc', 'limit'],
      ['limit=1.5', 'limit'],
      ['after=-1', 'after'],
      ['after=1e400', 'after'],
      ['evil=1', 'evil'],
    ]) {
      const res = await get(qs);
      expect(res.statusCode, qs).toBe(400);
      expect(res.json().message, qs).toContain(field);
    }
    // Whatever a caller puts in the query: 200 or 400, never a 5xx.
    await fc.assert(
      fc.asyncProperty(
        fc.record(
          {
            since: fc.oneof(
              fc.string(),
              fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
            ),
            limit: fc.oneof(fc.string(), fc.integer().map(String)),
            after: fc.oneof(fc.string(), fc.double().map(String)),
          },
          { requiredKeys: [] },
        ),
        async (q) => {
          const res = await get(new URLSearchParams(q as Record<string, string>).toString());
          expect([200, 400], res.body).toContain(res.statusCode);
        },
      ),
      { numRuns: 60 },
    );
    const future = await get(`since=${encodeURIComponent(new Date(Date.now() + 3600_000).toISOString())}`);
    expect(future.statusCode).toBe(200);
    expect(future.json()).toEqual({ rows: [], next_after: null });
    // Rows of its own, so this test stands alone.
    const p = await rawPeer('dave', { resources: ['services'], verbs: ['list'] });
    for (let i = 0; i < 3; i++) await mtlsCall(`${channel}/capabilities`, p.tls);
    await waitFor(async () => (await allRows()).length >= 3, 5000, 'three rows');
    const two = (await get('limit=2')).json() as { rows: AuditRowView[]; next_after: number };
    expect(two.rows.map((r) => r.seq)).toEqual([1, 2]);
    expect(two.next_after).toBe(2);
  });
});

describe('cold table and verification', () => {
  it('moves rows older than the hot age to the cold table; they stay listed and the chain verifies', async () => {
    const before = await allRows();
    await waitFor(
      async () => Number((await sql('SELECT count(*)::int AS n FROM audit_cold'))[0].n) > 0,
      30_000,
      'rows in the cold table',
    );
    const cold = (await sql('SELECT seq FROM audit_cold ORDER BY seq')).map((r) => Number(r.seq));
    const after = await allRows();
    expect(after.map((r) => r.seq)).toEqual(after.map((_, i) => i + 1));
    for (const r of before) expect(after.find((x) => x.seq === r.seq)).toEqual(r);
    expect(cold.every((s) => after.some((r) => r.seq === s))).toBe(true);
    const verify = await cli(['audit', 'verify']);
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/^audit chain OK: \d+ rows verified\n$/);
    const table = await cli(['audit', 'list', '--limit', '2']);
    expect(table.code).toBe(0);
    const lines = table.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^SEQ\s+AT\s+PEER\s+SUBJECT\s+VERB\s+RESOURCE\s+OUTCOME\s+BYTES\s+MS$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/)[0])).toEqual(['1', '2']);
    const list = await cli(['audit', 'list', '--json', '--limit', '3']);
    expect(list.code).toBe(0);
    expect((JSON.parse(list.stdout) as { rows: unknown[] }).rows).toHaveLength(3);
  }, 60_000);

  it('the real binary has the commands: `flotilla audit verify` prints one OK line and exits 0', async () => {
    const r = await runCli(['audit', 'verify', '--endpoint', bUrl, '--password', ADMIN_PASSWORD]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    expect(r.stdout).toContain('audit chain OK');
  }, 60_000);

  it('one row changed by SQL in the database: verify names that row and exits 1', async () => {
    const rows = await allRows();
    const target = rows[Math.floor(rows.length / 2)].seq;
    for (const t of ['audit', 'audit_cold'])
      await sql(`UPDATE ${t} SET outcome = 'ok', subject = 'mallory' WHERE seq = ${target}`);
    const verify = await cli(['audit', 'verify']);
    expect(verify.code).toBe(1);
    expect(verify.stdout).toContain(`BROKEN at row ${target} `);
    const json = await cli(['audit', 'verify', '--json']);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({
      ok: false,
      broken: { seq: target, reason: 'hash-mismatch' },
    });
  });
});

describe('secrets', () => {
  it('no secret in any audit row or log line; drops counted in /metrics', async () => {
    const rows = JSON.stringify(await allRows());
    const text = logs.join('');
    expect(logs.length).toBeGreaterThan(0);
    for (const s of secrets) {
      expect(rows).not.toContain(s);
      expect(text).not.toContain(s);
    }
    const metrics = await b.http.inject({
      method: 'GET',
      url: '/metrics',
      headers: { authorization: basic() },
    });
    expect(metrics.body).toMatch(/flotilla_audit_rows_total\{[^}]*outcome="written"[^}]*\} [1-9]/);
    expect(metrics.body).toMatch(/flotilla_audit_rows_total\{[^}]*outcome="dropped"[^}]*\} 0/);
  });
});
