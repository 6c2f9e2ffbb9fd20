// MetricsSink contract: one suite, run against every adapter (today prom-client), each read
// back the way its consumer reads it (for Prometheus: the /metrics text). Use cases only
// report; what each report must leave behind is counted here.
import { describe, expect, it } from 'vitest';
import { PrometheusMetrics } from '../../src/adapters/metrics/prometheus-metrics.ts';
import type { MetricsSink } from '../../src/core/ports.ts';

/** What a sink has recorded, in the port's terms. */
interface Recorded {
  finished: Record<'Succeeded' | 'Failed', { count: number; seconds: number }>;
  delegated: Record<string, number>;
  delegationFailures: Record<string, number>;
  audit: Record<string, number>;
  peerOfflines: Record<string, number>;
  peersOffline: Record<string, number>;
}

interface Adapter {
  name: string;
  open(): { sink: MetricsSink; read(): Promise<Recorded> };
}

/** Samples of one metric family in Prometheus text, by the value of one label. */
const samples = (text: string, metric: string, label: string): Record<string, number> => {
  const out: Record<string, number> = {};
  const line = new RegExp(`^${metric}\\{([^}]*)\\} (\\S+)$`, 'gm');
  for (const m of text.matchAll(line)) {
    const value = new RegExp(`(?:^|,)${label}="([^"]*)"`).exec(m[1])?.[1];
    if (value !== undefined) out[value] = Number(m[2]);
  }
  return out;
};

const prometheus = (): ReturnType<Adapter['open']> => {
  const metrics = new PrometheusMetrics({
    clusterId: 'contract',
    jobs: async () => ({ Pending: 0, Running: 0, Succeeded: 0, Failed: 0 }),
    pendingOutbox: async () => 0,
    services: async () => 0,
    clusters: () => new Map(),
  });
  return {
    sink: metrics,
    async read() {
      const { body } = await metrics.render();
      const count = samples(body, 'flotilla_job_duration_seconds_count', 'status');
      const sum = samples(body, 'flotilla_job_duration_seconds_sum', 'status');
      return {
        finished: {
          Succeeded: { count: count.Succeeded ?? 0, seconds: sum.Succeeded ?? 0 },
          Failed: { count: count.Failed ?? 0, seconds: sum.Failed ?? 0 },
        },
        delegated: samples(body, 'flotilla_jobs_delegated_total', 'to'),
        delegationFailures: samples(body, 'flotilla_delegation_failures_total', 'to'),
        audit: samples(body, 'flotilla_audit_rows_total', 'outcome'),
        peerOfflines: samples(body, 'flotilla_peer_offline_total', 'peer'),
        peersOffline: samples(body, 'flotilla_peer_offline', 'peer'),
      };
    },
  };
};

const adapters: Adapter[] = [{ name: 'Prometheus (prom-client)', open: prometheus }];

for (const adapter of adapters) {
  describe(`MetricsSink contract: ${adapter.name}`, () => {
    it('has recorded nothing before the first report', async () => {
      const { read } = adapter.open();
      expect(await read()).toEqual({
        finished: { Succeeded: { count: 0, seconds: 0 }, Failed: { count: 0, seconds: 0 } },
        delegated: {},
        delegationFailures: {},
        audit: { written: 0, dropped: 0 },
        peerOfflines: {},
        peersOffline: {},
      });
    });

    it('counts finished jobs by status and adds up their durations', async () => {
      const { sink, read } = adapter.open();
      sink.jobFinished('Succeeded', 1.5);
      sink.jobFinished('Succeeded', 2);
      sink.jobFinished('Failed', 0.25);
      const { finished } = await read();
      expect(finished.Succeeded).toEqual({ count: 2, seconds: 3.5 });
      expect(finished.Failed).toEqual({ count: 1, seconds: 0.25 });
    });

    it('takes a negative duration (clocks of two replicas) as zero, never as a failure', async () => {
      const { sink, read } = adapter.open();
      sink.jobFinished('Failed', -3);
      expect((await read()).finished.Failed).toEqual({ count: 1, seconds: 0 });
    });

    it('counts delegations and failed attempts by target cluster, each on its own', async () => {
      const { sink, read } = adapter.open();
      sink.jobDelegated('b');
      sink.jobDelegated('b');
      sink.jobDelegated('endpoint:10.0.0.5:8080');
      sink.delegationFailed('c');
      const r = await read();
      expect(r.delegated).toEqual({ b: 2, 'endpoint:10.0.0.5:8080': 1 });
      expect(r.delegationFailures).toEqual({ c: 1 });
    });

    it('adds up audit rows written and dropped', async () => {
      const { sink, read } = adapter.open();
      sink.auditRows('written', 3);
      sink.auditRows('written', 2);
      sink.auditRows('dropped', 1);
      sink.auditRows('dropped', 0);
      expect((await read()).audit).toEqual({ written: 5, dropped: 1 });
    });

    it('counts each peer going offline and shows which are offline now', async () => {
      const { sink, read } = adapter.open();
      sink.peerOffline('b');
      sink.peerOnline('b');
      sink.peerOffline('b');
      sink.peerOffline('c');
      sink.peerOnline('c');
      const r = await read();
      expect(r.peerOfflines).toEqual({ b: 2, c: 1 });
      expect(r.peersOffline).toEqual({ b: 1, c: 0 });
    });
  });
}

describe('Prometheus metrics: what only a labelled time series needs', () => {
  it('keeps at most 200 target clusters as labels (ids come from users); the rest count as "other"', async () => {
    const { sink, read } = prometheus();
    for (let i = 0; i < 250; i++) sink.jobDelegated(`cluster-${i}`);
    const { delegated } = await read();
    expect(Object.keys(delegated)).toHaveLength(201);
    expect(delegated.other).toBe(50);
    expect(delegated['cluster-0']).toBe(1);
  });
});
