// Ports: what the use cases need from the outside world. Adapters in src/adapters
// implement them; every port has one contract suite in test/contract run against each.

import type { Readable } from 'node:stream';
import type { DelegationDecision } from './delegation/decision.ts';
import type { HoldState } from './delegation/hand-over.ts';
import type { Service } from './fdl/service.ts';
import type { BucketRecord } from './storage/bucket-access.ts';

export type { BucketRecord } from './storage/bucket-access.ts';

import type { AuditStore } from './audit/audit-ports.ts';
import type { TrustStore } from './trust/trust-ports.ts';

export type * from './audit/audit-ports.ts';
export type * from './trust/trust-ports.ts';

import type { WorkerProof } from './federation/worker-guard.ts';
import type { PeerFailureKind } from './peer-failure.ts';

// ---------------------------------------------------------------- store

/**
 * Service writes. Each may carry outbox rows (a coordinator's change plan): they are stored in
 * the same statement as the write, both or neither, and their ids returned in order.
 */
export interface ServiceStore {
  /** Inserts; throws FlotillaError SERVICE_EXISTS when the name is taken. */
  createService(service: Service, queue?: NewOutboxRow[]): Promise<number[]>;
  /** Replaces; throws FlotillaError SERVICE_NOT_FOUND when absent. */
  updateService(service: Service, queue?: NewOutboxRow[]): Promise<number[]>;
  getService(name: string): Promise<Service | undefined>;
  listServices(): Promise<Service[]>;
  /** The rows' ids when a service was removed; undefined (and no row stored) when none was. */
  deleteService(name: string, queue?: NewOutboxRow[]): Promise<number[] | undefined>;
}

/** Bucket owners and grants on this cluster's store (DESIGN §3.2): one row per bucket. */
export interface BucketStore {
  /** Records a bucket's first owner; when one is recorded already, returns that one unchanged. */
  claimBucket(record: BucketRecord): Promise<BucketRecord>;
  getBucket(name: string): Promise<BucketRecord | undefined>;
  listBucketRecords(): Promise<BucketRecord[]>;
  /** false when no record has that name. */
  updateBucket(
    name: string,
    patch: Partial<Pick<BucketRecord, 'visibility' | 'allowedUsers' | 'createdBy'>>,
  ): Promise<boolean>;
  /** false when no record had that name. */
  deleteBucketRecord(name: string): Promise<boolean>;
  /** The buckets a service created (and still names). */
  bucketsCreatedBy(service: string): Promise<BucketRecord[]>;
}

export interface SettingsStore {
  getSetting(key: string): Promise<string | undefined>;
  setSetting(key: string, value: string): Promise<void>;
  /** Sets only when absent; returns the value now stored (first writer wins). */
  setSettingIfAbsent(key: string, value: string): Promise<string>;
}

/** Settings some of which are stamped: their value is a time (ms since the epoch, in decimal). */
export interface StampedSettingsStore extends SettingsStore {
  /** Drops the settings under `prefix` stamped before `before` (others stay); the number dropped. */
  pruneSettings(prefix: string, before: Date): Promise<number>;
}

export type JobStatus = 'Pending' | 'Running' | 'Succeeded' | 'Failed';

export interface JobRecord {
  id: string;
  service: string;
  status: JobStatus;
  /** The raw event body as received (bytes). */
  event: Uint8Array;
  owner: string;
  cpuMillis: number;
  memoryBytes: number;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  exitCode: number | null;
  reason: string | null;
  /** Combined stdout/stderr, written when the job ends. */
  log: string | null;
  /** cluster_id the job was sent to, when delegated. */
  delegatedTo: string | null;
  /** id given by the cluster that delegated the job here (dedupe key). */
  delegatedId: string | null;
  /** Origin side: the job's id on the cluster it went to. */
  remoteJobId: string | null;
  /** Receiving side: the cluster that delegated it, and its sealed storage token. */
  originCluster: string | null;
  originToken: string | null;
  attempts: number;
  /** Why it was delegated or kept here, and how (null: delegation was never tried). */
  delegation: DelegationDecision | null;
  /** Receiving side of a two-step hand-over (ADR 13); null when it came without a hold. */
  holdState: HoldState | null;
  heldUntil: Date | null;
  /** Origin side: recorded at a replica that holds it, whose confirm is not answered yet. */
  confirmPending: boolean;
}

/** A job without its event, log and decision: what scheduling reads (they stay in the store). */
export type JobSummary = Omit<JobRecord, 'event' | 'log' | 'delegation'>;

export type NewJob = Pick<JobRecord, 'id' | 'service' | 'event' | 'owner' | 'cpuMillis' | 'memoryBytes'> &
  Partial<
    Pick<
      JobRecord,
      | 'delegatedId'
      | 'delegatedTo'
      | 'status'
      | 'createdAt'
      | 'originCluster'
      | 'originToken'
      | 'holdState'
      | 'heldUntil'
      | 'reason'
    >
  >;

/** What the origin learns of a delegated job from the cluster running it. */
export interface MirroredState {
  status: JobStatus;
  startedAt: Date | null;
  finishedAt: Date | null;
  log: string | null;
  reason: string | null;
  exitCode: number | null;
}

export interface JobPage {
  jobs: JobRecord[];
  /** Opaque cursor for the next page, or null. */
  next: string | null;
  remaining: number;
}

export interface JobStore {
  /**
   * Stores jobs in one transaction. A job whose delegatedId is already stored is not
   * inserted again; the result lists, per input, the id of the job that holds it.
   */
  insertJobs(jobs: NewJob[]): Promise<string[]>;
  getJob(id: string): Promise<JobRecord | undefined>;
  /** A service's jobs, newest first; with `owner`, only the jobs that caller submitted. */
  listJobs(
    service: string,
    opts: { cursor?: string | null; limit: number; owner?: string },
  ): Promise<JobPage>;
  /** Atomically moves Pending → Running; false when another worker took it. */
  claimJob(id: string, at: Date, runner?: string): Promise<boolean>;
  finishJob(
    id: string,
    result: {
      status: 'Succeeded' | 'Failed';
      at: Date;
      exitCode: number | null;
      reason: string | null;
      log: string;
    },
  ): Promise<void>;
  /** Pending jobs to run here (not delegated), oldest first. */
  pendingJobs(limit: number): Promise<JobSummary[]>;
  /** Running → Pending: a claim given back (delegation did not happen). */
  releaseJob(id: string): Promise<void>;
  /** Stores the job's delegation decision (the latest replaces an earlier one). */
  recordDelegation(id: string, decision: DelegationDecision): Promise<void>;
  /**
   * Records that a claimed job went to another cluster; it mirrors the remote status from now
   * on. `confirmPending`: the replica holds it until this cluster's confirm is answered; the
   * job stays Running (claimed) meanwhile, so no runner here takes it.
   */
  markDelegated(
    id: string,
    clusterId: string,
    remoteJobId: string,
    opts?: { confirmPending?: boolean },
  ): Promise<void>;
  /** The replica answered the confirm: the job is its own from now on (Pending, mirrored). */
  confirmedDelegation(id: string): Promise<void>;
  /**
   * A replica refused a pending confirm (its hold was dropped): the job is this cluster's
   * again, not delegated: `Running` while the delegator still holds its claim, `Pending` for
   * the runner. False when it was not pending a confirm.
   */
  takeBackDelegation(id: string, status: 'Running' | 'Pending'): Promise<boolean>;
  /** The job a delegated id names here (the receiving side's dedupe key). */
  getJobByDelegatedId(delegatedId: string): Promise<JobRecord | undefined>;
  /** Held → confirmed while the hold has not expired at `now`; false otherwise. */
  confirmHold(id: string, now: Date): Promise<boolean>;
  /**
   * The same in one statement, found by its delegated id and only for that caller (service,
   * owner, origin cluster): the id of the job it confirmed, or undefined when it confirmed
   * nothing (no such hold of that caller, not held, or expired: the caller looks closer).
   */
  confirmHoldOf(
    delegatedId: string,
    caller: { service: string; owner: string; originCluster: string },
    now: Date,
  ): Promise<string | undefined>;
  /** Held → dropped (the job ends Failed with the reason, never having run); false otherwise. */
  dropHold(id: string, reason: string, now: Date): Promise<boolean>;
  /** Drops every hold whose deadline is past; returns their ids. */
  dropExpiredHolds(reason: string, now: Date): Promise<string[]>;
  /** Delegated jobs whose remote status is not final yet. */
  delegatedActiveJobs(limit: number): Promise<JobRecord[]>;
  mirrorDelegated(id: string, state: MirroredState): Promise<void>;
  /** Jobs left Running by a previous process: marked Failed with the reason; returns their ids. */
  failRunningJobs(reason: string, at: Date, runner?: string): Promise<string[]>;
  /** Manager instance ids that hold Running jobs now. */
  runnersWithRunningJobs(): Promise<string[]>;
  /** Jobs this runner holds Running (not delegated), oldest first: what a restart re-attaches to. */
  runningJobsOf(runner: string): Promise<JobSummary[]>;
  /** Jobs by id (missing ids are left out). */
  getJobs(ids: string[]): Promise<JobSummary[]>;
  deleteJob(id: string): Promise<boolean>;
  /** Deletes the service's finished jobs, or every job with all=true (with `owner`, only theirs); returns the count. */
  deleteJobs(service: string, opts: { all: boolean; owner?: string }): Promise<number>;
  countJobs(): Promise<Record<JobStatus, number>>;
}

// ---------------------------------------------------------------- outbox

/** create: POST (a service of that name already there is taken as an earlier attempt's and
 * PUT); update: PUT (absent: POST); delete: DELETE (absent counts as done). */
export type OutboxOp = 'create' | 'update' | 'delete';

/** One remote change, durable until the peer has it. Rows carry full state, so the latest
 * row for a (peer, service) supersedes earlier ones. */
export interface OutboxRow {
  id: number;
  peer: string;
  service: string;
  op: OutboxOp;
  /** The full definition for a create or an update. */
  payload: Record<string, unknown> | null;
  target: PeerTarget;
  /** The coordinator service whose federation this change belongs to. */
  group: string;
  revision: number;
  state: 'pending' | 'done';
  attempts: number;
  nextAttemptAt: Date;
  lastError: string | null;
  /** What the last failed attempt met (PeerFailure's kind): sync states read this, never the text. */
  lastErrorKind: PeerFailureKind | null;
  createdAt: Date;
  doneAt: Date | null;
}

/** An outbox row as sync states read it: no definition, no target. */
export type OutboxSyncRow = Omit<OutboxRow, 'payload' | 'target'>;

export type NewOutboxRow = Pick<
  OutboxRow,
  'peer' | 'service' | 'op' | 'payload' | 'target' | 'group' | 'revision'
> & {
  /** Not due before this time (default: now): held while the change is applied at once. */
  notBefore?: Date;
};

export interface OutboxStore {
  enqueueOutbox(rows: NewOutboxRow[]): Promise<number[]>;
  /** Peers with pending rows due at `now`. */
  duePeers(now: Date): Promise<string[]>;
  /**
   * The oldest pending row of each service at a peer, oldest first. Rows carry a service's
   * full state, so order matters within a (peer, service) only: one service's stuck row
   * must not hold back another's.
   */
  headsOfPeer(peer: string): Promise<OutboxRow[]>;
  /**
   * true when a later pending row targets the same (peer, service) at this row's revision or
   * a higher one. A later row with a lower revision belongs to a federation of the same name
   * made again (its revisions start at 1, its workers prove with other tokens): it cannot
   * stand for this row, which must be applied first (a delete of the old worker above all).
   */
  hasLaterRow(row: Pick<OutboxRow, 'id' | 'peer' | 'service' | 'revision'>): Promise<boolean>;
  /**
   * true when a delete of the same (peer, service) at a higher revision was applied before
   * this row, and no create after it: an update that lost a race with its coordinator's
   * delete, which must not bring the worker back.
   */
  deletedAbove(row: Pick<OutboxRow, 'id' | 'peer' | 'service' | 'revision'>): Promise<boolean>;
  /** Marks rows done (one statement for many). */
  markOutboxDone(id: number | readonly number[], at: Date): Promise<void>;
  /** Records a failed attempt: one more attempt, its error and kind, when to try again. */
  markOutboxRetry(id: number, error: string, nextAttemptAt: Date, kind: PeerFailureKind): Promise<void>;
  /** Every row of a federation group, newest first (tier copies, checks). */
  outboxOfGroup(group: string): Promise<OutboxRow[]>;
  /** The same rows without their definitions and targets: what sync states read (a mesh's
   * rows each carry an N-long definition, and the view is read after every change). */
  syncRowsOfGroup(group: string): Promise<OutboxSyncRow[]>;
  pendingOutboxCount(): Promise<number>;
  /** Drops done rows older than `before`, keeping the latest per (peer, service). */
  pruneOutbox(before: Date): Promise<number>;
}

// ---------------------------------------------------------------- queue

/**
 * The order in which stored jobs are offered to runners, shared by every manager instance. The store
 * stays the truth (accepted = stored) and the claim (Pending → Running, a conditional
 * update) decides who runs a job, so a queue may offer a job twice but never runs it twice.
 * Adapters: the jobs table itself (local, standalone) and BullMQ on Valkey (federated).
 */
export interface JobQueue {
  readonly kind: 'store' | 'bullmq';
  /** Offers stored jobs to runners (after their rows are committed); a repeated id is ignored. */
  publish(jobs: Array<{ id: string; service: string }>): Promise<void>;
  /** Up to `limit` offered job ids, oldest first. */
  peek(limit: number): Promise<string[]>;
  /** Stops offering a job: it was claimed, delegated, failed or deleted. */
  remove(ids: string[]): Promise<void>;
  /** Calls `cb` when jobs are published, by any instance; returns an unsubscribe function. */
  subscribe(cb: () => void): () => void;
  /** Jobs offered now (for status and tests). */
  size(): Promise<number>;
  close(): Promise<void>;
}

/** What a full-text search ranks, each part limited to rows the caller may see (decided
 * before the store is asked: the store ranks, it never widens). */
export interface TextSearch {
  q: string;
  /** Service names whose name, image and script are ranked. */
  services?: string[];
  /** Jobs whose logs are ranked: every job of `all`, and the jobs `owner` submitted to `own`. */
  logs?: { all: string[]; own: string[]; owner: string };
  /** Bucket names. */
  buckets?: string[];
  limit: number;
  offset: number;
}

export interface TextHit {
  resource: 'services' | 'logs' | 'buckets';
  /** Service name, job id or bucket name. */
  key: string;
  rank: number;
}

export interface SearchStore {
  /** PostgreSQL full-text (websearch_to_tsquery, ts_rank): best first, ties by resource and key. */
  searchText(s: TextSearch): Promise<TextHit[]>;
}

export interface Store
  extends ServiceStore,
    StampedSettingsStore,
    BucketStore,
    JobStore,
    OutboxStore,
    SearchStore {
  readonly kind: 'pglite' | 'postgres';
  /** Grants, enrollment tokens, issued serials and peers (tables of the same database). */
  readonly trust: TrustStore;
  /** The hash-chained audit trail (hot and cold tables of the same database). */
  readonly audit: AuditStore;
  close(): Promise<void>;
}

// ---------------------------------------------------------------- auth

export interface VerifiedToken {
  sub: string;
  issuer: string;
  /** The raw claims, for group checks. */
  claims: Record<string, unknown>;
}

/** Verifies OIDC bearer tokens against the configured issuers' JWKS. */
export interface TokenVerifier {
  readonly issuers: readonly string[];
  /** Returns the identity, or undefined when the token is not valid for any issuer. */
  verify(token: string): Promise<VerifiedToken | undefined>;
}

// ---------------------------------------------------------------- credentials

/** Seals secrets kept at rest (refresh tokens, storage tokens of delegated jobs). */
export interface SecretBox {
  seal(plain: string): string;
  /** Throws FlotillaError INTERNAL, echoing neither input nor key, for a value sealed under
   * another key or altered. */
  open(sealed: string): string;
}

/** A service owner's refresh token and the client that may exchange it at its issuer. */
export interface RefreshGrant {
  issuer: string;
  clientId: string;
  clientSecret: string;
  refreshToken: string;
  /** RFC 8707 resource indicator: which audience the access token is for. */
  resource?: string;
  /** Narrower scope for the access token (default: the refresh token's). */
  scope?: string;
}

export interface AccessToken {
  accessToken: string;
  expiresAt: Date;
}

/**
 * Access tokens minted at an OIDC issuer from refresh tokens, reused while fresh; callers
 * asking at once for one grant share one exchange. A failed exchange rejects with a
 * FlotillaError carrying `retryable`: false when the issuer refused the grant for good
 * (invalid_grant, invalid_client …), true when it could not be reached. Neither the refresh
 * token nor the client secret is ever part of an error.
 */
export interface AccessTokenSource {
  getAccessToken(
    grant: RefreshGrant,
    opts?: {
      /** Receives the new refresh token when the issuer rotated it (store it in place of the
       * old one); awaited, its error passed on. */
      onRefreshTokenRotated?: (refreshToken: string) => void | Promise<void>;
    },
  ): Promise<AccessToken>;
}

// ---------------------------------------------------------------- executor

export interface ExecutionInput {
  /** File name placed in TMP_INPUT_DIR. */
  fileName: string;
  /** Bytes, or a stream of them (an object download). */
  body: Uint8Array | AsyncIterable<Uint8Array>;
}

export interface ExecutionRequest {
  jobId: string;
  serviceName: string;
  script: string;
  /** The raw event as text (EVENT). */
  event: string;
  /** Service variables and secrets (refresh_token already removed); the executor adds the faas-supervisor ones. */
  env: Record<string, string>;
  input?: ExecutionInput;
  /** Extra environment describing the input (STORAGE_OBJECT_KEY ...). */
  extraEnv?: Record<string, string>;
  timeoutMs: number;
  /** The service's declared cpu (millicores) and memory (bytes): the executor enforces them. */
  cpuMillis: number;
  memoryBytes: number;
  signal?: AbortSignal;
  /** Called with log text as it is produced (for `logs --follow`). */
  onLog?: (chunk: string) => void;
  /**
   * A stored job the runner runs again after a restart: an executor that re-attaches leaves it
   * running when closed. Others (synchronous runs) are cancelled on close.
   */
  resumable?: boolean;
}

/**
 * One file the script left in TMP_OUTPUT_DIR. The executor owns that dir: the use cases read
 * an output only through open(), never by a path, and the executor refuses to open anything
 * that is not (or no longer) a regular file inside it (a symlink, a swapped directory).
 */
export interface ExecutionOutput {
  /** Path relative to TMP_OUTPUT_DIR, with "/" separators. */
  relPath: string;
  size: number;
  /** The file's mtime and st_mode, as the zip of a synchronous run records them. */
  modifiedAt: Date;
  mode: number;
  /** The file's bytes (what ObjectStore.putObject takes); rejects when it is no longer the file listed. Valid until dispose(). */
  open(): Promise<Readable>;
}

export interface ExecutionResult {
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  cancelled: boolean;
  stdout: string;
  stderr: string;
  /** true when stdout or stderr went over the capture limit and were cut. */
  truncated: boolean;
  outputs: ExecutionOutput[];
  durationMs: number;
  /**
   * The executor was closed while the job still ran where it runs (an executor that can
   * re-attach): how it ends is not known here; the job stays Running for the next start.
   */
  detached?: boolean;
  /** Removes the work dir; call after the outputs are uploaded. */
  dispose(): Promise<void>;
}

export interface Executor {
  readonly kind: string;
  /** How scripts are isolated, e.g. "bubblewrap", "separate-user", "none". Shown in /system/info. */
  readonly isolation: string;
  /**
   * Whether a job interrupted by a manager restart keeps running where it runs, so running it
   * again with the same id attaches to that work instead of starting it a second time (the
   * runner then re-runs such jobs rather than failing them, and does not cancel them on stop).
   */
  readonly reattach?: boolean;
  run(req: ExecutionRequest): Promise<ExecutionResult>;
  close(): Promise<void>;
  /** Long-running workloads of exposed services (FDL `expose`); absent: this executor has none. */
  readonly exposed?: ExposedServices;
  /**
   * Removes the place the executor made for `service`'s owner (Kubernetes: the per-user
   * namespace of isolation_level USER) when none of `others` (every other service stored;
   * after an update, its new definition) lives there: only one the executor made itself ('foreign'
   * when one of that name is someone else's, left alone). Absent: nothing of the kind.
   */
  releaseNamespace?(
    service: { name: string; owner?: unknown; isolation_level?: unknown },
    others: ReadonlyArray<{ name: string; owner?: unknown; isolation_level?: unknown }>,
  ): Promise<'deleted' | 'kept' | 'foreign'>;
}

/** OSCAR's types.ServiceDeploymentStatus. */
export interface DeploymentStatus {
  service_name: string;
  namespace?: string;
  state: 'pending' | 'ready' | 'degraded' | 'failed' | 'stopped' | 'unavailable';
  reason?: string;
  last_transition_time?: string;
  active_instances: number;
  affected_instances: number;
  resource_kind: 'exposed_service' | 'unavailable';
}

/** OSCAR's types.DeploymentLogStream. */
export interface DeploymentLogs {
  service_name: string;
  available: boolean;
  message?: string;
  entries: Array<{ timestamp?: string; message: string }>;
}

/** Exposed services' workloads where the executor runs them (Kubernetes: Deployment, Service, Ingress, HPA). */
export interface ExposedServices {
  /** Where the service's workload lives (its namespace). */
  namespaceOf(service: Service): string;
  /**
   * Creates or updates the workload of `service` (checked first: a bad `expose` block is a
   * 400 before anything is sent; an object of that name it did not make for this service is a
   * 409, never replaced; when a step fails, what this call created is deleted again); removes
   * the one of `previous` when `service` is no longer exposed or moved namespace.
   */
  apply(service: Service, previous?: Service): Promise<void>;
  /** Removes every object of the service's workload; absent ones are fine. */
  remove(service: Service): Promise<void>;
  status(service: Service): Promise<DeploymentStatus>;
  logs(service: Service, opts: { tailLines: number; timestamps: boolean }): Promise<DeploymentLogs>;
  /** OSCAR's stop (replicas 0, HPA removed), start (previous replicas back, HPA) and restart (rolling). */
  lifecycle(service: Service, action: 'start' | 'stop' | 'restart'): Promise<DeploymentStatus>;
}

// ---------------------------------------------------------------- object storage

export interface StorageCredentials {
  endpoint: string;
  verify: boolean;
  access_key: string;
  secret_key: string;
  region: string;
}

export interface ObjectInfo {
  key: string;
  size: number;
  lastModified: Date;
}

export interface ObjectStore {
  readonly credentials: StorageCredentials;
  ensureBucket(bucket: string): Promise<void>;
  bucketExists(bucket: string): Promise<boolean>;
  /** Removes the bucket and, when force, every object in it. */
  deleteBucket(bucket: string, opts: { force: boolean }): Promise<void>;
  listBuckets(): Promise<{ name: string; createdAt: Date | null }[]>;
  listObjects(
    bucket: string,
    opts: { prefix?: string; cursor?: string | null; limit?: number },
  ): Promise<{ objects: ObjectInfo[]; next: string | null }>;
  putObject(
    bucket: string,
    key: string,
    body: Uint8Array | AsyncIterable<Uint8Array>,
    size?: number,
  ): Promise<void>;
  /** Throws FlotillaError OBJECT_NOT_FOUND when absent. */
  getObject(bucket: string, key: string): Promise<AsyncIterable<Uint8Array>>;
  headObject(bucket: string, key: string): Promise<ObjectInfo | undefined>;
  deleteObject(bucket: string, key: string): Promise<void>;
  presign(bucket: string, key: string, op: 'upload' | 'download', expiresInSeconds: number): Promise<string>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------- peers

/** How to reach another cluster. `auth` is opaque to use cases: a peer certificate (mTLS,
 * the endpoint is then the peer channel), an OIDC token, or Basic credentials from a
 * service's `clusters` map. */
export interface PeerTarget {
  clusterId: string;
  endpoint: string;
  sslVerify: boolean;
  auth:
    | { kind: 'basic'; user: string; password: string }
    | { kind: 'bearer'; token: string }
    /** Kept in durable rows: minted from the service owner's refresh token when used. */
    | { kind: 'service-owner'; service: string }
    /** Over the peer channel (mTLS) with this peer record's certificate, as its grant's subject
     * (DESIGN §6). Only the record's name: its key is opened at send time, never stored here. */
    | { kind: 'peer'; peer: string }
    | { kind: 'none' };
  /** A coordinator's calls that create, change or delete its worker there prove it with this. */
  worker?: WorkerProof;
}

/** Calls to another cluster's manager, at fixed OSCAR paths under its endpoint. A call that
 * reached (or tried to reach) the peer fails with a PeerCallError (core/peer-failure.ts):
 * a FlotillaError without credentials and without the peer's answer body — PEER_UNREACHABLE
 * (network, timeout, 5xx, an address --peer-allow refuses, an answer not of the expected
 * shape, and a client certificate refused in the TLS handshake: the peer closes without an
 * answer), UNAUTHORIZED/FORBIDDEN (credentials the peer answered a refusal to), or the remote's
 * own 4xx code — whose
 * `failure` classifies it (refused, unreachable, conflict, not_found, unexpected).
 * Answers are only the parsed fields of the expected shape. */
export interface PeerClient {
  /** Reachable and accepting these credentials. */
  checkAccess(t: PeerTarget, signal?: AbortSignal): Promise<void>;
  getService(t: PeerTarget, name: string, signal?: AbortSignal): Promise<Record<string, unknown> | undefined>;
  createService(t: PeerTarget, definition: Record<string, unknown>, signal?: AbortSignal): Promise<void>;
  updateService(t: PeerTarget, definition: Record<string, unknown>, signal?: AbortSignal): Promise<void>;
  /** false when it was not there (404). */
  deleteService(t: PeerTarget, name: string, signal?: AbortSignal): Promise<boolean>;
  getFederation(
    t: PeerTarget,
    name: string,
    signal?: AbortSignal,
  ): Promise<Record<string, unknown> | undefined>;
  status(t: PeerTarget, signal?: AbortSignal): Promise<Record<string, any>>;
  /** A job's status (and log so far) on that cluster; undefined when it does not know the job. */
  jobStatus(
    t: PeerTarget,
    service: string,
    jobId: string,
    signal?: AbortSignal,
  ): Promise<{ status: string; log: string } | undefined>;
  /** Re-sends an event to an `endpoint` replica (HTTP POST); resolves to the HTTP status. */
  postEvent(
    url: string,
    body: Uint8Array,
    headers: Record<string, string>,
    sslVerify: boolean,
    signal?: AbortSignal,
  ): Promise<number>;
  /** The storage keys that cluster hands this caller (GET /system/config). */
  storageConfig(t: PeerTarget, signal?: AbortSignal): Promise<StorageCredentials>;
  /** `held`: the receiver holds the job until it is confirmed (X-Delegation-Hold, ADR 13). */
  submitJob(
    t: PeerTarget,
    service: string,
    body: Uint8Array,
    headers: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<{ job_id: string; held?: boolean }>;
  /**
   * Confirms a held hand-over (idempotent). Rejects with DELEGATION_DROPPED when the hold was
   * abandoned or expired, NOT_FOUND when the receiver knows no such job of this caller.
   */
  confirmJob(
    t: PeerTarget,
    service: string,
    delegatedId: string,
    headers: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<void>;
  /**
   * Abandons a hand-over: a held job is dropped, an unknown id remembered as dropped.
   * 'absent': the receiver has no such route (no hold support). Rejects with
   * DELEGATION_CONFIRMED when it had been confirmed there.
   */
  abandonJob(
    t: PeerTarget,
    service: string,
    delegatedId: string,
    headers: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<'abandoned' | 'absent'>;
}

// ---------------------------------------------------------------- leader election

export type DemotionReason = 'lost' | 'stopped';

/**
 * One candidate for running the loops that must run once per cluster (outbox, status
 * polling, rescheduler …). Of the candidates sharing a lock at most one leads at a time, and
 * another takes over when the leader stops or its lock is lost. The composition root gives
 * each candidate its callbacks: onElected when it starts to lead, onDemoted(reason) when
 * that ends ('lost': the lock went away under it; 'stopped': stop()). onDemoted is awaited
 * before the lock is freed, so the loops stop before another instance starts them. A
 * callback that throws is reported through onError; the election goes on.
 */
export interface LeaderElection {
  /** Starts campaigning; resolves once the first attempt is over (isLeader tells the result). */
  start(): Promise<void>;
  /** Stops campaigning; a leader is demoted ('stopped') first, then its lock is freed. */
  stop(): Promise<void>;
  readonly isLeader: boolean;
}

// ---------------------------------------------------------------- tier probes

/** Why a service did not answer, for the caller to word (it names service, host and port). */
export type ReachFailure =
  /** `problem` in words: "connection refused: nothing listens on that port", "no answer within 5.0 s" … */
  | { kind: 'network'; problem: string }
  /** The TLS handshake failed: the certificate was not accepted, or the server speaks no TLS. */
  | { kind: 'tls-rejected'; code: string };

export interface PostgresServerFacts {
  /** server_version_num, e.g. 150004. */
  versionNum: number;
  /** server_version as the server states it, e.g. "15.4 (Debian 15.4-1)". */
  version: string;
  user: string;
  database: string;
  /** CREATE on schema public. */
  canCreateTables: boolean;
  /** CREATE on the database (for the migrations' own schema). */
  canCreateSchema: boolean;
  /** The schema's tables exist (migrated before). */
  migrated: boolean;
  /** The migrations' own schema exists. */
  hasMigrationSchema: boolean;
}

export type PostgresObservation =
  | { reached: true; latencyMs: number; server: PostgresServerFacts }
  | {
      reached: false;
      failure:
        | ReachFailure
        | { kind: 'login-refused'; reason: 'wrong-password' | 'not-admitted' }
        | { kind: 'no-such-database' }
        | { kind: 'too-many-connections' }
        | { kind: 'starting-up' }
        | { kind: 'tls-not-supported' };
    };

export type ValkeyObservation =
  | { reached: false; failure: ReachFailure }
  | {
      reached: true;
      latencyMs: number;
      /** The answer to AUTH, sent when the URL has a password. */
      auth: 'not-sent' | 'accepted' | 'not-needed' | { refused: string };
      /** The answer to SELECT, sent when the URL names a database other than 0. */
      database: 'default' | 'selected' | 'unavailable';
      ping: 'pong' | 'needs-auth' | 'unexpected' | { error: string };
      /** "Valkey 8.0.1", "Redis 7.2.4"; undefined when INFO did not say. */
      product: string | undefined;
      maxmemoryPolicy: string | undefined;
    };

export type S3Observation =
  | { reached: true; latencyMs: number; status: number }
  | { reached: false; failure: ReachFailure };

export type DataDirState =
  | { state: 'stat-failed'; error: string }
  /** Not there yet; `parent` is the nearest directory that exists. */
  | { state: 'absent'; parent: string; parentWritable: boolean }
  | { state: 'not-a-directory' }
  /** Not readable, writable and searchable by this process's user. */
  | { state: 'no-access'; uid: number | undefined }
  /** `mode`: the permission bits; `freeBytes` undefined where the file system does not say. */
  | { state: 'usable'; mode: number; freeBytes: number | undefined }
  | { state: 'timed-out'; problem: string };

/** `path`: the data dir made absolute. */
export type DataDirObservation = { path: string; latencyMs: number } & DataDirState;

/**
 * What the tier detector asks of the services a tier needs. Each call answers within
 * `timeoutMs`; no answer is a failure it describes, never a rejection. URLs are given as
 * configured (the detector has checked that they parse); texts from servers and the OS
 * are passed on as they are, and the detector redacts them. Adapter: src/adapters/tier-probes.
 */
export interface TierProbes {
  postgres(url: string, opts: { timeoutMs: number }): Promise<PostgresObservation>;
  valkey(url: string, opts: { timeoutMs: number }): Promise<ValkeyObservation>;
  /** An unauthenticated GET: any HTTP answer means reachable. */
  s3(endpoint: string, opts: { timeoutMs: number }): Promise<S3Observation>;
  dataDir(path: string, opts: { timeoutMs: number }): Promise<DataDirObservation>;
}

// ---------------------------------------------------------------- tier migration

/** Rows per table, by name; null when the table does not exist (a database never migrated). */
export type RowCounts = Record<string, number | null>;

export interface TableCopyProgress {
  table: string;
  copied: number;
  total: number;
  done: boolean;
}

/** The lock a copy holds on its target, so two runs never write into one database at once. */
export interface CopyLock {
  /** true once the lock went away under its holder (its session was cut). */
  readonly isLost: boolean;
  release(): Promise<void>;
}

/** Who holds a target's copy lock, as far as the server tells. */
export interface CopyLockHolder {
  pid: number;
  clientAddr: string | null;
  backendStart: Date | null;
}

/** Why a database could not be opened for a copy. */
export type OpenFailure =
  /** The connection failed; `error` as the driver put it (may name the URL: redact it). */
  | { reason: 'unreachable'; error: string }
  /** There is no database where the source should be. */
  | { reason: 'absent' }
  /** Another process has it open; `evidence` names what shows it (a lock file). */
  | { reason: 'in-use'; evidence: string };

export interface CopyTarget {
  countRows(): Promise<RowCounts>;
  /** Takes the copy lock, or says who holds it (undefined when the server does not say). */
  lock(): Promise<{ lock: CopyLock } | { heldBy: CopyLockHolder | undefined }>;
  /** Creates the schema or brings it up to date. */
  migrateSchema(): Promise<void>;
  close(): Promise<void>;
}

export interface CopySource {
  countRows(): Promise<RowCounts>;
  /**
   * Copies every table into the target, upserting by primary key (a re-run is safe), every
   * value exactly (bytes, big integers, timestamps, JSON). The source is read in one
   * snapshot, the target written in one transaction: a failure, or `beforeCommit` throwing,
   * leaves the target as it was. Resolves to the rows read per table.
   */
  copyInto(
    target: CopyTarget,
    opts: { onProgress?: (p: TableCopyProgress) => void; beforeCommit?: () => void | Promise<void> },
  ): Promise<Record<string, number>>;
  close(): Promise<void>;
}

/**
 * All state of a manager, copied one way from the configured store into a PostgreSQL
 * (`flotilla storage migrate-tier`). Adapter: src/adapters/tier-copy (PGlite or PostgreSQL
 * as the source).
 */
export interface StateCopier {
  /** The tables, in copy order. */
  readonly tables: readonly string[];
  /** The configured source: its kind, and where it is (a path, or a URL without user info). */
  readonly source: { kind: 'pglite' | 'postgres'; where: string };
  /** Opens the source; with migrateSchema its schema is brought up to date first. */
  openSource(opts: { migrateSchema: boolean }): Promise<{ source: CopySource } | OpenFailure>;
  openTarget(url: string): Promise<{ target: CopyTarget } | OpenFailure>;
}

// ---------------------------------------------------------------- time and ids

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

// ---------------------------------------------------------------- metrics

/** What use cases report as it happens, for /metrics (the adapter keeps the numbers). */
export interface MetricsSink {
  /** A job that ran here ended; seconds from its start to its end. */
  jobFinished(status: 'Succeeded' | 'Failed', seconds: number): void;
  /** A job claimed here was sent to another cluster. */
  jobDelegated(toCluster: string): void;
  /** A delegation attempt to a cluster failed (the next candidate is tried). */
  delegationFailed(toCluster: string): void;
  /** Audit rows stored, or dropped (the bounded queue was full, or the store refused them). */
  auditRows(outcome: 'written' | 'dropped', n: number): void;
  /** A peer's circuit opened: it went offline (once per transition). */
  peerOffline(peer: string): void;
  /** A peer's circuit closed again. */
  peerOnline(peer: string): void;
}

// ---------------------------------------------------------------- logging

/** Structured log lines (pino fits it). Parts take the levels they use with Pick<>. */
export interface Log {
  debug(obj: Record<string, unknown>, msg: string): void;
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
}
