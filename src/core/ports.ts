// Ports: what the use cases need from the outside world. Adapters in src/adapters
// implement them; every port has one contract suite in test/contract run against each.
import type { Service } from './fdl/service.ts';

// ---------------------------------------------------------------- store

export interface ServiceStore {
  /** Inserts; throws FlotillaError SERVICE_EXISTS when the name is taken. */
  createService(service: Service): Promise<void>;
  /** Replaces; throws FlotillaError SERVICE_NOT_FOUND when absent. */
  updateService(service: Service): Promise<void>;
  getService(name: string): Promise<Service | undefined>;
  listServices(): Promise<Service[]>;
  /** true when a row was removed. */
  deleteService(name: string): Promise<boolean>;
}

export interface SettingsStore {
  getSetting(key: string): Promise<string | undefined>;
  setSetting(key: string, value: string): Promise<void>;
  /** Sets only when absent; returns the value now stored (first writer wins). */
  setSettingIfAbsent(key: string, value: string): Promise<string>;
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
}

/** A job without its event and log: what scheduling reads (the bytes stay in the store). */
export type JobSummary = Omit<JobRecord, 'event' | 'log'>;

export type NewJob = Pick<JobRecord, 'id' | 'service' | 'event' | 'owner' | 'cpuMillis' | 'memoryBytes'> &
  Partial<
    Pick<JobRecord, 'delegatedId' | 'delegatedTo' | 'status' | 'createdAt' | 'originCluster' | 'originToken'>
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
  listJobs(service: string, opts: { cursor?: string | null; limit: number }): Promise<JobPage>;
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
  /** Records that a claimed job went to another cluster; it mirrors the remote status from now on. */
  markDelegated(id: string, clusterId: string, remoteJobId: string): Promise<void>;
  /** Delegated jobs whose remote status is not final yet. */
  delegatedActiveJobs(limit: number): Promise<JobRecord[]>;
  mirrorDelegated(id: string, state: MirroredState): Promise<void>;
  /** Jobs left Running by a previous process: marked Failed with the reason; returns their ids. */
  failRunningJobs(reason: string, at: Date, runner?: string): Promise<string[]>;
  /** Replica ids that hold Running jobs now. */
  runnersWithRunningJobs(): Promise<string[]>;
  /** Jobs by id (missing ids are left out). */
  getJobs(ids: string[]): Promise<JobSummary[]>;
  deleteJob(id: string): Promise<boolean>;
  /** Deletes the service's finished jobs, or every job with all=true; returns the count. */
  deleteJobs(service: string, opts: { all: boolean }): Promise<number>;
  countJobs(): Promise<Record<JobStatus, number>>;
}

// ---------------------------------------------------------------- outbox

export type OutboxOp = 'upsert' | 'delete';

/** One remote change, durable until the peer has it. Rows carry full state, so the latest
 * row for a (peer, service) supersedes earlier ones. */
export interface OutboxRow {
  id: number;
  peer: string;
  service: string;
  op: OutboxOp;
  /** The full definition for an upsert. */
  payload: Record<string, unknown> | null;
  target: PeerTarget;
  /** The coordinator service whose federation this change belongs to. */
  group: string;
  revision: number;
  state: 'pending' | 'done';
  attempts: number;
  nextAttemptAt: Date;
  lastError: string | null;
  createdAt: Date;
  doneAt: Date | null;
}

export type NewOutboxRow = Pick<
  OutboxRow,
  'peer' | 'service' | 'op' | 'payload' | 'target' | 'group' | 'revision'
>;

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
  /** true when a later pending row targets the same (peer, service). */
  hasLaterRow(row: Pick<OutboxRow, 'id' | 'peer' | 'service'>): Promise<boolean>;
  markOutboxDone(id: number, at: Date): Promise<void>;
  markOutboxRetry(id: number, error: string, nextAttemptAt: Date): Promise<void>;
  /** Every row of a federation group, newest first, for sync states. */
  outboxOfGroup(group: string): Promise<OutboxRow[]>;
  pendingOutboxCount(): Promise<number>;
  /** Drops done rows older than `before`, keeping the latest per (peer, service). */
  pruneOutbox(before: Date): Promise<number>;
}

// ---------------------------------------------------------------- queue

/**
 * The order in which stored jobs are offered to runners, shared by every replica. The store
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
  /** Calls `cb` when jobs are published, by any replica; returns an unsubscribe function. */
  subscribe(cb: () => void): () => void;
  /** Jobs offered now (for status and tests). */
  size(): Promise<number>;
  close(): Promise<void>;
}

export interface Store extends ServiceStore, SettingsStore, JobStore, OutboxStore {
  readonly kind: 'pglite' | 'postgres';
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
}

export interface ExecutionOutput {
  /** Path relative to TMP_OUTPUT_DIR, with "/" separators. */
  relPath: string;
  absPath: string;
  size: number;
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
  /** Removes the work dir; call after the outputs are uploaded. */
  dispose(): Promise<void>;
}

export interface Executor {
  readonly kind: string;
  /** How scripts are isolated, e.g. "bubblewrap", "separate-user", "none". Shown in /system/info. */
  readonly isolation: string;
  run(req: ExecutionRequest): Promise<ExecutionResult>;
  close(): Promise<void>;
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

/** How to reach another cluster. `auth` is opaque to use cases: today Basic credentials
 * from a service's `clusters` map; later a peer certificate (mTLS) or an OIDC token. */
export interface PeerTarget {
  clusterId: string;
  endpoint: string;
  sslVerify: boolean;
  auth:
    | { kind: 'basic'; user: string; password: string }
    | { kind: 'bearer'; token: string }
    /** Kept in durable rows: minted from the service owner's refresh token when used. */
    | { kind: 'service-owner'; service: string }
    | { kind: 'none' };
}

/** Calls to another cluster's manager. Errors are FlotillaErrors without credentials:
 * PEER_UNREACHABLE (network, timeout, 5xx), UNAUTHORIZED/FORBIDDEN (refused credentials),
 * or the remote's own 4xx code. */
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
  submitJob(
    t: PeerTarget,
    service: string,
    body: Uint8Array,
    headers: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<{ job_id: string }>;
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
}

// ---------------------------------------------------------------- logging

/** Structured log lines (pino fits it). Parts take the levels they use with Pick<>. */
export interface Log {
  debug(obj: Record<string, unknown>, msg: string): void;
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
}
