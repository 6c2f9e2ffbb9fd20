// The origin's mirror of delegated jobs (#11.7): an unreachable cluster is asked again with
// backoff, not every pass forever; a job whose cluster no service names any more is ended
// (Failed, saying why) instead of being polled for good. Time is a parameter.
import { describe, expect, it } from 'vitest';
import { DelegatedMirror } from '../../src/app/federation/delegated-mirror.ts';
import { createDelegationCredentials } from '../../src/app/federation/delegation-credentials.ts';
import type { ServiceCache } from '../../src/app/service-cache.ts';
import { FlotillaError } from '../../src/core/errors.ts';
import type { Service } from '../../src/core/fdl/service.ts';
import type { JobRecord, JobStore, MirroredState, PeerClient } from '../../src/core/ports.ts';

const svc = (replicas: unknown[]): Service =>
  ({
    name: 'origin',
    image: 'alpine',
    owner: 'alice',
    script: 'echo',
    cpu: '1',
    memory: '64Mi',
    log_level: 'INFO',
    visibility: 'private',
    token: 't'.repeat(64),
    environment: { variables: {}, secrets: {} },
    replicas,
    clusters: { b: { endpoint: 'http://b.invalid', auth_user: 'oscar', auth_password: 'pw' } },
  }) as Service;

const delegatedJob = (): JobRecord => ({
  id: 'j1',
  service: 'origin',
  status: 'Pending',
  event: new Uint8Array(),
  owner: 'alice',
  cpuMillis: 1000,
  memoryBytes: 1,
  createdAt: new Date(0),
  startedAt: null,
  finishedAt: null,
  exitCode: null,
  reason: null,
  log: null,
  delegatedTo: 'b',
  delegatedId: null,
  remoteJobId: 'remote-1',
  originCluster: null,
  originToken: null,
  attempts: 1,
  delegation: null,
  holdState: null,
  heldUntil: null,
  confirmPending: false,
});

const setup = (service: { current: Service | undefined }) => {
  let now = 0;
  let asks = 0;
  const job = delegatedJob();
  const mirrored: MirroredState[] = [];
  const store = {
    delegatedActiveJobs: async () => (job.status === 'Pending' || job.status === 'Running' ? [job] : []),
    mirrorDelegated: async (_id: string, m: MirroredState) => {
      mirrored.push(m);
      job.status = m.status;
    },
  } as unknown as JobStore;
  const peers = {
    jobStatus: async () => {
      asks += 1;
      throw new FlotillaError('PEER_UNREACHABLE', 'cluster b is unreachable: ECONNREFUSED');
    },
  } as unknown as PeerClient;
  const mirror = new DelegatedMirror({
    store,
    services: { get: async () => service.current } as unknown as ServiceCache,
    peers,
    credentials: createDelegationCredentials({ refreshTokens: undefined, logger: { warn: () => {} } }),
    clock: { now: () => new Date(now) },
    intervalMs: 1000,
    maxBackoffMs: 8000,
  });
  const passAt = async (t: number) => {
    now = t;
    await mirror.sync();
    return asks;
  };
  return { passAt, mirrored, job };
};

describe('delegated-job mirror', () => {
  it('asks an unreachable cluster again with growing gaps, not on every pass', async () => {
    const { passAt } = setup({
      current: svc([{ type: 'oscar', cluster_id: 'b', service_name: 'origin-b' }]),
    });
    expect(await passAt(0)).toBe(1);
    expect(await passAt(1000)).toBe(1);
    expect(await passAt(2000)).toBe(2);
    expect(await passAt(5000)).toBe(2);
    expect(await passAt(6000)).toBe(3);
    expect(await passAt(13_000)).toBe(3);
    expect(await passAt(14_000)).toBe(4);
    expect(await passAt(22_000)).toBe(5); // capped at 8 s
  });

  it('ends a job whose cluster the service no longer names, saying why, and stops asking', async () => {
    const service = { current: svc([{ type: 'oscar', cluster_id: 'b', service_name: 'origin-b' }]) };
    const { passAt, mirrored, job } = setup(service);
    expect(await passAt(0)).toBe(1);
    service.current = svc([]);
    expect(await passAt(10_000)).toBe(1);
    expect(job.status).toBe('Failed');
    expect(mirrored.at(-1)?.reason).toMatch(/no longer/);
    expect(await passAt(20_000)).toBe(1);
  });
});

describe('delegated-job mirror: a hand-over whose confirm was not answered (ADR 13)', () => {
  const pendingSetup = (answers: Array<'ok' | 'timeout' | 'dropped'>) => {
    let now = 0;
    const calls: string[] = [];
    const job: JobRecord = { ...delegatedJob(), status: 'Running', confirmPending: true };
    const store = {
      delegatedActiveJobs: async () => (job.delegatedTo && job.status !== 'Failed' ? [job] : []),
      mirrorDelegated: async (_id: string, m: MirroredState) => {
        calls.push(`mirror:${m.status}`);
      },
      confirmedDelegation: async () => {
        calls.push('confirmed');
        job.confirmPending = false;
        job.status = 'Pending';
      },
      takeBackDelegation: async (_id: string, status: string) => {
        calls.push(`take-back:${status}`);
        job.delegatedTo = null;
        return true;
      },
    } as unknown as JobStore;
    const peers = {
      confirmJob: async (_t: unknown, service: string, id: string, h: Record<string, string>) => {
        calls.push(`confirm:${service}:${id}:${h['x-delegated-from']}`);
        const a = answers.shift();
        if (a === 'timeout')
          throw new FlotillaError('PEER_UNREACHABLE', 'cluster b is unreachable: timed out');
        if (a === 'dropped') throw new FlotillaError('DELEGATION_DROPPED', 'dropped');
      },
      jobStatus: async () => {
        calls.push('status');
        return { status: 'Running', log: '' };
      },
    } as unknown as PeerClient;
    const mirror = new DelegatedMirror({
      store,
      services: {
        get: async () => svc([{ type: 'oscar', cluster_id: 'b', service_name: 'origin-b' }]),
      } as unknown as ServiceCache,
      peers,
      credentials: createDelegationCredentials({ refreshTokens: undefined, logger: { warn: () => {} } }),
      clock: { now: () => new Date(now) },
      intervalMs: 1000,
      clusterId: 'home',
    });
    const passAt = async (t: number) => {
      now = t;
      await mirror.sync();
    };
    return { calls, passAt, job };
  };

  it('leaves the delegator one pass, then confirms; a confirmed job is mirrored from then on', async () => {
    const { calls, passAt } = pendingSetup(['ok']);
    await passAt(0);
    expect(calls).toEqual([]);
    await passAt(1000);
    expect(calls).toEqual(['confirm:origin-b:home.j1:home', 'confirmed']);
    await passAt(2000);
    expect(calls.slice(2)).toEqual(['status', 'mirror:Running']);
  });

  it('an unanswered confirm is asked again with backoff, never taken back meanwhile', async () => {
    const { calls, passAt, job } = pendingSetup(['timeout', 'timeout', 'ok']);
    await passAt(0);
    await passAt(1000);
    await passAt(1500); // backing off
    expect(calls.filter((c) => c.startsWith('confirm:'))).toHaveLength(1);
    await passAt(3000);
    await passAt(8000);
    expect(calls.filter((c) => c.startsWith('confirm:'))).toHaveLength(3);
    expect(calls).not.toContain('take-back:Pending');
    expect(job.confirmPending).toBe(false);
  });

  it('a refused confirm (the hold was dropped there) makes the job this cluster’s again', async () => {
    const { calls, passAt, job } = pendingSetup(['dropped']);
    await passAt(0);
    await passAt(1000);
    expect(calls).toEqual(['confirm:origin-b:home.j1:home', 'take-back:Pending']);
    expect(job.delegatedTo).toBeNull();
  });
});
