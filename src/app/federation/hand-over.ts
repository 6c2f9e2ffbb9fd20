// The origin's side of the two-step hand-over (ADR 13): send the job with a hold, record it
// at the replica with its confirm pending, confirm, and abandon the holds of replicas whose
// outcome stayed unknown once the job went elsewhere. The steps are decided in
// core/delegation/hand-over.ts; this module only calls and records.
import {
  afterConfirm,
  afterSend,
  type ConfirmOutcome,
  DEFAULT_HOLD_SECONDS,
  HOLD_HEADER,
  type SendOutcome,
} from '../../core/delegation/hand-over.ts';
import { isFlotillaError } from '../../core/errors.ts';
import type { JobRecord, JobStore, Log, PeerClient, PeerTarget } from '../../core/ports.ts';

export interface HandOverDeps {
  peers: PeerClient;
  store: Pick<JobStore, 'markDelegated' | 'confirmedDelegation' | 'takeBackDelegation'>;
  logger: Pick<Log, 'info' | 'warn'>;
  sendTimeoutMs?: number;
  /** How long replicas are asked to hold a job for the confirm (default 120 s). */
  holdSeconds?: number;
}

/** Where a hand-over goes: the replica cluster, how it is reached, its service there. */
export interface HandOverTo {
  clusterId: string;
  target: PeerTarget;
  service: string;
}

export type HandOverResult =
  /** The replica runs the job (`confirmPending`: the mirror finishes the confirm). */
  | { kind: 'delegated'; remoteJobId: string; confirmPending: boolean }
  /** It does not, or not for sure: `inDoubt` replicas get an abandon once the job went elsewhere. */
  | { kind: 'failed'; error: unknown; inDoubt: boolean };

const SEND_ATTEMPTS = 2;
const CONFIRM_ATTEMPTS = 2;

/** No answer, or one that cannot tell: the receiver may have stored what was sent. */
const outcomeUnknown = (e: unknown): boolean =>
  isFlotillaError(e) &&
  e.code === 'PEER_UNREACHABLE' &&
  (/timed out|ECONNRESET|socket/i.test(e.message) || Number(e.details?.remote_status) >= 500);

export const sendOutcomeOf = (e: unknown): SendOutcome => {
  if (isFlotillaError(e) && e.code === 'DELEGATION_DROPPED') return { kind: 'dropped' };
  return outcomeUnknown(e) ? { kind: 'unknown' } : { kind: 'refused' };
};

export const confirmOutcomeOf = (e: unknown): ConfirmOutcome => {
  if (outcomeUnknown(e)) return 'unknown';
  // Any other answer is the receiver's (4xx): it did not confirm, so it never runs the job.
  // A failure with no answer at all (connection refused) reached nothing: unknown as well.
  return isFlotillaError(e) && e.code !== 'PEER_UNREACHABLE' ? 'refused' : 'unknown';
};

export class HandOver {
  constructor(private readonly d: HandOverDeps) {}

  private signal(): AbortSignal {
    return AbortSignal.timeout(this.d.sendTimeoutMs ?? 5000);
  }

  /** Sends `job` to one replica and, when it holds the job, confirms it there. */
  async deliver(
    job: Pick<JobRecord, 'id'>,
    to: HandOverTo,
    body: Uint8Array,
    headers: Record<string, string>,
  ): Promise<HandOverResult> {
    const held = { ...headers, [HOLD_HEADER]: String(this.d.holdSeconds ?? DEFAULT_HOLD_SECONDS) };
    let answer: { job_id: string; held?: boolean } | undefined;
    for (let attempt = 1; !answer; attempt++) {
      try {
        answer = await this.d.peers.submitJob(to.target, to.service, body, held, this.signal());
      } catch (e) {
        // Asking again with the same X-Delegated-Job-ID is safe: it answers with the job it holds.
        const next = afterSend(sendOutcomeOf(e), attempt, SEND_ATTEMPTS);
        if (next === 'retry') continue;
        return { kind: 'failed', error: e, inDoubt: next === 'in-doubt' };
      }
    }
    const step = afterSend({ kind: 'accepted', held: answer.held === true }, 1, SEND_ATTEMPTS);
    if (step === 'delivered') {
      // No hold support there: it runs the job already (at-least-once). A failure to record
      // it must not send it again.
      await this.d.store
        .markDelegated(job.id, to.clusterId, answer.job_id ?? '')
        .catch((e) =>
          this.d.logger.warn({ job: job.id, err: (e as Error).message }, 'delegated, but not recorded yet'),
        );
      return { kind: 'delegated', remoteJobId: answer.job_id, confirmPending: false };
    }
    // Recorded before the confirm, so a crash in between leaves the mirror to finish it.
    try {
      await this.d.store.markDelegated(job.id, to.clusterId, answer.job_id, { confirmPending: true });
    } catch (e) {
      return { kind: 'failed', error: e, inDoubt: true };
    }
    return this.confirm(
      job.id,
      to,
      headers['x-delegated-job-id'],
      headers['x-delegated-from'],
      answer.job_id,
    );
  }

  private async confirm(
    id: string,
    to: HandOverTo,
    delegatedId: string,
    from: string,
    remoteJobId: string,
  ): Promise<HandOverResult> {
    for (let attempt = 1; ; attempt++) {
      let outcome: ConfirmOutcome = 'confirmed';
      let error: unknown;
      try {
        await this.d.peers.confirmJob(
          to.target,
          to.service,
          delegatedId,
          { 'x-delegated-from': from },
          this.signal(),
        );
      } catch (e) {
        outcome = confirmOutcomeOf(e);
        error = e;
      }
      switch (afterConfirm(outcome, attempt, CONFIRM_ATTEMPTS)) {
        case 'delegated':
          // Off the hand-over's path: should this record be lost, the mirror confirms again
          // (idempotent) and records it then.
          void this.d.store
            .confirmedDelegation(id)
            .catch((e) =>
              this.d.logger.warn({ job: id, err: (e as Error).message }, 'confirmed, not recorded'),
            );
          return { kind: 'delegated', remoteJobId, confirmPending: false };
        case 'retry':
          continue;
        case 'confirm-later':
          // Never given elsewhere while in doubt: the mirror repeats the confirm.
          this.d.logger.warn(
            { job: id, to: to.clusterId },
            'delegation confirm unanswered; the mirror repeats it',
          );
          return { kind: 'delegated', remoteJobId, confirmPending: true };
        case 'take-back':
          // The replica refused the confirm: it never runs the job. Still claimed here.
          await this.d.store.takeBackDelegation(id, 'Running');
          return { kind: 'failed', error, inDoubt: false };
      }
    }
  }

  /** Best effort: the hold's expiry covers an abandon that does not arrive. */
  async abandon(to: HandOverTo, delegatedId: string, from: string): Promise<void> {
    try {
      const r = await this.d.peers.abandonJob(
        to.target,
        to.service,
        delegatedId,
        { 'x-delegated-from': from },
        this.signal(),
      );
      this.d.logger.info({ to: to.clusterId, delegated: delegatedId, outcome: r }, 'hand-over abandoned');
    } catch (e) {
      this.d.logger.warn(
        { to: to.clusterId, delegated: delegatedId, err: (e as Error).message },
        'abandon not answered; the hold expires there',
      );
    }
  }
}
