// Replicas of one cluster share one status poller: the leader polls each peer and publishes
// the snapshots; a follower reads them (and keeps its own reservations on top) instead of
// polling. When leadership moves, the new leader polls.
import { describe, expect, it } from 'vitest';
import type { PeerClient, PeerTarget } from '../../src/core/ports.ts';
import { type SharedEntry, StatusCache } from '../../src/worker/status-cache.ts';

const statusWith = (freeMillis: number) => ({
  cluster: {
    metrics: { cpu: { total_free_cores: freeMillis } },
    nodes: [
      {
        cpu: { capacity_cores: freeMillis, request_cores: 0 },
        memory: { capacity_bytes: 2 ** 30, request_bytes: 0 },
        status: 'Ready',
      },
    ],
  },
});

/** A peer client whose only call is status; it counts the polls. */
const countingPeers = (free: number) => {
  const calls = { n: 0 };
  const peers = {
    status: async () => {
      calls.n += 1;
      return statusWith(free);
    },
  } as unknown as PeerClient;
  return { peers, calls };
};

const target: PeerTarget = { clusterId: 'b', endpoint: 'http://b', sslVerify: true, auth: { kind: 'none' } };

describe('status cache shared between replicas', () => {
  it('the leader polls and publishes; a follower reads without polling and keeps its reservations', async () => {
    let board: SharedEntry[] = [];
    const shared = {
      publish: async (e: SharedEntry[]) => {
        board = JSON.parse(JSON.stringify(e));
      },
      load: async () => board,
    };
    const leader = countingPeers(4000);
    const follower = countingPeers(4000);
    const a = new StatusCache({
      peers: leader.peers,
      targets: async () => new Map([['b', target]]),
      shared,
      intervalMs: 20,
    });
    const b = new StatusCache({
      peers: follower.peers,
      targets: async () => new Map([['b', target]]),
      shared,
      intervalMs: 20,
    });
    a.lead(true);
    a.start();
    b.start();
    await new Promise((r) => setTimeout(r, 150));
    expect(leader.calls.n).toBeGreaterThan(0);
    expect(follower.calls.n).toBe(0);
    expect(b.get('b')).toMatchObject({ online: true, totalFreeCpuMillis: 4000 });
    b.reserve('b', { cpuMillis: 1000, memoryBytes: 1 });
    expect(b.get('b')?.totalFreeCpuMillis).toBe(3000);

    // Leadership moves: the follower polls, the old leader stops.
    a.lead(false);
    b.lead(true);
    const before = leader.calls.n;
    await new Promise((r) => setTimeout(r, 150));
    expect(follower.calls.n).toBeGreaterThan(0);
    expect(leader.calls.n).toBeLessThanOrEqual(before + 1);
    a.stop();
    b.stop();
  });
});
