// /system/metrics, /system/metrics/{service}, /system/metrics/breakdown: usage accounting as
// OSCAR v4.1 answers it (pkg/handlers/metrics.go, pkg/metrics/aggregators.go), computed from
// the jobs stored here. What Flotilla does not record is reported as a missing source, as
// OSCAR reports a missing one: synchronous runs (not stored), exposed-service requests (no
// exposed services on this executor), countries (no GeoIP source).
// Who sees what: the admin every service; an OIDC user the services they may use.
import type { Principal } from '../core/auth/principal.ts';
import { fail } from '../core/errors.ts';
import type { Service } from '../core/fdl/service.ts';
import type { Clock, JobRecord, JobStore } from '../core/ports.ts';

export const METRIC_KEYS = [
  'services-count',
  'cpu-hours',
  'gpu-hours',
  'requests-sync-per-service',
  'requests-async-per-service',
  'requests-exposed-per-service',
  'requests-per-user',
  'users-per-service',
  'countries-count',
  'countries-list',
] as const;
export type MetricKey = (typeof METRIC_KEYS)[number];

/** The keys a per-service value is given for (OSCAR: the rest is "unsupported … value query"). */
const SERVICE_METRICS: MetricKey[] = [
  'cpu-hours',
  'gpu-hours',
  'requests-sync-per-service',
  'requests-async-per-service',
  'requests-exposed-per-service',
  'users-per-service',
];

export const GROUP_BY = ['service', 'user', 'country'] as const;
export type GroupBy = (typeof GROUP_BY)[number];

export interface TimeRange {
  start: Date;
  end: Date;
}

interface SourceStatus {
  name: string;
  status: 'ok' | 'missing';
  last_updated?: string;
  notes?: string;
}

interface CountryCount {
  country: string;
  request_count: number;
}

export interface BreakdownItem {
  key: string;
  membership?: string;
  executions_count?: number;
  requests_count_total?: number;
  requests_count_sync?: number;
  requests_count_async?: number;
  requests_count_exposed?: number;
  unique_users_count?: number;
  users?: string[];
  countries: CountryCount[];
}

export interface Breakdown {
  start: string;
  end: string;
  group_by: GroupBy;
  items: BreakdownItem[];
}

const DAY_MS = 24 * 3600 * 1000;
const PAGE = 500;

/** OSCAR's range: RFC 3339 start and end, end defaulting to now and start to end − 24 h. */
export const parseTimeRange = (
  startRaw: string | undefined,
  endRaw: string | undefined,
  now: Date,
): TimeRange => {
  const parse = (raw: string, which: string): Date => {
    const text = raw.trim();
    const d = new Date(text);
    // RFC 3339: a date, a time and a zone (Date alone also takes "2024" or "May 1").
    if (
      !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i.test(text) ||
      Number.isNaN(d.getTime())
    ) {
      fail('BAD_REQUEST', `invalid ${which} timestamp: use RFC 3339, e.g. 2025-01-31T12:00:00Z`);
    }
    return d;
  };
  const end = endRaw?.trim() ? parse(endRaw, 'end') : now;
  const start = startRaw?.trim() ? parse(startRaw, 'start') : new Date(end.getTime() - DAY_MS);
  if (end < start) fail('BAD_REQUEST', 'end must be after start');
  return { start, end };
};

/** How OSCAR classes a caller for the user breakdown: OIDC users are members, tokens external. */
const membershipOf = (owner: string): string =>
  owner.startsWith('service-token:') || owner.startsWith('delegation:')
    ? 'external'
    : owner === 'cluster_admin'
      ? 'unknown'
      : 'member';

/** Cpu-hours a job used here within the range (its cpu request × its run time in the range). */
const cpuHours = (j: JobRecord, range: TimeRange, now: Date): number => {
  if (!j.startedAt || j.delegatedTo) return 0;
  const from = Math.max(j.startedAt.getTime(), range.start.getTime());
  const to = Math.min((j.finishedAt ?? now).getTime(), range.end.getTime());
  return to > from ? ((j.cpuMillis / 1000) * (to - from)) / 3_600_000 : 0;
};

const sorted = (set: Iterable<string>): string[] => [...set].sort();

export interface UsageMetricsDeps {
  services: { list(p: Principal): Promise<Service[]>; get(p: Principal, name: string): Promise<Service> };
  jobs: Pick<JobStore, 'listJobs'>;
  clock: Clock;
}

export class UsageMetrics {
  constructor(private readonly d: UsageMetricsDeps) {}

  /** The jobs of these services created within the range (newest first per service). */
  private async jobsOf(names: readonly string[], range: TimeRange): Promise<JobRecord[]> {
    const out: JobRecord[] = [];
    for (const service of names) {
      let cursor: string | null = null;
      // Listings come newest first: stop at the first job older than the range.
      pages: do {
        const page = await this.d.jobs.listJobs(service, { cursor, limit: PAGE });
        for (const j of page.jobs) {
          if (j.createdAt < range.start) break pages;
          if (j.createdAt <= range.end) out.push(j);
        }
        cursor = page.next;
      } while (cursor);
    }
    return out;
  }

  private sources(now: Date, keys: readonly string[]): SourceStatus[] {
    const at = now.toISOString();
    const all: Record<string, SourceStatus> = {
      jobs: { name: 'jobs', status: 'ok', last_updated: at, notes: 'jobs stored on this cluster' },
      sync: { name: 'sync-runs', status: 'missing', notes: 'synchronous runs are not recorded' },
      exposed: {
        name: 'exposed-request-logs',
        status: 'missing',
        notes: 'no exposed services: they need the kubernetes executor',
      },
      country: { name: 'country', status: 'missing', notes: 'no GeoIP source: countries are unknown' },
    };
    return keys.map((k) => all[k]);
  }

  /** Services in the caller's scope: all for the admin, the usable ones for a user. */
  private async scope(principal: Principal): Promise<Service[]> {
    if (principal.kind !== 'admin' && principal.kind !== 'user') {
      fail('FORBIDDEN', 'metrics are for the admin and OIDC users');
    }
    return this.d.services.list(principal);
  }

  async summary(principal: Principal, range: TimeRange) {
    const now = this.d.clock.now();
    const services = await this.scope(principal);
    const jobs = await this.jobsOf(
      services.map((s) => s.name),
      range,
    );
    const users = new Set(jobs.map((j) => j.owner));
    return {
      start: range.start.toISOString(),
      end: range.end.toISOString(),
      totals: {
        services_count_active: services.length,
        services_count_total: new Set(jobs.map((j) => j.service)).size,
        cpu_hours_total: jobs.reduce((a, j) => a + cpuHours(j, range, now), 0),
        gpu_hours_total: 0,
        requests_count_total: jobs.length,
        requests_count_sync: 0,
        requests_count_async: jobs.length,
        requests_count_exposed: 0,
        users_count: users.size,
        users: sorted(users),
        countries_count: 0,
        countries: [] as CountryCount[],
      },
      sources: this.sources(now, ['jobs', 'sync', 'exposed', 'country']),
    };
  }

  /** One metric of a service, or every per-service metric when `metric` is absent. */
  async service(principal: Principal, name: string, metric: string | undefined, range: TimeRange) {
    const now = this.d.clock.now();
    if (principal.kind === 'user') await this.d.services.get(principal, name);
    else await this.scope(principal);
    if (metric !== undefined && !(METRIC_KEYS as readonly string[]).includes(metric)) {
      fail('BAD_REQUEST', `invalid metric key "${metric}": one of ${METRIC_KEYS.join(', ')}`);
    }
    if (metric !== undefined && !SERVICE_METRICS.includes(metric as MetricKey)) {
      fail(
        'BAD_REQUEST',
        `unsupported metric for value query: ${metric} (per service: ${SERVICE_METRICS.join(', ')})`,
      );
    }
    const jobs = await this.jobsOf([name], range);
    const value = (key: MetricKey) => {
      switch (key) {
        case 'cpu-hours':
          return {
            value: jobs.reduce((a, j) => a + cpuHours(j, range, now), 0),
            unit: 'hours',
            src: ['jobs'],
          };
        case 'gpu-hours':
          return { value: 0, unit: 'hours', src: ['jobs'] };
        case 'requests-sync-per-service':
          return { value: 0, src: ['sync'] };
        case 'requests-async-per-service':
          return { value: jobs.length, src: ['jobs'] };
        case 'requests-exposed-per-service':
          return { value: 0, src: ['exposed'] };
        default:
          return { value: new Set(jobs.map((j) => j.owner)).size, src: ['jobs'] };
      }
    };
    const one = (key: MetricKey) => {
      const v = value(key);
      return {
        metric: key,
        value: v.value,
        ...(v.unit ? { unit: v.unit } : {}),
        sources: this.sources(now, v.src),
      };
    };
    const start = range.start.toISOString();
    const end = range.end.toISOString();
    if (metric !== undefined) return { service_id: name, start, end, ...one(metric as MetricKey) };
    return { service_name: name, start, end, metrics: SERVICE_METRICS.map(one) };
  }

  async breakdown(
    principal: Principal,
    range: TimeRange,
    groupBy: string,
    includeUsers: boolean,
  ): Promise<Breakdown> {
    const by = groupBy.trim().toLowerCase();
    if (!(GROUP_BY as readonly string[]).includes(by)) {
      fail('BAD_REQUEST', `unsupported group_by "${groupBy}": one of ${GROUP_BY.join(', ')}`);
    }
    const services = await this.scope(principal);
    const jobs = await this.jobsOf(
      services.map((s) => s.name),
      range,
    );
    const items = new Map<string, { jobs: JobRecord[]; users: Set<string> }>();
    const keyOf = (j: JobRecord) => (by === 'service' ? j.service : by === 'user' ? j.owner : 'unknown');
    for (const j of jobs) {
      const item = items.get(keyOf(j)) ?? { jobs: [], users: new Set<string>() };
      item.jobs.push(j);
      item.users.add(j.owner);
      items.set(keyOf(j), item);
    }
    const out = [...items.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, { jobs: js, users }]): BreakdownItem => {
        if (by === 'service') {
          return {
            key,
            requests_count_total: js.length,
            requests_count_sync: 0,
            requests_count_async: js.length,
            requests_count_exposed: 0,
            unique_users_count: users.size,
            ...(includeUsers ? { users: sorted(users) } : {}),
            countries: [],
          };
        }
        if (by === 'user')
          return { key, membership: membershipOf(key), executions_count: js.length, countries: [] };
        return {
          key,
          executions_count: js.length,
          unique_users_count: users.size,
          countries: [{ country: key, request_count: js.length }],
        };
      });
    return {
      start: range.start.toISOString(),
      end: range.end.toISOString(),
      group_by: by as GroupBy,
      items: out,
    };
  }
}

const csvCell = (v: string | number | undefined): string => {
  const text = String(v ?? '');
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
};

/** The breakdown as OSCAR's CSV (encoding/csv: quoted when needed, countries as "c:n|c:n"). */
export const breakdownCsv = (b: Breakdown): string => {
  const header =
    b.group_by === 'user'
      ? ['key', 'membership', 'executions_count', 'countries']
      : b.group_by === 'service'
        ? [
            'key',
            'membership',
            'requests_count_total',
            'requests_count_sync',
            'requests_count_async',
            'requests_count_exposed',
            'unique_users_count',
            'countries',
          ]
        : ['key', 'membership', 'executions_count', 'unique_users_count', 'countries'];
  const rows = b.items.map((i) => {
    const countries = i.countries.map((c) => `${c.country}:${c.request_count}`).join('|');
    if (b.group_by === 'user') return [i.key, i.membership, i.executions_count, countries];
    if (b.group_by === 'service')
      return [
        i.key,
        i.membership,
        i.requests_count_total,
        i.requests_count_sync,
        i.requests_count_async,
        i.requests_count_exposed,
        i.unique_users_count,
        countries,
      ];
    return [i.key, i.membership, i.executions_count, i.unique_users_count, countries];
  });
  return [header, ...rows].map((r) => `${r.map(csvCell).join(',')}\n`).join('');
};
