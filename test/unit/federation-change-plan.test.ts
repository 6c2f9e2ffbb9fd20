// The change plan (core/federation/change-plan.ts) and the sync state read from outbox rows
// (core/federation/sync-state.ts): pure functions, no peer, no store.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Service } from '../../src/core/fdl/service.ts';
import { changePlan, compensation, detached, outboxRows } from '../../src/core/federation/change-plan.ts';
import {
  FEDERATION_WORKER,
  type NodeRef,
  nodeKey,
  type WorkerPlan,
} from '../../src/core/federation/model.ts';
import { SUPERSEDED_AT, syncOf } from '../../src/core/federation/sync-state.ts';
import { failureOfStatus, isLasting, type PeerFailureKind } from '../../src/core/peer-failure.ts';
import type { OutboxRow, PeerTarget } from '../../src/core/ports.ts';

const node = (cluster_id: string, service_name = `w-${cluster_id}`): NodeRef => ({
  cluster_id,
  service_name,
});
const worker = (n: NodeRef): WorkerPlan => ({
  ...n,
  definition: { name: n.service_name, image: 'alpine', script: 'true' } as Service,
});
const targetOf = (n: NodeRef, leaving: boolean): PeerTarget => ({
  clusterId: n.cluster_id,
  endpoint: `http://${n.cluster_id}${leaving ? '/old' : ''}`,
  sslVerify: true,
  auth: { kind: 'none' },
});

const coordinator = {
  name: 'coord',
  image: 'alpine',
  script: 'true',
  owner: 'alice',
  token: 'secret-token',
  annotations: { [FEDERATION_WORKER]: 'true', keep: 'me' },
  clusters: { b: { endpoint: 'http://b', auth_user: 'oscar', auth_password: 'pw', ssl_verify: false } },
  environment: { variables: { A: '1' }, secrets: { refresh_token: 'rt', OTHER: 'x' } },
  federation: { group_id: 'grp', topology: 'star', members: [] },
  replicas: [{ type: 'oscar', cluster_id: 'b', service_name: 'w-b' }],
} as unknown as Service;

describe('change plan', () => {
  it('a new federation: a create per desired member, in order, at the revision', () => {
    const desired = ['b', 'c', 'd'].map((c) => worker(node(c)));
    const plan = changePlan({
      group: 'coord',
      revision: 1,
      desired,
      current: [],
      removed: 'delete',
      target: targetOf,
    });
    expect(plan).toMatchObject({ group: 'coord', revision: 1 });
    expect(plan.changes.map((c) => [nodeKey(c), c.op, c.revision, c.target.endpoint])).toEqual([
      ['b/w-b', 'create', 1, 'http://b'],
      ['c/w-c', 'create', 1, 'http://c'],
      ['d/w-d', 'create', 1, 'http://d'],
    ]);
    expect(plan.changes[1].definition).toBe(desired[1].definition);
  });

  it('a change: new members created, kept ones updated, removed ones deleted or detached', () => {
    const desired = [worker(node('b')), worker(node('e'))];
    const current = [node('b'), node('c'), node('d')];
    const del = changePlan({
      group: 'coord',
      revision: 4,
      desired,
      current,
      removed: 'delete',
      target: targetOf,
    });
    expect(del.changes.map((c) => [nodeKey(c), c.op, c.target.endpoint, c.definition === null])).toEqual([
      ['b/w-b', 'update', 'http://b', false],
      ['e/w-e', 'create', 'http://e', false],
      ['c/w-c', 'delete', 'http://c/old', true],
      ['d/w-d', 'delete', 'http://d/old', true],
    ]);
    const detach = changePlan({
      group: 'coord',
      revision: 4,
      desired,
      current,
      removed: { detachFrom: coordinator },
      target: targetOf,
    });
    const removed = detach.changes.slice(2);
    expect(removed.map((c) => [nodeKey(c), c.op])).toEqual([
      ['c/w-c', 'update'],
      ['d/w-d', 'update'],
    ]);
    expect(removed[0].definition).toMatchObject({
      name: 'w-c',
      cluster_id: 'c',
      federation: { revision: 4 },
    });
  });

  it('the federation going away: a delete for every current member', () => {
    const plan = changePlan({
      group: 'coord',
      revision: 7,
      desired: [],
      current: [node('b'), node('c')],
      removed: 'delete',
      target: targetOf,
    });
    expect(plan.changes.map((c) => [nodeKey(c), c.op, c.revision, c.definition])).toEqual([
      ['b/w-b', 'delete', 7, null],
      ['c/w-c', 'delete', 7, null],
    ]);
  });

  it('every plan touches each member once: desired ∪ current, ops by membership', () => {
    const ids = fc.uniqueArray(fc.constantFrom<string>('a', 'b', 'c', 'd', 'e', 'f', 'g'), { maxLength: 7 });
    fc.assert(
      fc.property(ids, ids, fc.boolean(), (want, have, del) => {
        const plan = changePlan({
          group: 'g',
          revision: 2,
          desired: want.map((c) => worker(node(c))),
          current: have.map((c) => node(c)),
          removed: del ? 'delete' : { detachFrom: coordinator },
          target: targetOf,
        });
        const keys = plan.changes.map(nodeKey);
        expect(new Set(keys).size).toBe(keys.length);
        expect(new Set(keys)).toEqual(new Set([...want, ...have].map((c) => `${c}/w-${c}`)));
        for (const c of plan.changes) {
          const wanted = want.includes(c.cluster_id);
          const had = have.includes(c.cluster_id);
          const op = wanted ? (had ? 'update' : 'create') : del ? 'delete' : 'update';
          expect(c.op).toBe(op);
          expect(c.definition === null).toBe(op === 'delete');
        }
      }),
    );
  });

  it('compensation: a delete for each change whose create may have happened', () => {
    const plan = changePlan({
      group: 'coord',
      revision: 1,
      desired: ['b', 'c'].map((c) => worker(node(c))),
      current: [],
      removed: 'delete',
      target: targetOf,
    });
    const undo = compensation(plan, [plan.changes[1]]);
    expect(undo.changes).toEqual([{ ...plan.changes[1], op: 'delete', definition: null }]);
  });

  it('outbox rows: one per change, in the group, held when asked', () => {
    const plan = changePlan({
      group: 'coord',
      revision: 1,
      desired: [worker(node('b'))],
      current: [node('c')],
      removed: 'delete',
      target: targetOf,
    });
    const until = new Date(Date.now() + 60_000);
    expect(outboxRows(plan, until)).toEqual([
      {
        peer: 'b',
        service: 'w-b',
        op: 'create',
        payload: plan.changes[0].definition,
        target: plan.changes[0].target,
        group: 'coord',
        revision: 1,
        notBefore: until,
      },
      {
        peer: 'c',
        service: 'w-c',
        op: 'delete',
        payload: null,
        target: plan.changes[1].target,
        group: 'coord',
        revision: 1,
        notBefore: until,
      },
    ]);
    expect(outboxRows(plan)[0]).not.toHaveProperty('notBefore');
  });

  it("a detached member: no federation, links, worker mark, token, owner or owner's refresh token", () => {
    const out = detached(coordinator, node('b', 'gone'), 9) as Record<string, any>;
    expect(out).toMatchObject({
      name: 'gone',
      cluster_id: 'b',
      annotations: { keep: 'me' },
      federation: { group_id: 'grp', topology: 'none', members: [], revision: 9 },
      replicas: [],
      clusters: { b: { endpoint: 'http://b', ssl_verify: false } },
      environment: { variables: { A: '1' }, secrets: { OTHER: 'x' } },
    });
    expect(out.annotations[FEDERATION_WORKER]).toBeUndefined();
    expect(out.token).toBeUndefined();
    expect(out.owner).toBeUndefined();
    expect(out.environment.secrets.refresh_token).toBeUndefined();
    expect(out.clusters.b.auth_password).toBeUndefined();
    // The coordinator itself is left as it was.
    expect((coordinator as Record<string, any>).environment.secrets.refresh_token).toBe('rt');
  });
});

let id = 0;
const row = (o: Partial<OutboxRow>): OutboxRow => ({
  id: ++id,
  peer: 'b',
  service: 'w-b',
  op: 'update',
  payload: {},
  target: targetOf(node('b'), false),
  group: 'coord',
  revision: 1,
  state: 'pending',
  attempts: 0,
  nextAttemptAt: new Date(),
  lastError: null,
  lastErrorKind: null,
  createdAt: new Date(),
  doneAt: null,
  ...o,
});

describe('sync state from outbox rows', () => {
  it('no rows: synced at the spec revision; applied rows: synced at theirs', () => {
    expect(syncOf([], 3)).toEqual({ state: 'synced', revision: 3, last_error: null, pending_changes: 0 });
    expect(syncOf([row({ state: 'done', doneAt: new Date(), revision: 2 })], 3)).toEqual({
      state: 'synced',
      revision: 2,
      last_error: null,
      pending_changes: 0,
    });
  });

  it('a superseded row was never applied at the member', () => {
    const rows = [
      row({ state: 'done', doneAt: SUPERSEDED_AT, revision: 3 }),
      row({ state: 'done', doneAt: new Date(), revision: 1 }),
    ];
    expect(syncOf(rows, 3)).toEqual({ state: 'synced', revision: 1, last_error: null, pending_changes: 0 });
  });

  it('pending: waiting, retrying, or failed for good — told from the kind, not the text', () => {
    expect(syncOf([row({})], 2)).toEqual({
      state: 'pending',
      revision: null,
      last_error: null,
      pending_changes: 1,
    });
    expect(syncOf([row({}), row({}), row({ state: 'done', doneAt: new Date() })], 2).pending_changes).toBe(2);
    expect(syncOf([row({ attempts: 2 })], 2)).toMatchObject({ state: 'pending', last_error: 'retrying' });
    const kinds: Array<[PeerFailureKind, 'pending' | 'failed']> = [
      ['unreachable', 'pending'],
      ['unexpected', 'pending'],
      ['refused', 'failed'],
      ['conflict', 'failed'],
      ['not_found', 'failed'],
    ];
    for (const [kind, state] of kinds) {
      // The text says nothing: a text that looks like a 4xx does not make it failed, nor one
      // without a status a pending one.
      const text = kind === 'unreachable' ? 'create failed (409): looks refused' : 'no status here';
      expect(syncOf([row({ attempts: 1, lastError: text, lastErrorKind: kind })], 2), kind).toEqual({
        state,
        revision: null,
        last_error: text,
        pending_changes: 1,
      });
    }
  });

  it('a status classifies once: 5xx unreachable, 404, 409, other 4xx refused, anything else unexpected', () => {
    expect(failureOfStatus(503)).toEqual({ kind: 'unreachable', status: 503 });
    // The peer's rate limit (429 with Retry-After) heals by waiting: retried, never "lasting".
    expect(failureOfStatus(429)).toEqual({ kind: 'unreachable', status: 429 });
    expect(isLasting(failureOfStatus(429).kind)).toBe(false);
    expect(failureOfStatus(404)).toEqual({ kind: 'not_found', status: 404 });
    expect(failureOfStatus(409)).toEqual({ kind: 'conflict', status: 409 });
    for (const s of [400, 401, 403, 413, 422]) expect(failureOfStatus(s).kind).toBe('refused');
    for (const s of [200, 204, 302]) expect(failureOfStatus(s).kind).toBe('unexpected');
    expect([400, 401, 404, 409].every((s) => isLasting(failureOfStatus(s).kind))).toBe(true);
    expect([302, 500, 502].some((s) => isLasting(failureOfStatus(s).kind))).toBe(false);
  });
});
