// Helpers for the delegation end-to-end tests: clusters with their own capacity flags,
// a service script that says where it ran and writes one output named after the job's
// marker, submitting marked jobs, waiting for them, and counting on every cluster how many
// times a marked job actually ran.
import { randomUUID } from 'node:crypto';
import { type FlotillaClient, type JobInfo, jobsApi } from '../../client/api-client.ts';
import { type ClusterProcess, type ClusterSpec, type Harness, startClusters } from './cluster-harness.ts';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts the clusters at most `parallel` at a time (PGlite initdbs starve each other on a
 * small machine). With keepLogs the data dirs and log files outlive close() until
 * `removeLogs` is called (tests that grep the logs after the managers stop).
 */
export const startDelegationClusters = (
  specs: readonly ClusterSpec[],
  opts: { adminPassword?: string; parallel?: number; startTimeoutMs?: number } = {},
): Promise<Harness> =>
  startClusters(specs, {
    adminPassword: opts.adminPassword ?? 'pw',
    parallel: opts.parallel ?? 2,
    startTimeoutMs: opts.startTimeoutMs ?? 150_000,
    prefix: 'flotilla-dlg-e2e-',
  });

/**
 * The service script: prints the job's marker (the first line of the input) and where it
 * ran, sleeps when the marker asks ("long" 600 s, "slow" 4 s), and writes one output file
 * named after the marker, saying which replica made it.
 */
export const MARKER_SCRIPT = `#!/bin/sh
marker=$(head -n 1 "$INPUT_FILE_PATH" | tr -cd 'A-Za-z0-9._-')
echo "marker=$marker ran-on=$OSCAR_SERVICE_NAME"
case "$marker" in
  *long*) sleep 600 ;;
  *slow*) sleep 4 ;;
esac
echo "$marker processed by $OSCAR_SERVICE_NAME" > "$TMP_OUTPUT_DIR/$marker.txt"
echo "done $marker"
`;

/** A unique marker; `kind` ("long", "slow", "quick") picks the script's duration. */
export const newMarker = (kind: 'long' | 'slow' | 'quick' = 'quick', tag = 'm'): string =>
  `${tag}-${kind}-${randomUUID().slice(0, 8)}`;

/** The job body as OSCAR clients send it: the input file, base64. */
export const markerBody = (marker: string): string => Buffer.from(`${marker}\n`).toString('base64');

export interface Submitted {
  marker: string;
  jobId: string;
  delegatedTo: string | null;
}

export const submitMarked = async (
  client: FlotillaClient,
  service: string,
  marker: string,
  token?: string,
): Promise<Submitted> => {
  const res = await jobsApi(client).submit(service, markerBody(marker), token);
  return { marker, jobId: res.job_id, delegatedTo: res.delegated_to };
};

/** Every job of a service on a cluster (all pages). */
export const allJobs = async (client: FlotillaClient, service: string): Promise<Record<string, JobInfo>> => {
  const api = jobsApi(client);
  const out: Record<string, JobInfo> = {};
  let page: string | undefined;
  do {
    const res = await api.list(service, page);
    Object.assign(out, res.jobs);
    page = res.next_page || undefined;
  } while (page);
  return out;
};

const TERMINAL = new Set(['Succeeded', 'Failed']);

/** Waits until every listed job of the service has ended; returns the final listing. */
export const waitJobsEnded = async (
  client: FlotillaClient,
  service: string,
  jobIds: readonly string[],
  timeoutMs = 60_000,
): Promise<Record<string, JobInfo>> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const jobs = await allJobs(client, service);
    const open = jobIds.filter((id) => !TERMINAL.has(jobs[id]?.status ?? ''));
    if (open.length === 0) return jobs;
    if (Date.now() > deadline) {
      throw new Error(
        `jobs of ${service} still open after ${timeoutMs} ms: ${open
          .map((id) => `${id}=${jobs[id]?.status ?? 'missing'}@${jobs[id]?.delegated_to ?? 'local'}`)
          .join(', ')}`,
      );
    }
    await sleep(300);
  }
};

/**
 * The jobs of `service` on `cluster` that ran the marked input (their log carries the
 * script's "marker=<marker>" line): how many times it really ran there. Jobs this cluster
 * delegated elsewhere are not counted (their log is the remote one).
 */
export const runsOf = async (
  cluster: ClusterProcess,
  service: string,
  marker: string,
): Promise<Array<{ id: string; info: JobInfo; log: string }>> => {
  const api = jobsApi(cluster.client);
  let jobs: Record<string, JobInfo>;
  try {
    jobs = await allJobs(cluster.client, service);
  } catch (e) {
    if ((e as { status?: number }).status === 404) return [];
    throw e;
  }
  const out: Array<{ id: string; info: JobInfo; log: string }> = [];
  for (const [id, info] of Object.entries(jobs)) {
    if (info.delegated_to) continue;
    const { text } = await api.log(service, id);
    if (text.includes(`marker=${marker} `)) out.push({ id, info, log: text });
  }
  return out;
};

/** The status cache polls every 2 s ± 20 %: after this long every replica was polled again. */
export const CACHE_ROUND_MS = 2_600;

/**
 * Waits until the origin's status cache has polled every named member of a federated service
 * and holds it online (GET /system/federation shows its `status`): a fixed sleep is not
 * enough on a loaded machine, where a first poll can time out.
 */
export const waitCacheOnline = async (
  client: FlotillaClient,
  service: string,
  clusterIds: readonly string[],
  timeoutMs = 60_000,
): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const view = await client.request<{
      members: Array<{ cluster_id?: string; status?: { online: boolean } }>;
    }>('GET', `/system/federation/${service}`);
    const offline = clusterIds.filter(
      (id) => !view.members?.some((m) => m.cluster_id === id && m.status?.online === true),
    );
    if (offline.length === 0) return;
    if (Date.now() > deadline) {
      throw new Error(
        `the status cache of ${service} has not seen ${offline.join(', ')} online after ${timeoutMs} ms`,
      );
    }
    await sleep(200);
  }
};
