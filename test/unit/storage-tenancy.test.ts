// The pure storage-tenancy rules (src/core/storage): bucket grants, the plan of a service's
// buckets (isolation_level USER named as OSCAR names them), which input covers an event's
// object, and a delegation's scope.
import { describe, expect, it } from 'vitest';
import { isFlotillaError } from '../../src/core/errors.ts';
import { applyDefaults, type Service, type ServiceInput } from '../../src/core/fdl/service.ts';
import { type BucketRecord, bucketGrants } from '../../src/core/storage/bucket-access.ts';
import { coverInput, delegationMayAccess, triggeredInput } from '../../src/core/storage/job-input.ts';
import {
  isolatedBucketName,
  type PlanInput,
  planServiceBuckets,
  serviceBucketNeeds,
} from '../../src/core/storage/service-buckets.ts';

const ALICE = `${'a1ce'.repeat(16)}@egi.eu`;
const BOB = `${'b0b5'.repeat(16)}@egi.eu`;

const service = (input: Partial<ServiceInput>, owner = ALICE): Service =>
  applyDefaults({ name: 'svc', script: 'true', ...input } as ServiceInput, { token: 't', owner });
const rec = (name: string, owner: string, extra: Partial<BucketRecord> = {}): BucketRecord => ({
  name,
  owner,
  visibility: 'private',
  allowedUsers: [],
  createdBy: null,
  ...extra,
});
const io = (path: string, storage_provider = 'minio.default') => [{ storage_provider, path }];
const caught = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
};

describe('bucket grants', () => {
  const user = (sub: string) => ({ kind: 'user' as const, sub });
  it('private: the owner; restricted: readers listed; public: readers all; writes and management the owner', () => {
    const priv = rec('p', ALICE);
    const restricted = rec('r', ALICE, { visibility: 'restricted', allowedUsers: [BOB] });
    const pub = rec('u', ALICE, { visibility: 'public' });
    for (const action of ['read', 'write', 'manage'] as const) {
      for (const r of [priv, restricted, pub]) expect(bucketGrants(user(ALICE), r, action)).toBe(true);
      expect(bucketGrants(user(BOB), priv, action)).toBe(false);
      expect(bucketGrants({ kind: 'admin' }, priv, action)).toBe(true);
    }
    expect(bucketGrants(user(BOB), restricted, 'read')).toBe(true);
    expect(bucketGrants(user('carol'), restricted, 'read')).toBe(false);
    expect(bucketGrants(user('carol'), pub, 'read')).toBe(true);
    for (const r of [restricted, pub]) {
      expect(bucketGrants(user(BOB), r, 'write')).toBe(false);
      expect(bucketGrants(user(BOB), r, 'manage')).toBe(false);
    }
    // A bucket without a record is the admin's.
    expect(bucketGrants(user(ALICE), undefined, 'read')).toBe(false);
  });
});

describe('a service’s buckets', () => {
  it('names isolated buckets as OSCAR does: "<bucket>-<uid[:10]>", made a valid bucket name', () => {
    expect(isolatedBucketName('in', BOB)).toBe('in-b0b5b0b5b0');
    expect(isolatedBucketName('in', 'Alice@Example.org')).toBe('in-alice-exam');
    expect(isolatedBucketName('in', 'abcdefghi.z')).toBe('in-abcdefghi');
    expect(isolatedBucketName('in', 'x@y')).toBe('in-x-y');
  });

  it('USER: a bucket per allowed user but the owner, who joins allowed_users; bucket_list lists them', () => {
    const needs = serviceBucketNeeds(
      service({
        isolation_level: 'user',
        allowed_users: [BOB, ALICE],
        input: io('in/x'),
        output: io('out/y'),
      }),
      'c1',
    );
    expect(needs.bucketList).toEqual(['in-b0b5b0b5b0']);
    expect(needs.allowedUsers).toEqual([BOB, ALICE]);
    const byName = Object.fromEntries(needs.buckets.map((b) => [b.name, b]));
    expect(byName['in-b0b5b0b5b0']).toMatchObject({
      isolatedFor: BOB,
      record: { owner: BOB, visibility: 'private' },
    });
    expect(byName.in).toMatchObject({ needs: 'read', record: { owner: ALICE, createdBy: 'svc' } });
    expect(byName.out).toMatchObject({ needs: 'write' });
    expect(serviceBucketNeeds(service({ allowed_users: [BOB], input: io('in/x') }), 'c1').bucketList).toEqual(
      [],
    );
  });

  it('refuses paths that climb, and users whose buckets would collide', () => {
    const climb = caught(() => serviceBucketNeeds(service({ output: io('out/../victim') }), 'c1'));
    expect(isFlotillaError(climb) && climb.status).toBe(400);
    expect((climb as Error).message).toContain('output[0].path');
    const clash = caught(() =>
      serviceBucketNeeds(
        service({
          isolation_level: 'USER',
          allowed_users: ['same-prefix-1', 'same-prefix-2'],
          input: io('in/x'),
        }),
        'c1',
      ),
    );
    expect(isFlotillaError(clash) && clash.code).toBe('CONFLICT');
  });

  const plan = (s: Service, extra: Partial<PlanInput>) =>
    planServiceBuckets({
      needs: serviceBucketNeeds(s, 'c1'),
      service: s.name,
      owner: { kind: 'user', sub: s.owner },
      callerIsAdmin: false,
      records: new Map(),
      existing: new Set(),
      created: [],
      previousIsolated: [],
      ...extra,
    });

  it('creates new buckets, uses readable inputs and owned outputs, refuses the rest', () => {
    const s = service({ input: io('pub/in'), output: io('theirs/out') }, BOB);
    const records = new Map([
      ['pub', rec('pub', ALICE, { visibility: 'public' })],
      ['theirs', rec('theirs', ALICE, { visibility: 'public' })],
    ]);
    expect(plan(s, { records }).refused).toEqual(['theirs']);
    expect(plan(s, { records, callerIsAdmin: true }).refused).toEqual([]);
    expect(plan(service({ output: io('fresh/o') }, BOB), {}).create).toEqual([
      rec('fresh', BOB, { createdBy: 'svc' }),
    ]);
    // Existing without a record: the admin's.
    expect(plan(service({ output: io('legacy/o') }, BOB), { existing: new Set(['legacy']) }).refused).toEqual(
      ['legacy'],
    );
  });

  it('on update: own buckets follow the service, dropped ones are released, dropped users’ buckets removed', () => {
    const s = service({ visibility: 'public', output: io('mine/o') });
    const created = [rec('mine', ALICE, { createdBy: 'svc' }), rec('old', ALICE, { createdBy: 'svc' })];
    const isolated = rec('in-b0b5b0b5b0', BOB, { createdBy: 'svc' });
    const p = plan(s, {
      records: new Map([['mine', created[0]]]),
      created: [...created, isolated],
      previousIsolated: ['in-b0b5b0b5b0'],
    });
    expect(p.update).toEqual([{ name: 'mine', visibility: 'public', allowedUsers: [] }]);
    expect(p.release).toEqual(['old']);
    expect(p.remove).toEqual(['in-b0b5b0b5b0']);
  });

  it('an isolated bucket is used only when this service made it for that user', () => {
    const s = service({ isolation_level: 'USER', allowed_users: [BOB], input: io('in/x') });
    const own = new Map([['in-b0b5b0b5b0', rec('in-b0b5b0b5b0', BOB, { createdBy: 'svc' })]]);
    expect(plan(s, { records: own }).refused).toEqual([]);
    const bobs = new Map([['in-b0b5b0b5b0', rec('in-b0b5b0b5b0', BOB)]]);
    expect(plan(s, { records: bobs }).refused).toEqual(['in-b0b5b0b5b0']);
  });
});

describe('which input covers an event’s object', () => {
  const s = {
    ...service({ isolation_level: 'USER', allowed_users: [BOB], input: io('in/x'), output: io('out/y') }),
    bucket_list: ['in-b0b5b0b5b0'],
  } as Service;

  it('only objects under an input path, on the store it names', () => {
    const ok = coverInput(
      s,
      { provider: 'minio.default', bucket: 'in', key: 'x/a.txt' },
      { clusterId: 'c1' },
    );
    expect(ok).toMatchObject({ ok: true, input: { storage: 'local' } });
    expect(coverInput(s, { provider: 'minio.c1', bucket: 'in', key: 'x/a' }, { clusterId: 'c1' }).ok).toBe(
      true,
    );
    for (const [bucket, key] of [
      ['in', 'y/a'],
      ['in', 'x'],
      ['in', 'x/../../other/a'],
      ['out', 'y/a'],
      ['other', 'x/a'],
    ]) {
      expect(
        coverInput(s, { provider: 'minio.default', bucket, key }, { clusterId: 'c1' }).ok,
        `${bucket}/${key}`,
      ).toBe(false);
    }
    expect(coverInput(s, { provider: 's3.aws', bucket: 'in', key: 'x/a' }, { clusterId: 'c1' }).ok).toBe(
      false,
    );
  });

  it('a user’s isolated bucket, for that user; the origin’s store for a delegated job', () => {
    expect(
      coverInput(s, { provider: 'minio.default', bucket: 'in-b0b5b0b5b0', key: 'x/a' }, { clusterId: 'c1' }),
    ).toMatchObject({ ok: true, input: { isolatedFor: BOB } });
    expect(
      coverInput(s, { provider: 'minio.o1', bucket: 'in', key: 'x/a' }, { clusterId: 'c1', origin: 'o1' }),
    ).toMatchObject({ ok: true, input: { storage: 'origin' } });
    expect(
      coverInput(s, { provider: 'minio.o2', bucket: 'in', key: 'x/a' }, { clusterId: 'c1', origin: 'o1' }).ok,
    ).toBe(false);
    expect(triggeredInput(s, 'in-b0b5b0b5b0', 'x/new.txt', 'c1')).toMatchObject({ isolatedFor: BOB });
    expect(triggeredInput(s, 'in', 'y/new.txt', 'c1')).toBeUndefined();
  });

  it('a delegation reads under the inputs, writes under the outputs, nothing bucket-level', () => {
    const may = (bucket: string, key: string | undefined, action: 'read' | 'write' | 'manage') =>
      delegationMayAccess(s, { bucket, key, action }, 'c1');
    expect(may('in', 'x/a', 'read')).toBe(true);
    expect(may('in', 'x/a', 'write')).toBe(false);
    expect(may('out', 'y/r', 'write')).toBe(true);
    expect(may('out', 'z/r', 'write')).toBe(false);
    expect(may('in-b0b5b0b5b0', 'y/r', 'write')).toBe(true);
    expect(may('in', undefined, 'read')).toBe(false);
    expect(may('out', 'y/r', 'manage')).toBe(false);
  });
});
