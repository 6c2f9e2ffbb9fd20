// Job listings and logs: GET/DELETE /system/logs/{service}[/{job}]. The owner, the admin
// and the service's token see every job; another user of a public or restricted service
// sees and deletes only the jobs they submitted (others' are not found for them).
import { jobOwnerScope, type Principal } from '../../core/auth/principal.ts';
import { type DelegationDecision, delegationSummary } from '../../core/delegation/decision.ts';
import { fail } from '../../core/errors.ts';
import type { JobPage, JobRecord, JobStore, ServiceStore } from '../../core/ports.ts';
import type { ServiceUseCases } from '../services.ts';
import type { JobRunner } from './job-runner.ts';

export interface JobInfo {
  status: string;
  creation_time: string;
  start_time: string | null;
  finish_time: string | null;
  // Flotilla's additions: where it ran, why it failed.
  delegated_to?: string | null;
  reason?: string | null;
  exit_code?: number | null;
  /** Why it was delegated or kept here, with the same in words; null: never tried. */
  delegation?: (DelegationDecision & { summary: string }) | null;
}

const toInfo = (j: JobRecord): JobInfo => ({
  status: j.status,
  creation_time: j.createdAt.toISOString(),
  start_time: j.startedAt?.toISOString() ?? null,
  finish_time: j.finishedAt?.toISOString() ?? null,
  delegated_to: j.delegatedTo,
  reason: j.reason,
  exit_code: j.exitCode,
  delegation: j.delegation ? { ...j.delegation, summary: delegationSummary(j.delegation) } : null,
});

export const JOBS_PAGE_SIZE = 100;

export class JobLogs {
  constructor(
    private readonly deps: {
      store: JobStore & ServiceStore;
      services: ServiceUseCases;
      runner: JobRunner;
      /** Reads the remote log of a job delegated elsewhere. */
      mirror?: { remoteLog(job: JobRecord): Promise<{ status: string; log: string } | undefined> };
    },
  ) {}

  async list(principal: Principal, service: string, page: string | undefined, limit = JOBS_PAGE_SIZE) {
    const svc = await this.deps.services.get(principal, service);
    const owner = jobOwnerScope(principal, svc);
    const res = await this.deps.store.listJobs(service, { cursor: page ?? null, limit, owner });
    const jobs: Record<string, JobInfo> = {};
    for (const j of res.jobs) jobs[j.id] = toInfo(j);
    return { jobs, next_page: res.next ?? '', remaining_jobs: res.remaining };
  }

  private async job(principal: Principal, service: string, jobId: string): Promise<JobRecord> {
    const svc = await this.deps.services.get(principal, service);
    const owner = jobOwnerScope(principal, svc);
    const job = await this.deps.store.getJob(jobId);
    if (!job || job.service !== service || (owner !== undefined && job.owner !== owner))
      return fail('JOB_NOT_FOUND', `job "${jobId}" of service "${service}" not found`);
    return job;
  }

  /** The job's log text: the stored one when it ended, the live one while it runs. */
  async log(principal: Principal, service: string, jobId: string): Promise<{ text: string; status: string }> {
    const job = await this.job(principal, service, jobId);
    if (job.delegatedTo && job.log === null && this.deps.mirror) {
      const remote = await this.deps.mirror.remoteLog(job).catch(() => undefined);
      if (remote) return { text: remote.log, status: remote.status };
      return {
        text: `[flotilla] the job runs on cluster ${job.delegatedTo}, which is not reachable now\n`,
        status: job.status,
      };
    }
    const text = job.log ?? this.deps.runner.liveLog(job.id) ?? '';
    const reason =
      job.status === 'Failed' && job.reason && !text.includes(job.reason) ? `[flotilla] ${job.reason}\n` : '';
    return { text: text + reason, status: job.status };
  }

  async info(principal: Principal, service: string, jobId: string): Promise<JobInfo & { id: string }> {
    const job = await this.job(principal, service, jobId);
    return { id: job.id, ...toInfo(job) };
  }

  async deleteOne(principal: Principal, service: string, jobId: string): Promise<void> {
    const job = await this.job(principal, service, jobId);
    this.deps.runner.cancelJob(job.id, 'deleted by a user');
    await this.deps.store.deleteJob(job.id);
  }

  /** Finished jobs, or every job with all=true (running ones are cancelled). */
  async deleteMany(principal: Principal, service: string, all: boolean): Promise<number> {
    const svc = await this.deps.services.get(principal, service);
    const owner = jobOwnerScope(principal, svc);
    if (all && owner === undefined) this.deps.runner.cancelService(service, 'deleted by a user');
    if (all && owner !== undefined) {
      // Only this caller's own running jobs are cancelled.
      let cursor: string | null = null;
      do {
        const page: JobPage = await this.deps.store.listJobs(service, { cursor, limit: 500, owner });
        for (const j of page.jobs)
          if (j.status === 'Running') this.deps.runner.cancelJob(j.id, 'deleted by a user');
        cursor = page.next;
      } while (cursor);
    }
    return this.deps.store.deleteJobs(service, { all, owner });
  }
}
