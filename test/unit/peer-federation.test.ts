// Federation over the peer channel, pure parts: which grant pairs each operation needs, the
// receiver's checks on a replica and a delegated job (max_cpu, no fan-out), and the sender's
// resolver (peer records first; only the grant subject's or the admin's services use one).
import { describe, expect, it } from 'vitest';
import { peerRecordSource, peerResolver } from '../../src/app/federation/peer-resolver.ts';
import { parseServiceInput, type Service } from '../../src/core/fdl/service.ts';
import type { PeerRecord } from '../../src/core/ports.ts';
import type { Grant } from '../../src/core/trust/grant.ts';
import {
  decideDelegatedJob,
  decideReplica,
  PEER_FEDERATION_ACTIONS,
} from '../../src/core/trust/peer-federation.ts';
import { decidePeerRequest } from '../../src/core/trust/peer-guard.ts';
import { parseScope } from '../../src/core/trust/scope.ts';

const scope = (s: Record<string, unknown>) =>
  parseScope({ resources: ['services', 'jobs', 'status'], verbs: ['replicate', 'delegate'], ...s });

const grant = (sc: ReturnType<typeof parseScope>): Grant => ({
  id: 'grt_x',
  peerName: 'a',
  subjectUser: 'alice',
  status: 'active',
  scope: sc,
  certSerial: 'ab',
  certNotAfter: new Date(Date.now() + 3600_000),
  prevCertSerial: null,
  prevCertUntil: null,
  createdAt: new Date(),
  activatedAt: new Date(),
  revokedAt: null,
  revokeReason: null,
});

const decide = (sc: ReturnType<typeof parseScope>, op: keyof typeof PEER_FEDERATION_ACTIONS) =>
  decidePeerRequest({
    claims: { ok: true, claims: { grantId: 'grt_x', subject: 'alice' } },
    grant: grant(sc),
    serial: 'ab',
    now: new Date(),
    certNotAfter: new Date(Date.now() + 3600_000),
    action: PEER_FEDERATION_ACTIONS[op],
  });

describe('grant pairs per operation', () => {
  it('replica changes need services+replicate; jobs need jobs+delegate', () => {
    expect(decide(scope({}), 'replica-create').ok).toBe(true);
    expect(decide(scope({ verbs: ['delegate'] }), 'replica-create')).toMatchObject({
      ok: false,
      status: 403,
      reason: 'verb-not-granted',
    });
    expect(decide(scope({ resources: ['jobs', 'status'] }), 'replica-update')).toMatchObject({
      reason: 'resource-not-granted',
    });
    expect(decide(scope({ verbs: ['replicate'] }), 'job-submit').ok).toBe(false);
    expect(decide(scope({ excluded_resources: ['jobs'] }), 'job-submit').ok).toBe(false);
  });

  it('status is read with status+get or with jobs+delegate (the sender decides from it)', () => {
    expect(decide(scope({ resources: ['jobs'], verbs: ['delegate'] }), 'status').ok).toBe(true);
    expect(decide(scope({ resources: ['status'], verbs: ['get'] }), 'status').ok).toBe(true);
    expect(decide(scope({ resources: ['services'], verbs: ['replicate'] }), 'status').ok).toBe(false);
    expect(decide(scope({ resources: ['logs'], verbs: ['get'] }), 'job-status').ok).toBe(true);
  });
});

describe('replica and delegated-job checks', () => {
  const parsed = (raw: Record<string, unknown>) =>
    parseServiceInput({ name: 'w', image: 'i', script: 's', ...raw });

  it('max_cpu: a replica within passes, over is 403; no cpu counts as the default 0.2', () => {
    const s = scope({ max_cpu: '1' });
    expect(decideReplica(s, parsed({ cpu: '1' }))).toEqual({ ok: true });
    expect(decideReplica(s, parsed({ cpu: '1001m' }))).toMatchObject({ ok: false, status: 403 });
    expect(decideReplica(scope({ max_cpu: '100m' }), parsed({}))).toMatchObject({ ok: false, status: 403 });
    expect(decideReplica(scope({}), parsed({ cpu: '64' }))).toEqual({ ok: true });
  });

  it('reads the cpu as the service parser does: a Go-style key spelling cannot slip past', () => {
    expect(decideReplica(scope({ max_cpu: '1' }), parsed({ CPU: '8' }))).toMatchObject({
      ok: false,
      status: 403,
    });
  });

  it('a replica with members of its own is 400 (no fan-out on the peer’s behalf)', () => {
    const r = decideReplica(
      scope({}),
      parsed({
        federation: { topology: 'star', members: [{ type: 'oscar', cluster_id: 'c', service_name: 'x' }] },
      }),
    );
    expect(r).toMatchObject({ ok: false, status: 400, field: 'federation.members' });
  });

  it('a delegated job of a service over max_cpu is 403', () => {
    expect(decideDelegatedJob(scope({ max_cpu: '500m' }), { cpu: '0.5' })).toEqual({ ok: true });
    expect(decideDelegatedJob(scope({ max_cpu: '500m' }), { cpu: '0.6' })).toMatchObject({ status: 403 });
  });
});

describe('the sender: peer records first', () => {
  const record = (over: Partial<PeerRecord> = {}): PeerRecord => ({
    name: 'b',
    url: 'http://127.0.0.1:1',
    peerChannelUrl: 'https://127.0.0.1:2',
    clusterId: 'b',
    grantId: 'grt_1',
    subject: 'alice',
    certPem: 'CERT',
    keySealed: 'v1:sealed',
    caPem: 'CA',
    certSerial: '01',
    certNotAfter: new Date(Date.now() + 3600_000),
    state: 'active',
    lastSuccessAt: null,
    lastFailureAt: null,
    lastError: null,
    createdAt: new Date(),
    ...over,
  });
  const svc = (owner: string, clusters?: Service['clusters']) =>
    ({ name: 's', owner, clusters }) as unknown as Service;
  const basic = { b: { endpoint: 'http://b.example', auth_user: 'oscar', auth_password: 'pw' } };

  it('a member naming a peer needs no clusters entry; the target carries only the record name', () => {
    const r = peerResolver(peerRecordSource(() => [record()]));
    const t = r.resolve('b', svc('cluster_admin'));
    expect(t).toEqual({
      clusterId: 'b',
      endpoint: 'https://127.0.0.1:2',
      sslVerify: true,
      auth: { kind: 'peer', peer: 'b' },
    });
    expect(JSON.stringify(t)).not.toMatch(/sealed|CERT|pw/);
    expect(r.known(svc('cluster_admin')).has('b')).toBe(true);
    // Found by the peer's cluster id too, when the record has another name.
    expect(
      peerResolver(peerRecordSource(() => [record({ name: 'bee' })])).resolve('b', svc('alice')).auth,
    ).toEqual({
      kind: 'peer',
      peer: 'bee',
    });
  });

  it("another user's service cannot borrow the grant: it falls back to its own clusters entry, or is unknown", () => {
    const r = peerResolver(peerRecordSource(() => [record()]));
    expect(r.resolve('b', svc('alice')).auth.kind).toBe('peer');
    expect(r.resolve('b', svc('mallory', basic)).auth).toMatchObject({ kind: 'basic' });
    expect(() => r.resolve('b', svc('mallory'))).toThrow(/not in the service's clusters map/);
    expect(r.known(svc('mallory')).has('b')).toBe(false);
  });

  it('Basic clusters maps keep working for OSCAR peers; a revoked record yields to one', () => {
    const none = peerResolver(peerRecordSource(() => []));
    expect(none.resolve('b', svc('cluster_admin', basic)).auth).toEqual({
      kind: 'basic',
      user: 'oscar',
      password: 'pw',
    });
    const revoked = peerResolver(peerRecordSource(() => [record({ state: 'revoked' })]));
    expect(revoked.resolve('b', svc('cluster_admin', basic)).auth.kind).toBe('basic');
    // Without one, the revoked record stays the target: its calls fail at TLS (a sync state).
    expect(revoked.resolve('b', svc('cluster_admin')).auth.kind).toBe('peer');
  });
});
