// Accepting asynchronous jobs: authenticate against the service, store the job (accepted
// means stored), wake the runner. Storage triggers enqueue through the same path.
import { randomUUID } from 'node:crypto';
import { canUse, ownerOf, type Principal } from '../../core/auth/principal.ts';
import { fail } from '../../core/errors.ts';
import { type Service, serviceCpuMillis, serviceMemoryBytes } from '../../core/fdl/service.ts';
import type { JobQueue, JobStore, NewJob } from '../../core/ports.ts';
import type { Authenticator } from '../authenticate.ts';
import type { ServiceCache } from '../service-cache.ts';
import { GroupCommitter } from './group-commit.ts';

export interface JobAccepted {
  job_id: string;
  cluster_id: string;
  delegated_to: string | null;
}

export interface IntakeDeps {
  store: JobStore;
  queue: JobQueue;
  services: ServiceCache;
  auth: Authenticator;
  clusterId: string;
  /** Called after jobs are stored, so the runner looks for work. */
  onStored: () => void;
  /** Delegation at intake: where the job went, when no local node has room for it. */
  delegateAtIntake?: (jobId: string, service: Service) => Promise<string | undefined>;
  /** Seals a delegating cluster's storage token before it is stored with the job. */
  seal?: (plain: string) => string;
  /** Refuses (400) an S3-style event naming an object the job may not read (DESIGN §3.2). */
  checkEvent?: (service: Service, principal: Principal, event: Uint8Array, origin?: string) => Promise<void>;
}

export interface IntakeHeaders {
  authorization?: string;
  /** X-Delegated-Job-ID: the sender's id; the same id is accepted once. */
  delegatedId?: string;
  /** X-Delegated-From: the origin cluster of a delegated job. */
  delegatedFrom?: string;
  /** X-Delegation-Token: what this cluster presents to the origin for its storage keys. */
  delegationToken?: string;
}

const DELEGATED_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;
const CLUSTER_ID_RE = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

export class JobIntake {
  private readonly committer: GroupCommitter<NewJob, string>;

  constructor(private readonly deps: IntakeDeps) {
    this.committer = new GroupCommitter(async (jobs) => {
      const ids = await deps.store.insertJobs(jobs);
      // Offered to runners once stored: a crash between the two leaves a stored job that
      // the leader's sweep offers again.
      await deps.queue.publish(jobs.map((j, i) => ({ id: ids[i], service: j.service })));
      return ids;
    });
  }

  /** Resolves the service and the caller; a service token of that service is accepted. With
   * `event` (a synchronous run) the event is checked too. */
  async authorize(
    serviceName: string,
    authorization: string | undefined,
    event?: Uint8Array,
  ): Promise<{ service: Service; principal: Principal }> {
    const service = await this.deps.services.get(serviceName);
    if (!service) return fail('SERVICE_NOT_FOUND', `service "${serviceName}" not found`);
    const principal = await this.deps.auth.authenticate(authorization, {
      serviceTokenFor: { name: service.name, token: service.token },
    });
    if (!canUse(principal, service)) fail('FORBIDDEN', `you may not invoke service "${serviceName}"`);
    if (event) await this.deps.checkEvent?.(service, principal, event);
    return { service, principal };
  }

  /** POST /job/{service}: stores the job and answers once it is durable. */
  async submit(serviceName: string, body: Uint8Array, headers: IntakeHeaders): Promise<JobAccepted> {
    const { service, principal } = await this.authorize(serviceName, headers.authorization);
    return this.accept(service, principal, body, headers);
  }

  /**
   * A job submitted by a caller authenticated elsewhere (the peer channel: a grant's subject),
   * under the same rules: the caller may use the service, the event is checked.
   */
  async submitAs(
    principal: Principal,
    serviceName: string,
    body: Uint8Array,
    headers: Omit<IntakeHeaders, 'authorization'>,
    check?: (service: Service) => void,
  ): Promise<JobAccepted> {
    const service = await this.deps.services.get(serviceName);
    if (!service) return fail('SERVICE_NOT_FOUND', `service "${serviceName}" not found`);
    if (!canUse(principal, service)) fail('FORBIDDEN', `you may not invoke service "${serviceName}"`);
    check?.(service);
    return this.accept(service, principal, body, headers);
  }

  private async accept(
    service: Service,
    principal: Principal,
    body: Uint8Array,
    headers: Omit<IntakeHeaders, 'authorization'>,
  ): Promise<JobAccepted> {
    if (headers.delegatedId !== undefined && !DELEGATED_ID_RE.test(headers.delegatedId)) {
      fail('BAD_REQUEST', 'X-Delegated-Job-ID must be 1-128 letters, digits, ".", "_", ":" or "-"');
    }
    if (headers.delegatedFrom !== undefined && !CLUSTER_ID_RE.test(headers.delegatedFrom)) {
      fail('BAD_REQUEST', 'X-Delegated-From must be a cluster id');
    }
    const origin =
      headers.delegatedId && headers.delegatedFrom
        ? {
            cluster: headers.delegatedFrom,
            token:
              headers.delegationToken && this.deps.seal ? this.deps.seal(headers.delegationToken) : undefined,
          }
        : undefined;
    await this.deps.checkEvent?.(service, principal, body, origin?.cluster);
    const id = await this.enqueue(service, body, ownerOf(principal), headers.delegatedId, origin);
    if (headers.delegatedId !== undefined) {
      // A repeated id answers with the job that holds it, but only a job of this service.
      const held = await this.deps.store.getJob(id);
      if (held && held.service !== service.name) {
        fail(
          'CONFLICT',
          `X-Delegated-Job-ID "${headers.delegatedId}" already names a job of another service`,
        );
      }
    }
    // A job that came delegated is not sent on at intake: it waits here, or the
    // rescheduler moves it, so two clusters cannot bounce it back and forth.
    const delegatedTo = origin ? undefined : await this.deps.delegateAtIntake?.(id, service);
    return { job_id: id, cluster_id: this.deps.clusterId, delegated_to: delegatedTo ?? null };
  }

  /** Stores a job for a service without caller checks (storage triggers, internal use). */
  async enqueue(
    service: Service,
    body: Uint8Array,
    owner: string,
    delegatedId?: string,
    origin?: { cluster: string; token: string | undefined },
  ): Promise<string> {
    const job: NewJob = {
      // OSCAR's Kubernetes Job name, which its clients expect as the job's id.
      id: `${service.name}-${randomUUID()}`,
      service: service.name,
      event: body,
      owner,
      cpuMillis: serviceCpuMillis(service),
      memoryBytes: serviceMemoryBytes(service),
      delegatedId: delegatedId ?? null,
      originCluster: origin?.cluster ?? null,
      originToken: origin?.token ?? null,
    };
    const id = await this.committer.submit(job);
    this.deps.onStored();
    return id;
  }
}
