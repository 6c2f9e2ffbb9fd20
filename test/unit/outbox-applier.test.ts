// The applier (src/worker/outbox-worker.ts) on a real store (in-memory PGlite) and a scripted
// PeerClient: rows applied at once record their outcome on the row (done, retried with its
// kind, or abandoned); held rows are not drained; a create that finds the name taken by an
// earlier attempt of its own brings it up to date; the caller's credentials stand in for the
// service owner's only in the call; the background drain records each failure's kind.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PgliteStore } from '../../src/adapters/store-pglite/pglite-store.ts';
import { FlotillaError } from '../../src/core/errors.ts';
import { SUPERSEDED_AT } from '../../src/core/federation/sync-state.ts';
import { failureOfStatus, PeerCallError } from '../../src/core/peer-failure.ts';
import type { NewOutboxRow, OutboxRow, PeerClient, PeerTarget } from '../../src/core/ports.ts';
import { systemClock } from '../../src/core/ports.ts';
import { OutboxWorker } from '../../src/worker/outbox-worker.ts';

type Call = { method: string; service: string; auth: PeerTarget['auth'] };
type Answer = Error | undefined;

/** A PeerClient whose answers are scripted per "METHOD service" (a queue, then success). */
const scriptedPeers = () => {
  const calls: Call[] = [];
  const script = new Map<string, Answer[]>();
  const answer = async (method: string, t: PeerTarget, service: string) => {
    calls.push({ method, service, auth: t.auth });
    const next = script.get(`${method} ${service}`)?.shift();
    if (next) throw next;
  };
  const refuse = () => {
    throw new Error('not used');
  };
  const peers: PeerClient = {
    checkAccess: refuse,
    async getService(t, name) {
      await answer('GET', t, name);
      return name.startsWith('held') ? { name } : undefined;
    },
    createService: (t, d) => answer('POST', t, String(d.name)),
    updateService: (t, d) => answer('PUT', t, String(d.name)),
    async deleteService(t, name) {
      await answer('DELETE', t, name);
      return true;
    },
    getFederation: refuse,
    status: refuse,
    jobStatus: refuse,
    postEvent: refuse,
    storageConfig: refuse,
    submitJob: refuse,
    confirmJob: refuse,
    abandonJob: refuse,
  };
  return { peers, calls, script };
};

const refusal = (code: 'SERVICE_EXISTS' | 'UNAUTHORIZED' | 'STALE_REVISION', status: number, what: string) =>
  new PeerCallError(code, `cluster b: ${what} failed (${status}): refused`, failureOfStatus(status));
const down = () =>
  new PeerCallError('PEER_UNREACHABLE', 'cluster b is unreachable: ECONNREFUSED', { kind: 'unreachable' });

const target = (auth: PeerTarget['auth'] = { kind: 'basic', user: 'oscar', password: 'pw' }): PeerTarget => ({
  clusterId: 'b',
  endpoint: 'http://b',
  sslVerify: true,
  auth,
});

let store: PgliteStore;
let peerScript: ReturnType<typeof scriptedPeers>;
let worker: OutboxWorker;
let n = 0;

const newRow = (op: NewOutboxRow['op'], o: Partial<NewOutboxRow> = {}): NewOutboxRow => {
  const service = `s${++n}`;
  return {
    peer: 'b',
    service,
    op,
    payload: op === 'delete' ? null : { name: service },
    target: target(),
    group: `g${n}`,
    revision: 1,
    ...o,
  };
};

const persist = async (rows: NewOutboxRow[]) => {
  const ids = await store.enqueueOutbox(rows);
  return rows.map((r, i) => ({ ...r, id: ids[i] }));
};

const rowOf = async (r: { group: string }): Promise<OutboxRow> => (await store.outboxOfGroup(r.group))[0];
/** A group's rows, oldest first. */
const rowsOf = async (group: string): Promise<OutboxRow[]> =>
  (await store.outboxOfGroup(group)).sort((x, y) => x.id - y.id);
/** What the peer was asked, in order. */
const asked = (): string[] => peerScript.calls.map((c) => `${c.method} ${c.service}`);

beforeAll(async () => {
  store = await PgliteStore.open(undefined);
});
afterAll(async () => {
  await store?.close();
});
beforeEach(async () => {
  await worker?.stop();
  peerScript = scriptedPeers();
  worker = new OutboxWorker({
    store,
    peers: peerScript.peers,
    clock: systemClock,
    logger: { info: () => {}, warn: () => {} },
    baseDelayMs: 60_000,
    maxDelayMs: 60_000,
    pollMs: 50,
    ownerToken: {
      resolveTarget: async (t) =>
        t.auth.kind === 'service-owner' ? { ...t, auth: { kind: 'bearer', token: 'minted' } } : t,
      openForSending: (payload) => payload,
    },
  });
});

describe('applied at once', () => {
  it('a create that succeeds is one POST, and its row is done', async () => {
    const [row] = await persist([newRow('create', { notBefore: worker.holdUntil(1) })]);
    expect(await worker.applyNow([row], { onFailure: 'retry' })).toEqual([{ ok: true }]);
    expect(peerScript.calls.map((c) => c.method)).toEqual(['POST']);
    const stored = await rowOf(row);
    expect(stored.state).toBe('done');
    expect(stored.doneAt?.getTime()).not.toBe(SUPERSEDED_AT.getTime());
  });

  it("a create meeting its own earlier attempt brings it up to date; a stranger's name is the create's refusal", async () => {
    const [mine, theirs] = await persist([newRow('create'), newRow('create')]);
    const exists = refusal('SERVICE_EXISTS', 409, `create of service ${theirs.service}`);
    peerScript.script.set(`POST ${mine.service}`, [refusal('SERVICE_EXISTS', 409, 'create')]);
    peerScript.script.set(`POST ${theirs.service}`, [exists]);
    peerScript.script.set(`PUT ${theirs.service}`, [refusal('SERVICE_EXISTS', 409, 'update')]);
    const [a, b] = await worker.applyNow([mine, theirs], { onFailure: 'retry' });
    expect(a).toEqual({ ok: true });
    expect(b).toEqual({ ok: false, error: exists, failure: { kind: 'conflict', status: 409 } });
    const stuck = await rowOf(theirs);
    expect(stuck).toMatchObject({
      state: 'pending',
      attempts: 1,
      lastError: exists.message,
      lastErrorKind: 'conflict',
    });
    // Left to the background drain from the first backoff on, not at once.
    expect(stuck.nextAttemptAt.getTime()).toBeGreaterThan(Date.now() + 10_000);
  });

  it('abandoned: a failed row of an atomic plan is closed, never applied later', async () => {
    const [row] = await persist([newRow('create', { notBefore: worker.holdUntil(1) })]);
    peerScript.script.set(`POST ${row.service}`, [down()]);
    const [outcome] = await worker.applyNow([row], { onFailure: 'abandon' });
    expect(outcome).toMatchObject({ ok: false, failure: { kind: 'unreachable' } });
    const closed = await rowOf(row);
    expect(closed.state).toBe('done');
    expect(closed.doneAt?.getTime()).toBe(SUPERSEDED_AT.getTime());
  });

  it("the caller's credentials stand in for the service owner's, in the call only", async () => {
    const owner = target({ kind: 'service-owner', service: 'coord' });
    const [viaCaller, minted, basic] = await persist([
      newRow('create', { target: owner }),
      newRow('create', { target: owner }),
      newRow('delete', { target: target() }),
    ]);
    const caller = { kind: 'bearer' as const, token: 'callers' };
    await worker.applyNow([viaCaller, basic], { onFailure: 'retry', via: caller });
    await worker.applyNow([minted], { onFailure: 'retry' });
    expect(peerScript.calls.map((c) => [c.method, c.service, c.auth])).toEqual([
      ['POST', viaCaller.service, caller],
      ['DELETE', basic.service, target().auth],
      ['POST', minted.service, { kind: 'bearer', token: 'minted' }],
    ]);
    expect((await rowOf(viaCaller)).target.auth).toEqual(owner.auth);
  });

  it('preflight: whether each member holds the name, or how its check failed', async () => {
    peerScript.script.set('GET free-2', [refusal('UNAUTHORIZED', 401, 'read of service free-2')]);
    const [held, free, refused] = await worker.preflight([
      { target: target(), service: 'held-1' },
      { target: target(), service: 'free-1' },
      { target: target(), service: 'free-2' },
    ]);
    expect(held).toEqual({ ok: true, present: true });
    expect(free).toEqual({ ok: true, present: false });
    expect(refused).toMatchObject({ ok: false, failure: { kind: 'refused', status: 401 } });
  });
});

describe('the background drain', () => {
  it('leaves held rows alone and applies the rest, recording a failure with its kind', async () => {
    const [held] = await persist([newRow('create', { notBefore: new Date(Date.now() + 60_000) })]);
    const [update, stale] = await persist([newRow('update'), newRow('update')]);
    peerScript.script.set(`PUT ${update.service}`, [refusal('UNAUTHORIZED', 401, 'update')]);
    peerScript.script.set(`PUT ${stale.service}`, [refusal('STALE_REVISION', 409, 'update')]);
    worker.start();
    await worker.settle(5000);
    await worker.stop();
    expect(peerScript.calls.map((c) => c.service)).not.toContain(held.service);
    expect((await rowOf(held)).state).toBe('pending');
    expect(await rowOf(update)).toMatchObject({ state: 'pending', attempts: 1, lastErrorKind: 'refused' });
    // The member holds something newer: applied.
    expect((await rowOf(stale)).state).toBe('done');
  });

  it('an error raised on this side is recorded as unexpected', async () => {
    const [row] = await persist([newRow('update')]);
    peerScript.script.set(`PUT ${row.service}`, [
      new FlotillaError('INTERNAL', 'a sealed secret could not be opened'),
    ]);
    worker.start();
    await worker.settle(5000);
    await worker.stop();
    expect(await rowOf(row)).toMatchObject({ state: 'pending', lastErrorKind: 'unexpected' });
  });
});

describe('a later row behind a head waiting out its backoff', () => {
  it('supersedes the failed head at once: a delete after a refused create goes now, not after the backoff', async () => {
    const [create] = await persist([newRow('create')]);
    peerScript.script.set(`POST ${create.service}`, [refusal('UNAUTHORIZED', 401, 'create')]);
    worker.start();
    await worker.settle(5000);
    expect(await rowOf(create)).toMatchObject({ state: 'pending', attempts: 1 });
    // The backoff is 60 s: only superseding the head lets the delete through within the test.
    const { id: _created, ...createRow } = create;
    await persist([{ ...createRow, op: 'delete', payload: null, revision: 2 }]);
    worker.nudge(['b']);
    await worker.settle(5000);
    await worker.stop();
    const rows = await rowsOf(create.group);
    expect(rows.map((r) => [r.op, r.state])).toEqual([
      ['create', 'done'],
      ['delete', 'done'],
    ]);
    expect(rows[0].doneAt).toEqual(SUPERSEDED_AT);
    expect(asked()).toEqual([`POST ${create.service}`, `DELETE ${create.service}`]);
  });

  it('leaves a held head (being applied at once) alone, so a later row cannot overtake it', async () => {
    const [held] = await persist([newRow('create', { notBefore: new Date(Date.now() + 60_000) })]);
    const { id: _held, ...heldRow } = held;
    await persist([{ ...heldRow, op: 'delete', payload: null, revision: 2, notBefore: undefined }]);
    worker.start();
    await worker.settle(2000);
    await worker.stop();
    expect(peerScript.calls).toEqual([]);
    expect((await store.outboxOfGroup(held.group)).map((r) => r.state)).toEqual(['pending', 'pending']);
  });
});

describe('a row of a new incarnation behind a failed delete of the old one', () => {
  it('does not supersede it: the old worker is deleted first (its proof), then the new one is created', async () => {
    // The coordinator was deleted (revision 3) while the member was away; then a federation of
    // the same name was created again (revision 1, other tokens). Skipping the old delete for
    // the new create would leave the old worker there for good: the new proof cannot delete it.
    const [gone] = await persist([newRow('delete', { revision: 3 })]);
    peerScript.script.set(`DELETE ${gone.service}`, [down()]);
    worker.start();
    await worker.settle(5000);
    expect(await rowOf(gone)).toMatchObject({ state: 'pending', attempts: 1 });
    const { id: _gone, ...goneRow } = gone;
    await persist([{ ...goneRow, op: 'create', payload: { name: gone.service }, revision: 1 }]);
    // The member is back; the delete's backoff (60 s here) is the only thing in the way.
    await store.markOutboxRetry(gone.id, 'cluster b is unreachable', new Date(Date.now() - 1), 'unreachable');
    worker.nudge(['b']);
    await worker.settle(5000);
    await worker.stop();
    const rows = await rowsOf(gone.group);
    expect(rows.map((r) => [r.op, r.state])).toEqual([
      ['delete', 'done'],
      ['create', 'done'],
    ]);
    expect(rows[0].doneAt).not.toEqual(SUPERSEDED_AT);
    expect(asked()).toEqual([`DELETE ${gone.service}`, `DELETE ${gone.service}`, `POST ${gone.service}`]);
  });
});

describe('an update that lost a race with its coordinator’s delete', () => {
  it('does not bring the worker back: a delete at a higher revision was applied before it', async () => {
    // The coordinator was updated (revision 2) and deleted (revision 3) at once; the delete's
    // row got in first and was applied. The update's row, behind it, finds no worker (404).
    const [gone] = await persist([newRow('delete', { revision: 3 })]);
    worker.start();
    await worker.settle(5000);
    expect((await rowOf(gone)).state).toBe('done');
    const { id: _gone, ...goneRow } = gone;
    const [late] = await persist([
      { ...goneRow, op: 'update', payload: { name: gone.service }, revision: 2 },
    ]);
    peerScript.script.set(`PUT ${gone.service}`, [new FlotillaError('SERVICE_NOT_FOUND', 'not found')]);
    worker.nudge(['b']);
    await worker.settle(5000);
    await worker.stop();
    expect(asked()).toEqual([`DELETE ${gone.service}`, `PUT ${gone.service}`]);
    expect((await store.outboxOfGroup(gone.group)).find((r) => r.id === late.id)?.state).toBe('done');
  });
});
