// The status cache is keyed by endpoint and credentials (#11.13): one user's `clusters`
// entry for a cluster id cannot change what another user's service sees of it. Unreachable
// targets are polled with backoff and dropped once no service names them (#11.7). Time is
// a parameter here: no test waits on the wall clock.
import { describe, expect, it } from 'vitest';
import { createDelegationCredentials } from '../../src/app/federation/delegation-credentials.ts';
import { FlotillaError } from '../../src/core/errors.ts';
import type { Service } from '../../src/core/fdl/service.ts';
import type { PeerClient, PeerTarget } from '../../src/core/ports.ts';
import { ReplicaIndex, replicaSnapshots } from '../../src/main/delegation-wiring.ts';
import { StatusCache } from '../../src/worker/status-cache.ts';

const statusWith = (freeMillis: number) => ({
  cluster: {
    nodes: [
      {
        cpu: { capacity_cores: freeMillis, request_cores: 0 },
        memory: { capacity_bytes: 2 ** 32, request_bytes: 0 },
        status: 'Ready',
      },
    ],
  },
});

const service = (name: string, owner: string, endpoint: string, user: string, password: string): Service =>
  ({
    name,
    owner,
    script: 'echo',
    cpu: '1',
    memory: '64Mi',
    log_level: 'INFO',
    visibility: 'private',
    token: 't'.repeat(64),
    environment: { variables: {}, secrets: {} },
    replicas: [{ type: 'oscar', cluster_id: 'b', service_name: `${name}-b` }],
    clusters: { b: { endpoint, auth_user: user, auth_password: password } },
  }) as Service;

const credentials = createDelegationCredentials({ refreshTokens: undefined, logger: { warn: () => {} } });

describe('status cache keyed by endpoint and credentials', () => {
  it("bob's entry for cluster b does not change what alice's service sees of b", async () => {
    const bob = service('aaa-bob', 'bob', 'http://evil.invalid', 'bob', 'bobs');
    const alice = service('zzz-alice', 'alice', 'http://b.invalid', 'oscar', 'pw');
    const polled: string[] = [];
    const peers = {
      status: async (t: PeerTarget) => {
        polled.push(t.endpoint);
        return statusWith(t.endpoint.includes('evil') ? 0 : 4000);
      },
    } as unknown as PeerClient;
    const index = new ReplicaIndex({ services: { list: async () => [bob, alice] }, credentials });
    const cache = new StatusCache({ peers, targets: () => index.collect() });
    await cache.refresh();
    expect(polled.sort()).toEqual(['http://b.invalid', 'http://evil.invalid']);

    const view = replicaSnapshots(index, cache);
    expect(view.forService(alice).get('b')).toMatchObject({ online: true, totalFreeCpuMillis: 4000 });
    expect(view.forService(bob).get('b')).toMatchObject({ online: true, totalFreeCpuMillis: 0 });

    // A failed send to bob's endpoint and a reservation on alice's touch only their own entry.
    view.markOffline(bob, 'b');
    view.reserve(alice, 'b', { cpuMillis: 1000, memoryBytes: 1 });
    expect(view.forService(alice).get('b')).toMatchObject({ online: true, totalFreeCpuMillis: 3000 });
    expect(view.forService(bob).get('b')?.online).toBe(false);

    // A service whose entry changed since the last round sees nothing yet, never another's view.
    const moved = { ...alice, clusters: { b: { ...alice.clusters!.b, endpoint: 'http://evil.invalid' } } };
    expect(view.forService(moved as Service).get('b')).toBeUndefined();
  });

  it('two services reaching b with the same endpoint and credentials share one poll', async () => {
    const one = service('one', 'alice', 'http://b.invalid/', 'oscar', 'pw');
    const two = service('two', 'carol', 'http://b.invalid', 'oscar', 'pw');
    const other = service('three', 'dave', 'http://b.invalid', 'oscar', 'other-pw');
    let polls = 0;
    const peers = {
      status: async () => {
        polls += 1;
        return statusWith(2000);
      },
    } as unknown as PeerClient;
    const index = new ReplicaIndex({ services: { list: async () => [one, two, other] }, credentials });
    const cache = new StatusCache({ peers, targets: () => index.collect() });
    await cache.refresh();
    expect(polls).toBe(2);
    const view = replicaSnapshots(index, cache);
    view.reserve(one, 'b', { cpuMillis: 500, memoryBytes: 1 });
    expect(view.forService(two).get('b')?.totalFreeCpuMillis).toBe(1500);
    expect(view.forService(other).get('b')?.totalFreeCpuMillis).toBe(2000);
  });
});

describe('status cache polling of unreachable targets', () => {
  const target: PeerTarget = {
    clusterId: 'b',
    endpoint: 'http://b.invalid',
    sslVerify: true,
    auth: { kind: 'none' },
  };

  it('backs off while a target fails (2×, 4×, 8× the interval, capped) and polls every round once it answers', async () => {
    let now = 0;
    let up = false;
    let polls = 0;
    const peers = {
      status: async () => {
        polls += 1;
        if (!up) throw new FlotillaError('PEER_UNREACHABLE', 'cluster b is unreachable: ECONNREFUSED');
        return statusWith(1000);
      },
    } as unknown as PeerClient;
    const cache = new StatusCache({
      peers,
      targets: async () => new Map([['k', target]]),
      intervalMs: 1000,
      maxBackoffMs: 8000,
      now: () => now,
    });
    const at = async (t: number) => {
      now = t;
      await cache.refresh();
      return polls;
    };
    expect(await at(0)).toBe(1);
    expect(cache.get('k')?.online).toBe(false);
    expect(await at(1000)).toBe(1); // waits 2 s
    expect(await at(2000)).toBe(2);
    expect(await at(4000)).toBe(2); // waits 4 s
    expect(await at(6000)).toBe(3);
    expect(await at(13_000)).toBe(3); // waits 8 s
    expect(await at(14_000)).toBe(4);
    expect(await at(21_000)).toBe(4); // capped at 8 s
    up = true;
    expect(await at(22_000)).toBe(5);
    expect(cache.get('k')).toMatchObject({ online: true, totalFreeCpuMillis: 1000 });
    expect(await at(23_000)).toBe(6); // answering again: every round
  });

  it('drops a target once no service names it', async () => {
    let keys = ['k1', 'k2'];
    const peers = { status: async () => statusWith(1000) } as unknown as PeerClient;
    const cache = new StatusCache({
      peers,
      targets: async () => new Map(keys.map((k) => [k, { ...target, endpoint: `http://${k}.invalid` }])),
    });
    await cache.refresh();
    expect([...cache.all().keys()].sort()).toEqual(['k1', 'k2']);
    keys = ['k2'];
    await cache.refresh();
    expect([...cache.all().keys()]).toEqual(['k2']);
    expect(cache.get('k1')).toBeUndefined();
  });
});
