// The rows of a federated query as one caller sees them here: the same use cases and tenancy
// checks as the user routes (OSCAR visibility for services, whose jobs a caller sees, bucket
// grants), then a filter that only narrows, then the page size. Used for the local part of a
// user's query (as that user) and for a peer's query (as its grant's subject).
import { jobOwnerScope, ownerOf, type Principal } from '../../core/auth/principal.ts';
import { isFlotillaError } from '../../core/errors.ts';
import { redactService } from '../../core/fdl/secrets.ts';
import type { Service } from '../../core/fdl/service.ts';
import type { JobRecord, JobStore, SearchStore, TextHit } from '../../core/ports.ts';
import { jobRow, logRow, type Row, SEARCHABLE, serviceDetail, serviceRow } from '../../core/trust/query.ts';
import { type NarrowFilter, passesFilter, type Resource } from '../../core/trust/scope.ts';
import type { BucketUseCases } from '../buckets.ts';
import type { JobLogs } from '../jobs/job-logs.ts';
import type { ServiceUseCases } from '../services.ts';

/** Where the next page starts: the last name shown (services, buckets), or the service whose
 * jobs continue with the store's own cursor (null: from its newest job). */
export type Position = string | { s: string; c: string | null };

export interface QueryRowsDeps {
  services: Pick<ServiceUseCases, 'list' | 'get'>;
  jobs: Pick<JobStore, 'listJobs' | 'getJob'>;
  logs: Pick<JobLogs, 'log'>;
  buckets: Pick<BucketUseCases, 'list'>;
  /** This cluster's /system/status answer. */
  status(): Promise<unknown>;
  search: SearchStore;
  clusterId: string;
}

export interface Page {
  rows: Row[];
  next: Position | null;
}

type BucketRow = Awaited<ReturnType<BucketUseCases['list']>>[number];

const byName = <T extends { name: string }>(xs: T[]) =>
  [...xs].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));

/** A use case's refusal (not found, not allowed) is "no such row" here: no hint of which. */
const orNothing = async <T>(f: () => Promise<T>): Promise<T | undefined> => {
  try {
    return await f();
  } catch (e) {
    if (isFlotillaError(e) && e.status >= 400 && e.status < 500) return undefined;
    throw e;
  }
};

export class QueryRows {
  constructor(private readonly d: QueryRowsDeps) {}

  /** Services the caller may use, narrowed by the filter (its own or a listed group's). */
  private async services(p: Principal, filter: NarrowFilter): Promise<Service[]> {
    const subject = ownerOf(p);
    return byName(
      (await this.d.services.list(p)).filter((s) =>
        passesFilter(filter, { owner: s.owner, group: s.federation?.group_id }, subject),
      ),
    );
  }

  private async bucketRows(p: Principal, filter: NarrowFilter): Promise<BucketRow[]> {
    const subject = ownerOf(p);
    return (await this.d.buckets.list(p))
      .filter((b) => passesFilter(filter, { owner: b.owner }, subject))
      .sort((x, y) => (x.bucket_name < y.bucket_name ? -1 : x.bucket_name > y.bucket_name ? 1 : 0));
  }

  private statusRow = async (): Promise<Row> => {
    const s = (await this.d.status()) as { cluster?: Record<string, unknown> } | undefined;
    return { cluster_id: this.d.clusterId, ...(s?.cluster ?? {}) };
  };

  async list(
    p: Principal,
    resource: Resource,
    o: { filter: NarrowFilter; limit: number; after?: Position },
  ): Promise<Page> {
    const after = o.after;
    if (resource === 'status')
      return { rows: after === undefined ? [await this.statusRow()] : [], next: null };
    if (resource === 'services' || resource === 'buckets') {
      const named =
        resource === 'services'
          ? (await this.services(p, o.filter)).map((s) => ({ key: s.name, row: serviceRow(s) as Row }))
          : (await this.bucketRows(p, o.filter)).map((b) => ({ key: b.bucket_name, row: b as Row }));
      const rest = typeof after === 'string' ? named.filter((n) => n.key > after) : named;
      const page = rest.slice(0, o.limit);
      return {
        rows: page.map((n) => n.row),
        next: rest.length > o.limit ? page[page.length - 1].key : null,
      };
    }
    // jobs and logs: service by service (by name), each newest first with the store's cursor.
    const pos = typeof after === 'object' ? after : undefined;
    const services = (await this.services(p, o.filter)).filter((s) => !pos || s.name >= pos.s);
    const rows: Row[] = [];
    const show = resource === 'jobs' ? jobRow : logRow;
    for (let i = 0; i < services.length; i++) {
      const svc = services[i];
      const cursor = pos && svc.name === pos.s ? pos.c : null;
      const page = await this.d.jobs.listJobs(svc.name, {
        cursor,
        limit: o.limit - rows.length,
        owner: jobOwnerScope(p, svc),
      });
      rows.push(...page.jobs.map(show));
      if (rows.length >= o.limit) {
        const next = page.next
          ? { s: svc.name, c: page.next }
          : i + 1 < services.length
            ? { s: services[i + 1].name, c: null }
            : null;
        return { rows, next };
      }
    }
    return { rows, next: null };
  }

  /** The job, when the caller may see it (its service visible, its jobs theirs to see) and
   * the filter lets its service through. */
  private async visibleJob(p: Principal, id: string, filter: NarrowFilter): Promise<JobRecord | undefined> {
    const job = await this.d.jobs.getJob(id);
    if (!job) return undefined;
    const svc = await orNothing(() => this.d.services.get(p, job.service));
    if (!svc) return undefined;
    if (!passesFilter(filter, { owner: svc.owner, group: svc.federation?.group_id }, ownerOf(p)))
      return undefined;
    const owner = jobOwnerScope(p, svc);
    return owner !== undefined && job.owner !== owner ? undefined : job;
  }

  async get(p: Principal, resource: Resource, id: string, filter: NarrowFilter): Promise<Row | undefined> {
    switch (resource) {
      case 'services': {
        const s = await orNothing(() => this.d.services.get(p, id));
        if (!s || !passesFilter(filter, { owner: s.owner, group: s.federation?.group_id }, ownerOf(p)))
          return undefined;
        return serviceDetail(redactService(s));
      }
      case 'jobs': {
        const job = await this.visibleJob(p, id, filter);
        return job ? jobRow(job) : undefined;
      }
      case 'logs': {
        const job = await this.visibleJob(p, id, filter);
        if (!job) return undefined;
        const log = await orNothing(() => this.d.logs.log(p, job.service, job.id));
        return log ? { ...logRow(job), status: log.status, log: log.text } : undefined;
      }
      case 'buckets':
        return (await this.bucketRows(p, filter)).find((b) => b.bucket_name === id);
      case 'status':
        return id === this.d.clusterId ? this.statusRow() : undefined;
    }
  }

  /**
   * Full-text search over what the caller may see of `resources` (each with its filter),
   * ranked by the store; `offset` pages. Rows carry `_resource` and `_rank`.
   */
  async search(
    p: Principal,
    q: string,
    resources: Resource[],
    filterOf: (r: Resource) => NarrowFilter,
    limit: number,
    offset: number,
  ): Promise<{ rows: Row[]; next: number | null }> {
    const wanted = resources.filter((r) => SEARCHABLE.includes(r));
    const services = wanted.includes('services') ? await this.services(p, filterOf('services')) : [];
    const logServices = wanted.includes('logs') ? await this.services(p, filterOf('logs')) : [];
    const buckets = wanted.includes('buckets') ? await this.bucketRows(p, filterOf('buckets')) : [];
    const all = logServices.filter((s) => jobOwnerScope(p, s) === undefined).map((s) => s.name);
    const own = logServices.filter((s) => jobOwnerScope(p, s) !== undefined).map((s) => s.name);
    const hits = await this.d.search.searchText({
      q,
      services: services.map((s) => s.name),
      logs: { all, own, owner: ownerOf(p) },
      buckets: buckets.map((b) => b.bucket_name),
      limit: limit + 1,
      offset,
    });
    const page = hits.slice(0, limit);
    const byService = new Map(services.map((s) => [s.name, s]));
    const byBucket = new Map(buckets.map((b) => [b.bucket_name, b]));
    const rows: Row[] = [];
    for (const h of page) {
      const row = await this.hitRow(h, byService, byBucket);
      if (row) rows.push({ ...row, _resource: h.resource, _rank: Number(h.rank.toFixed(6)) });
    }
    return { rows, next: hits.length > limit ? offset + limit : null };
  }

  private async hitRow(
    h: TextHit,
    services: Map<string, Service>,
    buckets: Map<string, BucketRow>,
  ): Promise<Row | undefined> {
    if (h.resource === 'services') {
      const s = services.get(h.key);
      return s ? serviceRow(s) : undefined;
    }
    if (h.resource === 'buckets') return buckets.get(h.key);
    const job = await this.d.jobs.getJob(h.key);
    return job ? logRow(job) : undefined;
  }
}
