// Accepting asynchronous jobs: authenticate against the service, store the job (accepted
// means stored), wake the runner. Storage triggers enqueue through the same path.
import { randomUUID } from 'node:crypto';
import { canUse, ownerOf, type Principal } from '../../core/auth/principal.ts';
import {
  DROPPED_ABANDONED,
  DROPPED_EXPIRED,
  onAbandon,
  onConfirm,
  onRepeatSend,
  parseHoldSeconds,
} from '../../core/delegation/hand-over.ts';
import { fail } from '../../core/errors.ts';
import { type Service, serviceCpuMillis, serviceMemoryBytes } from '../../core/fdl/service.ts';
import type { JobQueue, JobRecord, JobStore, NewJob } from '../../core/ports.ts';
import type { Authenticator } from '../authenticate.ts';
import type { ServiceCache } from '../service-cache.ts';
import { GroupCommitter } from './group-commit.ts';

export interface JobAccepted {
  job_id: string;
  cluster_id: string;
  delegated_to: string | null;
  /** Only on a hand-over with X-Delegation-Hold: true while it waits for the origin's confirm. */
  held?: boolean;
}

/** The answer to a confirm or an abandon of a hand-over (ADR 13). */
export interface HandOverAnswer {
  job_id: string | null;
  state: 'confirmed' | 'abandoned';
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
  /** The time holds are set and checked against (tests move it). */
  now?: () => Date;
}

export interface IntakeHeaders {
  authorization?: string;
  /** X-Delegated-Job-ID: the sender's id; the same id is accepted once. */
  delegatedId?: string;
  /** X-Delegated-From: the origin cluster of a delegated job. */
  delegatedFrom?: string;
  /** X-Delegation-Token: what this cluster presents to the origin for its storage keys. */
  delegationToken?: string;
  /** X-Delegation-Hold: hold the job this many seconds for the origin's confirm (ADR 13). */
  hold?: string;
}

const DELEGATED_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;
const CLUSTER_ID_RE = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

export class JobIntake {
  private readonly committer: GroupCommitter<NewJob, string>;

  constructor(private readonly deps: IntakeDeps) {
    this.committer = new GroupCommitter(async (jobs) => {
      const ids = await deps.store.insertJobs(jobs);
      // Offered to runners once stored: a crash between the two leaves a stored job that
      // the leader's sweep offers again. A held hand-over is offered once confirmed.
      await deps.queue.publish(
        jobs.flatMap((j, i) => (j.holdState ? [] : [{ id: ids[i], service: j.service }])),
      );
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
    const hold = parseHoldSeconds(headers.hold);
    if (hold === 'invalid') fail('BAD_REQUEST', 'X-Delegation-Hold must be a whole number of seconds, 1-900');
    if (hold !== undefined && (!headers.delegatedId || !headers.delegatedFrom)) {
      fail('BAD_REQUEST', 'X-Delegation-Hold needs X-Delegated-Job-ID and X-Delegated-From');
    }
    const origin =
      headers.delegatedId && headers.delegatedFrom
        ? {
            cluster: headers.delegatedFrom,
            token:
              headers.delegationToken && this.deps.seal ? this.deps.seal(headers.delegationToken) : undefined,
            heldUntil: typeof hold === 'number' ? new Date(this.now().getTime() + hold * 1000) : undefined,
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
      if (held && origin?.heldUntil) return this.answerHandOver(held, ownerOf(principal), origin.cluster);
    }
    // A job that came delegated is not sent on at intake: it waits here, or the
    // rescheduler moves it, so two clusters cannot bounce it back and forth.
    const delegatedTo = origin ? undefined : await this.deps.delegateAtIntake?.(id, service);
    return { job_id: id, cluster_id: this.deps.clusterId, delegated_to: delegatedTo ?? null };
  }

  private async usable(principal: Principal, serviceName: string): Promise<Service> {
    const service = await this.deps.services.get(serviceName);
    if (!service) return fail('SERVICE_NOT_FOUND', `service "${serviceName}" not found`);
    if (!canUse(principal, service)) fail('FORBIDDEN', `you may not invoke service "${serviceName}"`);
    return service;
  }

  private now(): Date {
    return this.deps.now?.() ?? new Date();
  }

  /** A hand-over with a hold, new or repeated: what the stored job says (ADR 13). */
  private async answerHandOver(job: JobRecord, owner: string, origin: string): Promise<JobAccepted> {
    if (job.owner !== owner || job.originCluster !== origin) {
      fail('CONFLICT', "X-Delegated-Job-ID already names another caller's job");
    }
    const answer = (held: boolean): JobAccepted => ({
      job_id: job.id,
      cluster_id: this.deps.clusterId,
      delegated_to: null,
      held,
    });
    switch (onRepeatSend(job, this.now())) {
      case 'held':
        return answer(true);
      case 'confirmed':
        return answer(false);
      case 'expire':
        await this.deps.store.dropHold(job.id, DROPPED_EXPIRED, this.now());
        return fail('DELEGATION_DROPPED', `the hand-over of job ${job.delegatedId} expired here`);
      default:
        return fail('DELEGATION_DROPPED', `the hand-over of job ${job.delegatedId} was dropped here`);
    }
  }

  private checkHandOverIds(delegatedId: string, from: string | undefined): asserts from is string {
    if (!DELEGATED_ID_RE.test(delegatedId)) fail('BAD_REQUEST', 'the delegated job id is not one');
    if (from === undefined || !CLUSTER_ID_RE.test(from))
      fail('BAD_REQUEST', 'X-Delegated-From must be a cluster id');
  }

  /** A confirmed hold: offered to runners off the answer's path (a job the queue never got
   * is offered again by the leader's sweep of waiting jobs). */
  private confirmed(id: string, service: Service): HandOverAnswer {
    void this.deps.queue
      .publish([{ id, service: service.name }])
      .catch(() => {})
      .finally(() => this.deps.onStored());
    return { job_id: id, state: 'confirmed' };
  }

  /** A held hand-over of this caller from that origin; undefined (a 404) for anyone else's. */
  private async handOverOf(
    service: Service,
    principal: Principal,
    delegatedId: string,
    from: string | undefined,
  ): Promise<JobRecord | undefined> {
    this.checkHandOverIds(delegatedId, from);
    const job = await this.deps.store.getJobByDelegatedId(delegatedId);
    const mine =
      job && job.service === service.name && job.owner === ownerOf(principal) && job.originCluster === from;
    return mine ? job : undefined;
  }

  /** POST /job/{service}/delegated/{id}/confirm: the held job may run now (idempotent). */
  async confirm(
    serviceName: string,
    delegatedId: string,
    headers: { authorization?: string; delegatedFrom?: string },
  ): Promise<HandOverAnswer> {
    const { service, principal } = await this.authorize(serviceName, headers.authorization);
    return this.confirmFor(principal, service, delegatedId, headers.delegatedFrom);
  }

  /** The same, for a caller authenticated elsewhere (the peer channel: a grant's subject). */
  async confirmAs(
    principal: Principal,
    serviceName: string,
    delegatedId: string,
    from: string | undefined,
  ): Promise<HandOverAnswer> {
    return this.confirmFor(principal, await this.usable(principal, serviceName), delegatedId, from);
  }

  private async confirmFor(
    principal: Principal,
    service: Service,
    delegatedId: string,
    from: string | undefined,
  ): Promise<HandOverAnswer> {
    this.checkHandOverIds(delegatedId, from);
    const now = this.now();
    // The common case in one statement: this caller's hold, still held and in time.
    const confirmed = await this.deps.store.confirmHoldOf(
      delegatedId,
      { service: service.name, owner: ownerOf(principal), originCluster: from },
      now,
    );
    if (confirmed) return this.confirmed(confirmed, service);
    const job = await this.handOverOf(service, principal, delegatedId, from);
    const notHere = () => fail('JOB_NOT_FOUND', `no hand-over ${delegatedId} of yours is held here`);
    switch (onConfirm(job, now)) {
      case 'absent':
        return notHere();
      case 'confirm': {
        if (await this.deps.store.confirmHold(job!.id, now)) return this.confirmed(job!.id, service);
        // Confirmed or expired in between: decide again from what the store holds now.
        const again = await this.deps.store.getJob(job!.id);
        if (again?.holdState === 'confirmed') return { job_id: job!.id, state: 'confirmed' };
        await this.deps.store.dropHold(job!.id, DROPPED_EXPIRED, now);
        return fail('DELEGATION_DROPPED', `the hand-over of job ${delegatedId} expired here`);
      }
      case 'already-confirmed':
        return { job_id: job!.id, state: 'confirmed' };
      case 'expire':
        await this.deps.store.dropHold(job!.id, DROPPED_EXPIRED, now);
        return fail('DELEGATION_DROPPED', `the hand-over of job ${delegatedId} expired here`);
      default:
        return fail('DELEGATION_DROPPED', `the hand-over of job ${delegatedId} was dropped here`);
    }
  }

  /** POST /job/{service}/delegated/{id}/abandon: the origin gave the job to another cluster. */
  async abandon(
    serviceName: string,
    delegatedId: string,
    headers: { authorization?: string; delegatedFrom?: string },
  ): Promise<HandOverAnswer> {
    const { service, principal } = await this.authorize(serviceName, headers.authorization);
    return this.abandonFor(principal, service, delegatedId, headers.delegatedFrom);
  }

  /** The same, for a caller authenticated elsewhere (the peer channel: a grant's subject). */
  async abandonAs(
    principal: Principal,
    serviceName: string,
    delegatedId: string,
    from: string | undefined,
  ): Promise<HandOverAnswer> {
    return this.abandonFor(principal, await this.usable(principal, serviceName), delegatedId, from);
  }

  private async abandonFor(
    principal: Principal,
    service: Service,
    delegatedId: string,
    from: string | undefined,
  ): Promise<HandOverAnswer> {
    const job = await this.handOverOf(service, principal, delegatedId, from);
    // Someone else's job under that id: the same answer as an unknown id would be a lie
    // (no tombstone can be stored), so the same 404 as a confirm of it.
    const taken = !job && (await this.deps.store.getJobByDelegatedId(delegatedId));
    if (taken) return fail('JOB_NOT_FOUND', `no hand-over ${delegatedId} of yours is held here`);
    switch (onAbandon(job)) {
      case 'tombstone': {
        // Remembered as dropped, so a hand-over that arrives late is refused, never held.
        const id = await this.enqueue(service, new Uint8Array(0), ownerOf(principal), delegatedId, {
          cluster: from!,
          token: undefined,
          dropped: true,
        });
        // A hand-over stored in between holds the id: drop it (or refuse, if confirmed).
        const stored = await this.deps.store.getJob(id);
        if (stored?.holdState === 'held') await this.deps.store.dropHold(id, DROPPED_ABANDONED, this.now());
        else if (stored?.holdState === 'confirmed')
          fail('DELEGATION_CONFIRMED', `the hand-over of job ${delegatedId} was confirmed here`);
        return { job_id: id, state: 'abandoned' };
      }
      case 'drop':
        if (!(await this.deps.store.dropHold(job!.id, DROPPED_ABANDONED, this.now()))) {
          const again = await this.deps.store.getJob(job!.id);
          if (again?.holdState === 'confirmed')
            fail('DELEGATION_CONFIRMED', `the hand-over of job ${delegatedId} was confirmed here`);
        }
        return { job_id: job!.id, state: 'abandoned' };
      case 'already-dropped':
        return { job_id: job!.id, state: 'abandoned' };
      default:
        return fail('DELEGATION_CONFIRMED', `the hand-over of job ${delegatedId} was confirmed here`);
    }
  }

  /** Stores a job for a service without caller checks (storage triggers, internal use). */
  async enqueue(
    service: Service,
    body: Uint8Array,
    owner: string,
    delegatedId?: string,
    origin?: { cluster: string; token: string | undefined; heldUntil?: Date; dropped?: boolean },
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
      ...(origin?.dropped
        ? { holdState: 'dropped' as const, status: 'Failed' as const, reason: DROPPED_ABANDONED }
        : origin?.heldUntil
          ? { holdState: 'held' as const, heldUntil: origin.heldUntil }
          : {}),
    };
    const id = await this.committer.submit(job);
    this.deps.onStored();
    return id;
  }
}
