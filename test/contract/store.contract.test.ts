// One contract suite for the Store port, run against every adapter: PGlite in memory,
// PGlite on disk (with reopen), and the machine's real PostgreSQL in a throwaway database.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgliteStore } from '../../src/adapters/store-pglite/pglite-store.ts';
import { PostgresStore } from '../../src/adapters/store-postgres/postgres-store.ts';
import { isFlotillaError } from '../../src/core/errors.ts';
import type { Service } from '../../src/core/fdl/service.ts';
import type { BucketRecord, NewJob, NewOutboxRow, Store } from '../../src/core/ports.ts';
import { createTempDatabase, type TempDatabase } from '../support/postgres.ts';

const svc = (name: string, extra: Partial<Service> = {}): Service => ({
  name,
  script: 'echo hi',
  cpu: '0.2',
  memory: '256Mi',
  log_level: 'INFO',
  visibility: 'private',
  token: 'a'.repeat(64),
  owner: 'cluster_admin',
  environment: { variables: {}, secrets: {} },
  ...extra,
});

let seq = 0;
const job = (service: string, extra: Partial<NewJob> = {}): NewJob => ({
  id: `job-${++seq}-${Math.random().toString(36).slice(2, 8)}`,
  service,
  event: new TextEncoder().encode(`{"n":${seq}}`),
  owner: 'cluster_admin',
  cpuMillis: 200,
  memoryBytes: 256 * 1024 * 1024,
  ...extra,
});

interface Harness {
  open(): Promise<Store>;
  /** Opens the same database again (durability), when the adapter has one. */
  reopen?(): Promise<Store>;
  cleanup(): Promise<void>;
}

/** An outbox row for `service` at `peer` (group `g-<service>`, a definition unless a delete). */
const outboxRow = (
  peer: string,
  service: string,
  op: NewOutboxRow['op'],
  revision: number,
): NewOutboxRow => ({
  peer,
  service,
  op,
  payload: op === 'delete' ? null : { name: service, revision },
  target: { clusterId: peer, endpoint: `http://${peer}`, sslVerify: true, auth: { kind: 'none' } },
  group: `g-${service}`,
  revision,
});

const storeContract = (name: string, makeHarness: () => Promise<Harness>, durable = true) => {
  describe(`Store contract: ${name}`, () => {
    let h: Harness;
    let store: Store;
    beforeAll(async () => {
      h = await makeHarness();
      store = await h.open();
    });
    afterAll(async () => {
      await store?.close();
      await h?.cleanup();
    });

    it('creates, reads, lists, updates and deletes services, keeping unknown fields', async () => {
      await store.createService(svc('alpha', { custom_field: { nested: [1, 2] } } as Partial<Service>));
      await store.createService(svc('beta'));
      const got = await store.getService('alpha');
      expect(got?.name).toBe('alpha');
      expect((got as Record<string, unknown>).custom_field).toEqual({ nested: [1, 2] });
      expect((await store.listServices()).map((s) => s.name)).toEqual(['alpha', 'beta']);
      await store.updateService(svc('alpha', { cpu: '1' }));
      expect((await store.getService('alpha'))?.cpu).toBe('1');
      expect(await store.deleteService('beta')).toEqual([]);
      expect(await store.deleteService('beta')).toBeUndefined();
      expect(await store.getService('beta')).toBeUndefined();
    });

    it('refuses a duplicate create with SERVICE_EXISTS and an update of a missing service with SERVICE_NOT_FOUND', async () => {
      await store.createService(svc('dup'));
      const dup = await store.createService(svc('dup')).catch((e) => e);
      expect(isFlotillaError(dup) && dup.code).toBe('SERVICE_EXISTS');
      const missing = await store.updateService(svc('nope')).catch((e) => e);
      expect(isFlotillaError(missing) && missing.code).toBe('SERVICE_NOT_FOUND');
    });

    it('drops the stamped settings under a prefix that are older than a time, and no other', async () => {
      await store.setSetting('stamp:old', '1000');
      await store.setSetting('stamp:new', '5000');
      await store.setSetting('stamp:text', 'not a time');
      await store.setSetting('stampless', '1');
      await store.setSetting('other:old', '1');
      // A prefix is matched as written: % and _ are no wildcards.
      await store.setSetting('p%_:old', '1');
      await store.setSetting('pxy:old', '1');
      expect(await store.pruneSettings('stamp:', new Date(2000))).toBe(1);
      expect(await store.getSetting('stamp:old')).toBeUndefined();
      for (const kept of ['stamp:new', 'stamp:text', 'stampless', 'other:old']) {
        expect(await store.getSetting(kept), kept).toBeDefined();
      }
      expect(await store.pruneSettings('p%_:', new Date(10))).toBe(1);
      expect(await store.getSetting('pxy:old')).toBe('1');
    });

    it('keeps settings, first writer wins with setSettingIfAbsent', async () => {
      expect(await store.getSetting('k')).toBeUndefined();
      expect(await store.setSettingIfAbsent('k', 'one')).toBe('one');
      expect(await store.setSettingIfAbsent('k', 'two')).toBe('one');
      await store.setSetting('k', 'three');
      expect(await store.getSetting('k')).toBe('three');
    });

    it('records bucket owners: the first claim wins, updates, lists, what a service created, deletes', async () => {
      const bucket = (name: string, owner: string, extra: Partial<BucketRecord> = {}): BucketRecord => ({
        name,
        owner,
        visibility: 'private',
        allowedUsers: [],
        createdBy: null,
        ...extra,
      });
      expect(await store.claimBucket(bucket('b-one', 'alice', { createdBy: 'svc-a' }))).toMatchObject({
        name: 'b-one',
        owner: 'alice',
        createdBy: 'svc-a',
      });
      const again = await store.claimBucket(
        bucket('b-one', 'bob', { visibility: 'public', allowedUsers: ['x'] }),
      );
      expect(again).toMatchObject({
        owner: 'alice',
        visibility: 'private',
        allowedUsers: [],
        createdBy: 'svc-a',
      });
      await store.claimBucket(
        bucket('b-two', 'bob', {
          visibility: 'restricted',
          allowedUsers: ['alice', 'carol'],
          createdBy: 'svc-a',
        }),
      );
      expect(await store.updateBucket('b-two', { visibility: 'public', allowedUsers: ['carol'] })).toBe(true);
      expect(await store.getBucket('b-two')).toMatchObject({
        owner: 'bob',
        visibility: 'public',
        allowedUsers: ['carol'],
        createdBy: 'svc-a',
      });
      expect(await store.updateBucket('b-two', { createdBy: null })).toBe(true);
      expect((await store.getBucket('b-two'))?.createdBy).toBeNull();
      expect(await store.updateBucket('no-such', { visibility: 'public' })).toBe(false);
      expect((await store.bucketsCreatedBy('svc-a')).map((b) => b.name)).toEqual(['b-one']);
      expect((await store.listBucketRecords()).map((b) => b.name)).toEqual(
        expect.arrayContaining(['b-one', 'b-two']),
      );
      expect(await store.deleteBucketRecord('b-one')).toBe(true);
      expect(await store.deleteBucketRecord('b-one')).toBe(false);
      expect(await store.getBucket('b-one')).toBeUndefined();
      // A freed name goes to whoever claims it next.
      expect((await store.claimBucket(bucket('b-one', 'carol'))).owner).toBe('carol');
    });

    it('gives a bucket to exactly one of many concurrent claims', async () => {
      const owners = ['u1', 'u2', 'u3', 'u4', 'u5', 'u6'];
      const results = await Promise.all(
        owners.map((owner) =>
          store.claimBucket({
            name: 'contested',
            owner,
            visibility: 'private',
            allowedUsers: [],
            createdBy: null,
          }),
        ),
      );
      const winner = (await store.getBucket('contested'))?.owner;
      expect(owners).toContain(winner);
      expect(results.map((r) => r.owner)).toEqual(owners.map(() => winner));
    });

    it('stores jobs with their event bytes and moves them through their states', async () => {
      const bytes = new Uint8Array([0, 255, 1, 254, 10]);
      const [id] = await store.insertJobs([job('alpha', { event: bytes })]);
      const stored = await store.getJob(id);
      expect(stored?.status).toBe('Pending');
      expect(Array.from(stored!.event)).toEqual(Array.from(bytes));
      expect(await store.claimJob(id, new Date())).toBe(true);
      expect(await store.claimJob(id, new Date())).toBe(false);
      await store.finishJob(id, {
        status: 'Succeeded',
        at: new Date(),
        exitCode: 0,
        reason: null,
        log: 'out',
      });
      const done = await store.getJob(id);
      expect(done).toMatchObject({ status: 'Succeeded', exitCode: 0, log: 'out', attempts: 1 });
      expect(done?.finishedAt).toBeInstanceOf(Date);
    });

    it("keeps a job's delegation decision: null until recorded, the latest one after, in reads and listings", async () => {
      const [id] = await store.insertJobs([job('decided')]);
      expect((await store.getJob(id))?.delegation).toBeNull();
      const decision = {
        trigger: 'rescheduler' as const,
        waited_s: 12,
        threshold_s: 10,
        policy: 'load-based' as const,
        cpu_millis: 2000,
        memory_bytes: 64 * 1024 * 1024,
        candidates: [
          {
            cluster_id: 'b',
            service_name: 'svc-b',
            cache: 'fits' as const,
            free_cpu_millis: 3500,
            tried: 'unreachable' as const,
          },
          { endpoint: 2, cache: 'endpoint' as const },
        ],
        more_candidates: 0,
        outcome: 'kept-local' as const,
        to: null,
        decided_at: '2026-12-02T08:00:00.000Z',
      };
      await store.recordDelegation(id, decision);
      expect((await store.getJob(id))?.delegation).toEqual(decision);
      const later = { ...decision, outcome: 'delegated' as const, to: 'b' };
      await store.recordDelegation(id, later);
      expect((await store.listJobs('decided', { limit: 10 })).jobs[0].delegation).toEqual(later);
      // What scheduling reads leaves it in the table.
      expect((await store.getJobs([id]))[0]).not.toHaveProperty('delegation');
    });

    it('dedupes delegated jobs on their delegated id', async () => {
      const first = job('alpha', { delegatedId: 'remote-1' });
      const again = job('alpha', { delegatedId: 'remote-1' });
      const fresh = job('alpha');
      expect(await store.insertJobs([first])).toEqual([first.id]);
      expect(await store.insertJobs([again, fresh])).toEqual([first.id, fresh.id]);
      expect(await store.getJob(again.id)).toBeUndefined();
    });

    it('holds a handed-over job (ADR 13): never claimed or pending until confirmed; one of confirm or expiry wins', async () => {
      const now = new Date();
      const soon = new Date(now.getTime() + 60_000);
      const h = job('holds', {
        delegatedId: `o.h-${seq}`,
        originCluster: 'o',
        holdState: 'held',
        heldUntil: soon,
      });
      const [id] = await store.insertJobs([h]);
      expect(await store.getJob(id)).toMatchObject({ holdState: 'held', heldUntil: soon, status: 'Pending' });
      expect(await store.getJobByDelegatedId(h.delegatedId!)).toMatchObject({ id });
      expect(await store.claimJob(id, now)).toBe(false);
      expect((await store.pendingJobs(1000)).map((j) => j.id)).not.toContain(id);
      // A confirm after the deadline loses; before it, wins once.
      expect(await store.confirmHold(id, new Date(soon.getTime() + 1))).toBe(false);
      expect(await store.confirmHold(id, now)).toBe(true);
      expect(await store.confirmHold(id, now)).toBe(false);
      expect(await store.dropHold(id, 'late', now)).toBe(false);
      expect((await store.pendingJobs(1000)).map((j) => j.id)).toContain(id);
      expect(await store.claimJob(id, now)).toBe(true);

      const [gone] = await store.insertJobs([
        job('holds', { delegatedId: `o.h-${seq}`, holdState: 'held', heldUntil: soon }),
      ]);
      expect(await store.dropHold(gone, 'abandoned', now)).toBe(true);
      expect(await store.getJob(gone)).toMatchObject({
        holdState: 'dropped',
        status: 'Failed',
        reason: 'abandoned',
      });
      expect(await store.confirmHold(gone, now)).toBe(false);

      const past = new Date(now.getTime() - 1000);
      const [expired] = await store.insertJobs([
        job('holds', { delegatedId: `o.h-${seq}`, holdState: 'held', heldUntil: past }),
      ]);
      const [live] = await store.insertJobs([
        job('holds', { delegatedId: `o.h-${seq}`, holdState: 'held', heldUntil: soon }),
      ]);
      expect(await store.dropExpiredHolds('expired', now)).toEqual([expired]);
      expect(await store.getJob(expired)).toMatchObject({
        holdState: 'dropped',
        status: 'Failed',
        reason: 'expired',
      });
      expect(await store.getJob(live)).toMatchObject({ holdState: 'held' });
      // A tombstone: stored dropped and ended at once.
      const [tomb] = await store.insertJobs([
        job('holds', {
          delegatedId: `o.h-${seq}`,
          holdState: 'dropped',
          status: 'Failed',
          reason: 'abandoned',
        }),
      ]);
      expect(await store.getJob(tomb)).toMatchObject({ status: 'Failed', finishedAt: expect.any(Date) });
    });

    it('confirms a hold by its delegated id in one statement, only for its own caller and in time', async () => {
      const now = new Date();
      const soon = new Date(now.getTime() + 60_000);
      const delegatedId = `o.one-${seq}`;
      const [id] = await store.insertJobs([
        job('holds', { delegatedId, originCluster: 'o', holdState: 'held', heldUntil: soon }),
      ]);
      const caller = { service: 'holds', owner: 'cluster_admin', originCluster: 'o' };
      // Anyone else's hand-over, or this one past its deadline, confirms nothing.
      for (const other of [
        { ...caller, service: 'other' },
        { ...caller, owner: 'mallory' },
        { ...caller, originCluster: 'p' },
      ])
        expect(await store.confirmHoldOf(delegatedId, other, now)).toBeUndefined();
      expect(await store.confirmHoldOf(`o.none-${seq}`, caller, now)).toBeUndefined();
      expect(await store.confirmHoldOf(delegatedId, caller, new Date(soon.getTime() + 1))).toBeUndefined();
      expect(await store.getJob(id)).toMatchObject({ holdState: 'held' });
      expect(await store.confirmHoldOf(delegatedId, caller, now)).toBe(id);
      expect(await store.getJob(id)).toMatchObject({ holdState: 'confirmed', status: 'Pending' });
      expect(await store.confirmHoldOf(delegatedId, caller, now)).toBeUndefined();
      expect(await store.confirmHold(id, now)).toBe(false);
    });

    it('records a delegation with its confirm pending: still claimed, then confirmed or taken back', async () => {
      const now = new Date();
      const [a, b, c] = await store.insertJobs([job('origin'), job('origin'), job('origin')]);
      for (const id of [a, b, c]) expect(await store.claimJob(id, now)).toBe(true);
      await store.markDelegated(a, 'r', 'remote-a', { confirmPending: true });
      expect(await store.getJob(a)).toMatchObject({
        status: 'Running',
        delegatedTo: 'r',
        confirmPending: true,
      });
      expect((await store.delegatedActiveJobs(100)).map((j) => j.id)).toContain(a);
      // Not a running job of a dead instance: the sweep leaves it to the mirror.
      expect(await store.failRunningJobs('x', now)).not.toContain(a);
      await store.confirmedDelegation(a);
      expect(await store.getJob(a)).toMatchObject({
        status: 'Pending',
        delegatedTo: 'r',
        confirmPending: false,
      });
      expect(await store.takeBackDelegation(a, 'Pending')).toBe(false);

      await store.markDelegated(b, 'r', 'remote-b', { confirmPending: true });
      expect(await store.takeBackDelegation(b, 'Running')).toBe(true);
      expect(await store.getJob(b)).toMatchObject({
        status: 'Running',
        delegatedTo: null,
        remoteJobId: null,
      });
      await store.markDelegated(c, 'r', 'remote-c', { confirmPending: true });
      expect(await store.takeBackDelegation(c, 'Pending')).toBe(true);
      expect(await store.getJob(c)).toMatchObject({ status: 'Pending', delegatedTo: null, startedAt: null });
      expect((await store.pendingJobs(1000)).map((j) => j.id)).toContain(c);
    });

    it('pages a service job listing newest first with a cursor and a remaining count', async () => {
      const ids = await store.insertJobs(Array.from({ length: 7 }, () => job('paged')));
      const p1 = await store.listJobs('paged', { limit: 3 });
      expect(p1.jobs.map((j) => j.id)).toEqual(ids.slice(-3).reverse());
      expect(p1.remaining).toBe(4);
      const p2 = await store.listJobs('paged', { limit: 3, cursor: p1.next });
      const p3 = await store.listJobs('paged', { limit: 3, cursor: p2.next });
      expect([...p1.jobs, ...p2.jobs, ...p3.jobs].map((j) => j.id)).toEqual([...ids].reverse());
      expect(p3.next).toBeNull();
      expect((await store.listJobs('paged', { limit: 3, cursor: 'garbage' })).jobs.length).toBe(3);
    });

    it("lists and deletes one owner's jobs of a service, paging and counting only theirs", async () => {
      const mine = await store.insertJobs(Array.from({ length: 4 }, () => job('shared', { owner: 'bob' })));
      const theirs = await store.insertJobs([
        job('shared', { owner: 'carol' }),
        job('shared', { owner: 'carol' }),
      ]);
      const p1 = await store.listJobs('shared', { limit: 3, owner: 'bob' });
      expect(p1.jobs.map((j) => j.id)).toEqual(mine.slice(-3).reverse());
      expect(p1.remaining).toBe(1);
      const p2 = await store.listJobs('shared', { limit: 3, owner: 'bob', cursor: p1.next });
      expect(p2.jobs.map((j) => j.id)).toEqual([mine[0]]);
      expect(p2.next).toBeNull();
      expect((await store.listJobs('shared', { limit: 10 })).jobs).toHaveLength(6);
      await store.claimJob(mine[0], new Date());
      await store.finishJob(mine[0], {
        status: 'Succeeded',
        at: new Date(),
        exitCode: 0,
        reason: null,
        log: '',
      });
      await store.claimJob(theirs[0], new Date());
      await store.finishJob(theirs[0], {
        status: 'Failed',
        at: new Date(),
        exitCode: 1,
        reason: null,
        log: '',
      });
      expect(await store.deleteJobs('shared', { all: false, owner: 'bob' })).toBe(1);
      expect(await store.deleteJobs('shared', { all: true, owner: 'bob' })).toBe(3);
      const left = (await store.listJobs('shared', { limit: 10 })).jobs.map((j) => j.id);
      expect(left.sort()).toEqual([...theirs].sort());
      expect(await store.deleteJobs('shared', { all: true })).toBe(2);
    });

    it('returns pending jobs oldest first, fails interrupted ones, deletes finished or all', async () => {
      const ids = await store.insertJobs([job('q'), job('q'), job('q')]);
      const pending = (await store.pendingJobs(100)).filter((j) => j.service === 'q');
      expect(pending.map((j) => j.id)).toEqual(ids);
      await store.claimJob(ids[0], new Date());
      const failed = await store.failRunningJobs('manager restarted', new Date());
      expect(failed).toContain(ids[0]);
      expect((await store.getJob(ids[0]))?.reason).toBe('manager restarted');
      expect(await store.deleteJobs('q', { all: false })).toBe(1);
      expect(await store.deleteJobs('q', { all: true })).toBe(2);
      expect(await store.deleteJob(ids[1])).toBe(false);
      const counts = await store.countJobs();
      expect(Object.keys(counts).sort()).toEqual(['Failed', 'Pending', 'Running', 'Succeeded']);
    });

    it("lists one runner's Running jobs, oldest first, for a restart to re-attach to", async () => {
      const ids = await store.insertJobs([job('ra'), job('ra'), job('ra')]);
      await store.claimJob(ids[1]!, new Date(), 'runner-ra');
      await store.claimJob(ids[0]!, new Date(), 'runner-ra');
      await store.claimJob(ids[2]!, new Date(), 'runner-other');
      expect((await store.runningJobsOf('runner-ra')).map((j) => j.id)).toEqual([ids[0], ids[1]]);
      await store.finishJob(ids[0]!, {
        status: 'Succeeded',
        at: new Date(),
        exitCode: 0,
        reason: null,
        log: '',
      });
      expect((await store.runningJobsOf('runner-ra')).map((j) => j.id)).toEqual([ids[1]]);
      expect(await store.runningJobsOf('runner-none')).toEqual([]);
    });

    it('keeps a per-peer outbox in order, with retries, supersession and pruning', async () => {
      const target = {
        clusterId: 'b',
        endpoint: 'http://b',
        sslVerify: true,
        auth: { kind: 'none' as const },
      };
      const row = (peer: string, service: string, revision: number) => ({
        peer,
        service,
        op: 'update' as const,
        payload: { name: service, revision },
        target: { ...target, clusterId: peer },
        group: 'grp',
        revision,
      });
      const [a1, b1, a2] = await store.enqueueOutbox([
        row('pa', 's1', 1),
        row('pb', 's1', 1),
        row('pa', 's1', 2),
      ]);
      expect(a1).toBeLessThan(a2);
      // A second ahead: the database stamps microseconds, a Date only milliseconds.
      const now = new Date(Date.now() + 1000);
      expect((await store.duePeers(now)).sort()).toEqual(['pa', 'pb']);
      const [head, ...others] = await store.headsOfPeer('pa');
      expect(others).toEqual([]);
      expect(head).toMatchObject({
        id: a1,
        revision: 1,
        state: 'pending',
        payload: { name: 's1', revision: 1 },
      });
      expect(head?.target.clusterId).toBe('pa');
      expect(await store.hasLaterRow(head!)).toBe(true);
      await store.markOutboxRetry(
        b1,
        'cluster pb is unreachable',
        new Date(now.getTime() + 60_000),
        'unreachable',
      );
      expect(await store.duePeers(now)).toEqual(['pa']);
      const [retried] = await store.headsOfPeer('pb');
      expect(retried).toMatchObject({
        attempts: 1,
        lastError: 'cluster pb is unreachable',
        lastErrorKind: 'unreachable',
      });
      expect(head).toMatchObject({ lastError: null, lastErrorKind: null });
      await store.markOutboxDone([a1, a2], now);
      expect(await store.headsOfPeer('pa')).toEqual([]);
      expect(await store.pendingOutboxCount()).toBe(1);
      const group = await store.outboxOfGroup('grp');
      expect(group.map((r) => r.id)).toEqual([a2, b1, a1]);
      // Pruning drops old done rows but keeps the newest per (peer, service).
      expect(await store.pruneOutbox(new Date(now.getTime() + 1000))).toBe(1);
      expect((await store.outboxOfGroup('grp')).map((r) => r.id)).toEqual([a2, b1]);
    });

    it('lets a later row stand for an earlier one only at the same revision or a higher one', async () => {
      const row = (revision: number) => outboxRow('pr', 's9', 'update', revision);
      // Revision 1 after 3: a federation of that name made again, which stands for nothing earlier.
      const [old, again, later] = await store.enqueueOutbox([row(3), row(1), row(2)]);
      expect(await store.hasLaterRow({ id: old, peer: 'pr', service: 's9', revision: 3 })).toBe(false);
      expect(await store.hasLaterRow({ id: again, peer: 'pr', service: 's9', revision: 1 })).toBe(true);
      expect(await store.hasLaterRow({ id: later, peer: 'pr', service: 's9', revision: 2 })).toBe(false);
      await store.markOutboxDone([old, again, later], new Date());
    });

    it('tells an update that a delete of a higher revision was applied before it (not one superseded)', async () => {
      const row = (service: string, op: NewOutboxRow['op'], revision: number) =>
        outboxRow('pd', service, op, revision);
      const [applied, skipped] = await store.enqueueOutbox([row('d1', 'delete', 3), row('d2', 'delete', 3)]);
      await store.markOutboxDone(applied, new Date());
      await store.markOutboxDone(skipped, new Date(0));
      const [late1, late2, same] = await store.enqueueOutbox([
        row('d1', 'update', 2),
        row('d2', 'update', 2),
        row('d1', 'update', 3),
      ]);
      const ask = (id: number, service: string, revision: number) =>
        store.deletedAbove({ id, peer: 'pd', service, revision });
      expect(await ask(late1, 'd1', 2)).toBe(true);
      expect(await ask(late2, 'd2', 2)).toBe(false);
      expect(await ask(same, 'd1', 3)).toBe(false);
      // Only a delete before the row counts.
      expect(await ask(applied, 'd1', 2)).toBe(false);
      await store.markOutboxDone([late1, late2, same], new Date());
      // Made again after the delete: a later update of the new worker is no late one.
      const [made] = await store.enqueueOutbox([row('d1', 'create', 1)]);
      await store.markOutboxDone(made, new Date());
      const [next] = await store.enqueueOutbox([row('d1', 'update', 2)]);
      expect(await ask(next, 'd1', 2)).toBe(false);
      await store.markOutboxDone(next, new Date());
    });

    it("gives each service's oldest pending row at a peer, oldest first", async () => {
      const row = (service: string, revision: number) => ({
        peer: 'px',
        service,
        op: 'update' as const,
        payload: { name: service, revision },
        target: { clusterId: 'px', endpoint: 'http://px', sslVerify: true, auth: { kind: 'none' as const } },
        group: `g-${service}`,
        revision,
      });
      const [z1, a1, z2, m1] = await store.enqueueOutbox([
        row('zz', 1),
        row('aa', 1),
        row('zz', 2),
        row('mm', 1),
      ]);
      expect((await store.headsOfPeer('px')).map((r) => r.id)).toEqual([z1, a1, m1]);
      await store.markOutboxDone(z1, new Date());
      expect((await store.headsOfPeer('px')).map((r) => r.id)).toEqual([a1, z2, m1]);
      expect(await store.headsOfPeer('nobody')).toEqual([]);
    });

    it('gives each inserted row its own id, in the order given, with its payload, target and hold kept', async () => {
      const later = new Date(Date.now() + 3_600_000);
      const rows = Array.from({ length: 40 }, (_, i) => ({
        peer: `pm${i % 3}`,
        service: `m${String(i).padStart(2, '0')}`,
        op: (i % 5 === 4 ? 'delete' : 'create') as 'create' | 'delete',
        payload:
          i % 5 === 4
            ? null
            : JSON.parse(
                `{"name":"m${i}","n":${i},"text":"ünï\\n'\\"","__proto__":{"k":${i}},"list":[{"b":1,"a":[${i}]}]}`,
              ),
        target: {
          clusterId: `pm${i % 3}`,
          endpoint: `http://pm${i}`,
          sslVerify: i % 2 === 0,
          auth: { kind: 'none' as const },
        },
        group: 'g-many',
        revision: i + 1,
        ...(i % 7 === 0 ? { notBefore: later } : {}),
      }));
      const ids = await store.enqueueOutbox(rows);
      expect(ids).toHaveLength(40);
      expect([...ids].sort((a, b) => a - b)).toEqual(ids);
      const stored = new Map((await store.outboxOfGroup('g-many')).map((r) => [r.id, r]));
      for (const [i, row] of rows.entries()) {
        const got = stored.get(ids[i]);
        expect(got, `row ${i}`).toMatchObject({
          peer: row.peer,
          service: row.service,
          op: row.op,
          target: row.target,
          revision: row.revision,
          state: 'pending',
          attempts: 0,
        });
        expect(got?.payload).toEqual(row.payload);
        if (row.payload) expect(Object.hasOwn(got!.payload!, '__proto__')).toBe(true);
        if (row.notBefore) expect(got?.nextAttemptAt.getTime()).toBe(later.getTime());
        else expect(got!.nextAttemptAt.getTime()).toBeLessThan(later.getTime() - 3_000_000);
      }
      // What sync states read: the same rows, newest first, without definitions and targets.
      const full = await store.outboxOfGroup('g-many');
      expect(full.map((r) => r.id)).toEqual([...ids].reverse());
      expect(await store.syncRowsOfGroup('g-many')).toEqual(
        full.map(({ payload: _p, target: _t, ...r }) => r),
      );
      await store.markOutboxDone(ids, new Date());
      expect((await store.syncRowsOfGroup('g-many')).map((r) => r.state)).toEqual(ids.map(() => 'done'));
      expect(await store.syncRowsOfGroup('no-such-group')).toEqual([]);
    });

    it('holds a row not due before its notBefore, and closes many rows at once', async () => {
      const row = (service: string, op: 'create' | 'update' | 'delete') => ({
        peer: 'ph',
        service,
        op,
        payload: op === 'delete' ? null : { name: service },
        target: { clusterId: 'ph', endpoint: 'http://ph', sslVerify: true, auth: { kind: 'none' as const } },
        group: 'g-held',
        revision: 1,
      });
      const now = new Date(Date.now() + 1000);
      const [held, other] = await store.enqueueOutbox([
        { ...row('h1', 'create'), notBefore: new Date(now.getTime() + 60_000) },
        row('h2', 'delete'),
      ]);
      expect(await store.duePeers(now)).toContain('ph');
      const heads = await store.headsOfPeer('ph');
      expect(heads.map((r) => [r.id, r.op])).toEqual([
        [held, 'create'],
        [other, 'delete'],
      ]);
      expect(heads[0].nextAttemptAt.getTime()).toBeGreaterThan(now.getTime());
      await store.markOutboxDone(other, now);
      // Only the held row is left: not due yet.
      expect(await store.duePeers(now)).not.toContain('ph');
      await store.markOutboxDone([held], new Date(0));
      expect(await store.headsOfPeer('ph')).toEqual([]);
      expect((await store.outboxOfGroup('g-held')).map((r) => r.doneAt?.getTime())).toEqual([
        now.getTime(),
        0,
      ]);
    });

    it("stores a service's write and the outbox rows it carries both or neither", async () => {
      const rows = (service: string, op: NewOutboxRow['op'], revision: number) => [
        { ...outboxRow('pw1', `${service}-w`, op, revision), group: `g-${service}` },
        { ...outboxRow('pw2', `${service}-w`, op, revision), group: `g-${service}` },
      ];
      // A NUL in a jsonb value: the database refuses the statement that stores it.
      const refused = (service: string, op: NewOutboxRow['op'], revision: number) =>
        rows(service, op, revision).map((r, i) =>
          i === 1 ? { ...r, target: { ...r.target, endpoint: 'http://a\u0000b' } } : r,
        );
      const groupIds = async (service: string) =>
        (await store.outboxOfGroup(`g-${service}`)).map((r) => r.id);
      const codeOf = (p: Promise<unknown>) =>
        p.then(
          () => 'ok',
          (e) => (isFlotillaError(e) ? e.code : 'failed'),
        );

      // create
      expect(await codeOf(store.createService(svc('cw'), refused('cw', 'create', 1)))).toBe('failed');
      expect(await store.getService('cw')).toBeUndefined();
      expect(await groupIds('cw')).toEqual([]);
      const made = await store.createService(svc('cw'), rows('cw', 'create', 1));
      expect(made).toHaveLength(2);
      expect((await groupIds('cw')).reverse()).toEqual(made);
      expect(await store.getService('cw')).toBeDefined();
      expect(await codeOf(store.createService(svc('cw'), rows('cw', 'create', 1)))).toBe('SERVICE_EXISTS');
      expect(await groupIds('cw')).toHaveLength(2);

      // update
      expect(await codeOf(store.updateService(svc('cw', { cpu: '2' }), refused('cw', 'update', 2)))).toBe(
        'failed',
      );
      expect((await store.getService('cw'))?.cpu).toBe('0.2');
      expect(await groupIds('cw')).toHaveLength(2);
      expect(await codeOf(store.updateService(svc('cx'), rows('cx', 'update', 2)))).toBe('SERVICE_NOT_FOUND');
      expect(await groupIds('cx')).toEqual([]);
      const changed = await store.updateService(svc('cw', { cpu: '2' }), rows('cw', 'update', 2));
      expect(changed).toHaveLength(2);
      expect((await store.getService('cw'))?.cpu).toBe('2');
      const updates = await store.outboxOfGroup('g-cw');
      expect(updates.slice(0, 2).map((r) => [r.id, r.op, r.revision, r.peer])).toEqual([
        [changed[1], 'update', 2, 'pw2'],
        [changed[0], 'update', 2, 'pw1'],
      ]);

      // delete
      expect(await codeOf(store.deleteService('cw', refused('cw', 'delete', 3)))).toBe('failed');
      expect(await store.getService('cw')).toBeDefined();
      expect(await store.deleteService('cx', rows('cx', 'delete', 3))).toBeUndefined();
      expect(await groupIds('cx')).toEqual([]);
      const gone = await store.deleteService('cw', rows('cw', 'delete', 3));
      expect(gone).toHaveLength(2);
      expect(await store.getService('cw')).toBeUndefined();
      expect(await groupIds('cw')).toHaveLength(6);

      // Applied and pruned: later tests count pending and prunable rows of the whole store.
      const ids = await groupIds('cw');
      await store.markOutboxDone(ids, new Date(0));
      expect(await store.pruneOutbox(new Date(1000))).toBeGreaterThanOrEqual(4);
      expect(await groupIds('cw')).toEqual([gone![1], gone![0]]);
    });

    it('ranks full-text search over the names, logs and buckets it is given, and only those', async () => {
      await store.createService(svc('ft-resize', { image: 'ghcr.io/acme/image-resize', script: 'convert' }));
      await store.createService(svc('ft-other', { image: 'alpine', script: 'echo resize' }));
      await store.createService(svc('ft-hidden', { image: 'resize/resize' }));
      const [mine, theirs] = await store.insertJobs([
        job('ft-other', { owner: 'u1' }),
        job('ft-other', { owner: 'u2' }),
      ]);
      for (const [id, log] of [
        [mine, 'resize done for u1'],
        [theirs, 'resize done for u2'],
      ] as const)
        await store.finishJob(id, { status: 'Succeeded', at: new Date(), exitCode: 0, reason: null, log });
      const all = await store.searchText({
        q: 'resize',
        services: ['ft-resize', 'ft-other'],
        logs: { all: [], own: ['ft-other'], owner: 'u1' },
        buckets: ['ft-resize-bucket', 'plain'],
        limit: 10,
        offset: 0,
      });
      // The name weighs most; ft-hidden was not given; only u1's own job log.
      expect(all[0]).toMatchObject({ resource: 'services', key: 'ft-resize' });
      expect(all.map((h) => `${h.resource}:${h.key}`).sort()).toEqual(
        ['buckets:ft-resize-bucket', `logs:${mine}`, 'services:ft-other', 'services:ft-resize'].sort(),
      );
      for (const h of all) expect(h.rank).toBeGreaterThan(0);
      const paged = await store.searchText({
        q: 'resize',
        services: ['ft-resize', 'ft-other'],
        limit: 1,
        offset: 1,
      });
      expect(paged).toHaveLength(1);
      expect(paged[0].key).toBe('ft-other');
      // Every job of a service in `all`.
      const owned = await store.searchText({
        q: 'u2',
        logs: { all: ['ft-other'], own: [], owner: 'u1' },
        limit: 10,
        offset: 0,
      });
      expect(owned.map((h) => h.key)).toEqual([theirs]);
      // Hostile text is only text: tsquery operators, quotes and SQL never error or widen.
      for (const q of ["resize' OR 1=1 --", '!(resize) & | <->', '"unclosed', 'a:*', '-resize', ')))'])
        expect(
          Array.isArray(await store.searchText({ q, services: ['ft-resize'], limit: 5, offset: 0 })),
        ).toBe(true);
      expect(await store.searchText({ q: 'resize', limit: 5, offset: 0 })).toEqual([]);
    });

    // In-memory PGlite has nothing to reopen: durability is checked on the adapters with storage.
    if (!durable) return;
    it('survives a reopen with everything it stored', async () => {
      await store.createService(svc('durable'));
      await store.claimBucket({
        name: 'durable-b',
        owner: 'alice',
        visibility: 'restricted',
        allowedUsers: ['bob'],
        createdBy: 'durable',
      });
      const [id] = await store.insertJobs([job('durable')]);
      await store.close();
      store = await h.reopen!();
      expect((await store.getService('durable'))?.name).toBe('durable');
      expect((await store.getJob(id))?.status).toBe('Pending');
      expect(await store.getBucket('durable-b')).toMatchObject({ owner: 'alice', allowedUsers: ['bob'] });
    });
  });
};

storeContract(
  'pglite (memory)',
  async () => ({ open: () => PgliteStore.open(undefined), cleanup: async () => {} }),
  false,
);

storeContract('pglite (data dir)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-store-'));
  return {
    open: () => PgliteStore.open(join(dir, 'db')),
    reopen: () => PgliteStore.open(join(dir, 'db')),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

storeContract('postgres', async () => {
  const db: TempDatabase = await createTempDatabase();
  return {
    open: () => PostgresStore.open(db.url),
    reopen: () => PostgresStore.open(db.url),
    cleanup: () => db.drop(),
  };
});
