// Cluster B's side of federation over the peer channel (DESIGN §6): a peer's replica
// create/update/delete, delegated jobs, their status and this cluster's capacity. The guard
// has checked the certificate, the grant and the (resource, verb) pair already; here the
// grant's `max_cpu` and the replica's shape are decided in core, and the work is done by the
// same use cases as any caller's, acting as the grant's subject: that user's tenancy rules
// (ownership, visibility, buckets) apply, never an admin's.
import type { Principal } from '../../core/auth/principal.ts';
import { FlotillaError } from '../../core/errors.ts';
import { parseServiceInput } from '../../core/fdl/service.ts';
import type { WorkerProof } from '../../core/federation/worker-guard.ts';
import type { Log } from '../../core/ports.ts';
import type { Grant } from '../../core/trust/grant.ts';
import { decideDelegatedJob, decideReplica, type ReplicaDecision } from '../../core/trust/peer-federation.ts';
import { DENIAL_MESSAGE } from '../../core/trust/peer-guard.ts';
import type { FederationUseCases } from '../federation/federation-use-cases.ts';
import type { JobIntake } from '../jobs/job-intake.ts';
import type { JobLogs } from '../jobs/job-logs.ts';
import type { ServiceUseCases } from '../services.ts';

export interface PeerFederationDeps {
  federation: Pick<FederationUseCases, 'create' | 'update' | 'delete'>;
  services: Pick<ServiceUseCases, 'get'>;
  intake: Pick<JobIntake, 'submitAs' | 'confirmAs' | 'abandonAs'>;
  logs: Pick<JobLogs, 'log'>;
  /** This cluster's /system/status answer. */
  status(): Promise<unknown>;
  clusterId: string;
  audit: Pick<Log, 'warn'>;
}

/** Who a grant's peer acts as here: its subject, an ordinary user (never the admin). */
export const subjectOf = (g: Grant): Principal => ({ kind: 'user', sub: g.subjectUser, issuer: 'peer' });

export interface DelegatedHeaders {
  delegatedId?: string;
  delegatedFrom?: string;
  delegationToken?: string;
  hold?: string;
}

export class PeerFederation {
  constructor(private readonly d: PeerFederationDeps) {}

  /** A refusal after the guard: 403 with the one generic text, the reason in the audit line. */
  private enforce(g: Grant, op: string, decision: ReplicaDecision): void {
    if (decision.ok) return;
    this.d.audit.warn(
      {
        audit: 'peer-request',
        outcome: 'denied',
        grant_id: g.id,
        subject: g.subjectUser,
        op,
        reason: decision.reason,
      },
      'peer request denied',
    );
    if (decision.status === 403) throw new FlotillaError('FORBIDDEN', DENIAL_MESSAGE[403]);
    throw new FlotillaError(
      'VALIDATION_FAILED',
      decision.reason,
      decision.field ? { fields: [decision.field] } : undefined,
    );
  }

  /** Changes come only from a coordinator to its own worker (it proves it with the worker's token). */
  private requireProof(g: Grant, op: string, proof: WorkerProof | undefined): WorkerProof {
    if (!proof) this.enforce(g, op, { ok: false, status: 403, reason: 'no-worker-proof' });
    return proof!;
  }

  info(g: Grant) {
    return { cluster_id: this.d.clusterId, subject: g.subjectUser };
  }

  /** Whether the replica exists, as the subject sees it: its name only, never the definition. */
  async readReplica(g: Grant, name: string): Promise<{ name: string }> {
    const s = await this.d.services.get(subjectOf(g), name);
    return { name: s.name };
  }

  async createReplica(g: Grant, body: unknown, proof: WorkerProof | undefined): Promise<void> {
    const input = parseServiceInput(body);
    this.enforce(g, 'replica-create', decideReplica(g.scope, input));
    await this.d.federation.create(
      subjectOf(g),
      input,
      undefined,
      this.requireProof(g, 'replica-create', proof),
    );
  }

  async updateReplica(g: Grant, body: unknown, proof: WorkerProof | undefined): Promise<void> {
    const input = parseServiceInput(body);
    this.enforce(g, 'replica-update', decideReplica(g.scope, input));
    await this.d.federation.update(subjectOf(g), input, this.requireProof(g, 'replica-update', proof));
  }

  async deleteReplica(g: Grant, name: string, proof: WorkerProof | undefined): Promise<void> {
    const checked = this.requireProof(g, 'replica-delete', proof);
    // A replica that is not there is a 404 (a rollback tolerates it): a proven delete is told
    // so. A worker is deleted alone: only its coordinator fans out.
    await this.d.federation.delete(subjectOf(g), name, {
      cascade: false,
      proof: checked,
    });
  }

  /** Storage keys are never given over the channel (a delegated job reaches the sender's
   * storage with the sender's token): an explicit refusal, not a 404 a caller reads as absent. */
  storageKeys(g: Grant): never {
    this.enforce(g, 'storage-keys', { ok: false, status: 403, reason: 'no-storage-keys-over-channel' });
    throw new FlotillaError('FORBIDDEN', DENIAL_MESSAGE[403]);
  }

  /** Federation views are not served over the channel (a replica's read shows only its
   * name): an explicit refusal, not a 404 a caller reads as "this service has none". */
  federationView(g: Grant): never {
    this.enforce(g, 'federation-view', { ok: false, status: 403, reason: 'no-federation-view-over-channel' });
    throw new FlotillaError('FORBIDDEN', DENIAL_MESSAGE[403]);
  }

  /** Capacity for the sender's delegation decisions: the `cluster` part of /system/status
   * (nodes, cpu, memory), not this cluster's job counts or storage totals. */
  async status(): Promise<unknown> {
    const s = (await this.d.status()) as { cluster?: unknown } | undefined;
    return { cluster: s?.cluster ?? null };
  }

  submitJob(g: Grant, service: string, body: Uint8Array, headers: DelegatedHeaders) {
    return this.d.intake.submitAs(subjectOf(g), service, body, headers, (svc) =>
      this.enforce(g, 'job-submit', decideDelegatedJob(g.scope, svc)),
    );
  }

  /** A hand-over's confirm or abandon (ADR 13), as the grant's subject: only its own jobs. */
  confirmJob(g: Grant, service: string, delegatedId: string, from: string | undefined) {
    return this.d.intake.confirmAs(subjectOf(g), service, delegatedId, from);
  }

  abandonJob(g: Grant, service: string, delegatedId: string, from: string | undefined) {
    return this.d.intake.abandonAs(subjectOf(g), service, delegatedId, from);
  }

  jobStatus(g: Grant, service: string, job: string) {
    return this.d.logs.log(subjectOf(g), service, job);
  }
}
