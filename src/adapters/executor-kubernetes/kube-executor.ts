// The Kubernetes Executor (DESIGN.md §3.3): one batch/v1 Job per invocation, built by
// objects.ts; status from one pod watch per namespace (never a poll per job), re-listed after
// a dropped watch or a 410; logs from the pod; cancel and timeout delete the Job (Background,
// so its pod goes too); the ConfigMap and Secret are removed when the job ends. Closing the
// executor (a manager shutting down) leaves running Jobs in the cluster: the next run of the
// same job id re-attaches to its Job (`reattach`).
//
// Storage: inside the pod faas-supervisor stages inputs and uploads outputs itself, as in
// OSCAR, from the EVENT it is given and the storage_providers of its function_config.yaml
// (in a Secret: see objects.ts). The keys come from `storageFor`: this cluster's store with keys
// scoped to the service's inputs and outputs, never the admin's. So the input the manager hands
// over (req.input) is not shipped into the pod, and the result lists no outputs: the manager has nothing to upload and
// `/run` answers with the log. The pod's log is stdout and stderr interleaved (the container
// runtime keeps one stream), so the result carries it all as stdout.
import { Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import {
  BatchV1Api,
  CoreV1Api,
  type KubeConfig,
  Log,
  Metrics,
  type V1Namespace,
  type V1Pod,
  VersionApi,
  Watch,
} from '@kubernetes/client-node';
import PQueue from 'p-queue';
import type { NodeState } from '../../core/capacity.ts';
import { fail } from '../../core/errors.ts';
import type { ExecutionRequest, ExecutionResult, Executor, ExposedServices } from '../../core/ports.ts';
import { clusterCapacity, type NodeUsage } from './capacity.ts';
import { createExposedServices } from './exposed.ts';
import { withKeepAlive } from './keep-alive.ts';
import { userNamespace, wantsUserNamespace } from './namespaces.ts';
import {
  buildJobObjects,
  CONTAINER_NAME,
  JOB_LABEL,
  kubeJobName,
  MANAGED_BY_LABEL,
  type SupervisorImage,
} from './objects.ts';

/** What the executor needs of the service beyond the request: its image and pod settings. */
export interface KubeServiceSpec {
  image?: string;
  cpu?: string;
  memory?: string;
  log_level?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  input?: unknown[];
  output?: unknown[];
  /** Its owner and isolation_level: USER runs its jobs in the owner's namespace. */
  owner?: string;
  isolation_level?: string;
  /** The service's own providers (FDL storage_providers); minio.default is this cluster's. */
  storage_providers?: Record<string, Record<string, Record<string, unknown>> | undefined>;
}

/** This cluster's store as the supervisor sees it (OSCAR's MinIOProvider fields). */
export interface JobStorageKeys {
  endpoint: string;
  verify: boolean;
  access_key: string;
  secret_key: string;
  region: string;
}

export interface ExecutorLogger {
  warn(obj: object, msg?: string): void;
  info?(obj: object, msg?: string): void;
}

export interface KubernetesExecutorOptions {
  kubeConfig: KubeConfig;
  /** Where jobs run (the services namespace). */
  namespace: string;
  /** The service's image and settings; ExecutionRequest carries only its name. */
  resolveService: (name: string) => Promise<KubeServiceSpec | undefined>;
  supervisor?: SupervisorImage;
  /**
   * Keys for this cluster's store ("minio.default") a job of the service gets: scoped to its
   * inputs (read) and outputs (write). Undefined: the job gets no keys for it.
   */
  storageFor?: (serviceName: string) => Promise<JobStorageKeys | undefined>;
  /** Cap of the log kept per job; the head is kept. Default 1 MiB. */
  maxLogBytes?: number;
  /** Wait before re-opening a dropped watch. Default 200 ms. */
  rewatchDelayMs?: number;
  /** A watch with no event (bookmarks included) for this long is re-opened. Default 5 min. */
  watchIdleMs?: number;
  /**
   * Pod logs followed live at once (one connection each); jobs beyond it hand their log over
   * when they end. Default 64.
   */
  maxLiveLogs?: number;
  /**
   * API calls in flight at most (the rest wait their turn; watches and log follows not counted).
   * Default 64. Without a limit a burst of jobs opens one connection per call — thousands at
   * once — overflowing the API server's accept queue (seconds of SYN retransmits) and leaving
   * idle keep-alive sockets the server closes under the next request (ECONNRESET).
   */
  maxInFlight?: number;
  /** Host of exposed services' Ingress rules (OSCAR's INGRESS_HOST); none: a host-less rule. */
  ingressHost?: string;
  logger?: ExecutorLogger;
}

export interface KubernetesExecutor extends Executor {
  readonly kind: 'kubernetes';
  readonly isolation: 'kubernetes-pod';
  readonly isolationNote: string;
  readonly reattach: true;
  readonly exposed: ExposedServices;
  releaseNamespace: NonNullable<Executor['releaseNamespace']>;
  /** The cluster's nodes as capacity (allocatable minus other workloads' requests), with
   * measured usage from metrics.k8s.io when the cluster serves it. */
  clusterNodes(): Promise<NodeState[]>;
  /** The API server's gitVersion (GET /version), e.g. "v1.31.2". */
  serverVersion(): Promise<string>;
  /** Watch connections opened and re-lists so far (all namespaces), the last resourceVersion seen
   * in the services namespace, and the namespaces watched (tests, benchmarks). */
  watchStats(): {
    opened: number;
    relists: number;
    /** API calls retried after a dropped connection (ECONNRESET…), this process. */
    retries: number;
    resourceVersion: string | undefined;
    namespaces: string[];
  };
}

type Terminal = { kind: 'exited'; exitCode: number | null; deadline: boolean } | { kind: 'gone' };

interface Waiter {
  namespace: string;
  podName?: string;
  settle: (t: Terminal) => void;
  /** Live log for `logs --follow`: started once the pod runs. */
  follow?: {
    onLog: (chunk: string) => void;
    started: boolean;
    text: string;
    stop?: () => void;
    stopped: boolean;
  };
}

const DEFAULT_MAX_LOG_BYTES = 1024 * 1024;
/** On a user namespace Flotilla made: the services namespace it belongs to. */
export const BASE_LABEL = 'flotilla.grycap/base';

interface NsWatch {
  namespace: string;
  lastRv?: string;
  current?: AbortController;
  started?: Promise<void>;
  retryTimer?: NodeJS.Timeout;
}

export function createKubernetesExecutor(opts: KubernetesExecutorOptions): KubernetesExecutor {
  const { kubeConfig, logger } = opts;
  const base = opts.namespace;
  const maxLogBytes = opts.maxLogBytes ?? DEFAULT_MAX_LOG_BYTES;
  const rewatchDelayMs = opts.rewatchDelayMs ?? 200;
  const watchIdleMs = opts.watchIdleMs ?? 300_000;
  const maxLiveLogs = opts.maxLiveLogs ?? 64;
  let liveLogs = 0;
  const pooled = withKeepAlive(kubeConfig);
  const gate = new PQueue({ concurrency: opts.maxInFlight ?? 64 });
  /** Every API call: through the in-flight limit, a dropped connection retried. */
  const api = <T>(call: () => Promise<T>): Promise<T> => retrying(() => gate.add(call) as Promise<T>);
  const core = pooled.config.makeApiClient(CoreV1Api);
  const batch = pooled.config.makeApiClient(BatchV1Api);
  const watch = new Watch(kubeConfig);
  const logs = new Log(kubeConfig);
  const metrics = new Metrics(pooled.config);
  const version = pooled.config.makeApiClient(VersionApi);
  const waiters = new Map<string, Waiter>();
  const running = new Set<() => Promise<unknown>>();
  let closed = false;
  let opened = 0;
  let relists = 0;
  /** One pod watch per namespace jobs run in (the services namespace, and users' own). */
  const watches = new Map<string, NsWatch>();
  const watchOf = (namespace: string): NsWatch => {
    let w = watches.get(namespace);
    if (!w) {
      w = { namespace };
      watches.set(namespace, w);
    }
    return w;
  };
  const selector = `${MANAGED_BY_LABEL}=flotilla`;

  /** Where a service's jobs and exposed workload live: its owner's namespace under isolation_level USER. */
  const namespaceOf = (s: { owner?: unknown; isolation_level?: unknown }): string =>
    wantsUserNamespace(s) && typeof s.owner === 'string' && s.owner ? userNamespace(base, s.owner) : base;
  const ensured = new Set<string>([base]);
  const ensureNamespace = async (namespace: string) => {
    if (ensured.has(namespace)) return;
    try {
      await api(() =>
        core.createNamespace({
          body: {
            apiVersion: 'v1',
            kind: 'Namespace',
            metadata: {
              name: namespace,
              labels: { [MANAGED_BY_LABEL]: 'flotilla', [BASE_LABEL]: base },
            },
          },
        }),
      );
    } catch (e) {
      if ((e as { code?: number }).code !== 409) {
        throw new Error(`kubernetes executor: cannot create namespace ${namespace}: ${apiMessage(e)}`, {
          cause: e,
        });
      }
      // There already; when it is one we released and still Terminating, not yet usable.
      const there = await api(() => core.readNamespace({ name: namespace })).catch(() => undefined);
      if (there?.status?.phase === 'Terminating')
        fail('UNAVAILABLE', `namespace ${namespace} is being deleted; try again once it is gone`);
    }
    ensured.add(namespace);
  };

  /**
   * Deletes the owner's namespace of `service` when no service in `others` lives there any
   * more — only a namespace Flotilla made for this base (its labels; one of the same name made
   * by someone else is left alone, with a warning), and only the one read (preconditions.uid: a
   * namespace made anew meanwhile is not touched). Its pod watch is closed; a later service of
   * that owner makes it again. UNAVAILABLE (503) when the API cannot be reached or refuses.
   */
  const releaseNamespace = async (
    service: { name: string; owner?: unknown; isolation_level?: unknown },
    others: ReadonlyArray<{ name: string; owner?: unknown; isolation_level?: unknown }>,
  ): Promise<'deleted' | 'kept' | 'foreign'> => {
    const namespace = namespaceOf(service);
    if (namespace === base) return 'kept';
    if (others.some((o) => namespaceOf(o) === namespace)) return 'kept';
    const unavailable = (e: unknown) =>
      fail('UNAVAILABLE', `cannot delete the user namespace ${namespace}: ${apiMessage(e)}`);
    let found: V1Namespace;
    try {
      found = await api(() => core.readNamespace({ name: namespace }));
    } catch (e) {
      if ((e as { code?: number }).code !== 404) return unavailable(e);
      ensured.delete(namespace);
      return 'kept';
    }
    const labels = found.metadata?.labels ?? {};
    if (labels[MANAGED_BY_LABEL] !== 'flotilla' || labels[BASE_LABEL] !== base) {
      logger?.warn({ namespace }, 'user namespace not made by Flotilla: left in place');
      return 'foreign';
    }
    try {
      await api(() =>
        core.deleteNamespace({
          name: namespace,
          body: { preconditions: { uid: found.metadata?.uid } },
        }),
      );
    } catch (e) {
      if ((e as { code?: number }).code !== 404) return unavailable(e);
    }
    ensured.delete(namespace);
    const w = watches.get(namespace);
    if (w) {
      watches.delete(namespace);
      clearTimeout(w.retryTimer);
      w.current?.abort();
    }
    return 'deleted';
  };

  const onPod = (type: string, pod: V1Pod) => {
    const jobId = pod.metadata?.labels?.[JOB_LABEL];
    const w = jobId ? waiters.get(jobId) : undefined;
    if (!w || (pod.metadata?.namespace && pod.metadata.namespace !== w.namespace)) return;
    w.podName = pod.metadata?.name;
    if (type === 'DELETED') return w.settle(terminalOf(pod) ?? { kind: 'gone' });
    const t = terminalOf(pod);
    if (t) return w.settle(t);
    if (w.follow && !w.follow.started && pod.status?.phase === 'Running' && w.podName)
      startFollow(w.follow, w.podName, w.namespace);
  };

  const startFollow = (f: NonNullable<Waiter['follow']>, podName: string, namespace: string) => {
    f.started = true;
    if (liveLogs >= maxLiveLogs) return;
    liveLogs += 1;
    let counted = true;
    const release = () => {
      if (counted) liveLogs -= 1;
      counted = false;
    };
    const decoder = new StringDecoder('utf8');
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        if (!f.stopped) {
          const text = decoder.write(chunk);
          f.text += text;
          if (text) f.onLog(text);
        }
        done();
      },
      final(done) {
        release();
        done();
      },
    });
    logs
      .log(namespace, podName, CONTAINER_NAME, sink, { follow: true, limitBytes: maxLogBytes })
      .then((c) => {
        f.stop = () => {
          release();
          c.abort();
        };
        if (f.stopped) f.stop();
      })
      .catch(release); // the final read delivers what the stream did not
  };

  /** Lists the pods, settles what finished meanwhile, and returns where to watch from. */
  const relist = async ({ namespace }: NsWatch): Promise<string | undefined> => {
    relists += 1;
    const list = await api(() => core.listNamespacedPod({ namespace, labelSelector: selector }));
    const present = new Set<string>();
    for (const pod of list.items) {
      const id = pod.metadata?.labels?.[JOB_LABEL];
      if (id) present.add(id);
      onPod('MODIFIED', pod);
    }
    // A pod seen before and absent now was deleted while the watch was down.
    for (const [id, w] of waiters)
      if (w.namespace === namespace && w.podName && !present.has(id)) w.settle({ kind: 'gone' });
    return list.metadata?.resourceVersion;
  };

  /** Re-opens after a drop: from the last resourceVersion, or after a re-list when it expired. */
  const resume = (nw: NsWatch, expired: boolean, attempt = 1) => {
    nw.retryTimer = setTimeout(
      () => {
        if (closed || watches.get(nw.namespace) !== nw) return; // released meanwhile
        const from = expired ? relist(nw) : Promise.resolve(nw.lastRv);
        from
          .then((rv) => {
            nw.lastRv = rv;
            return openWatch(nw, rv);
          })
          .catch((e) => {
            logger?.warn({ err: apiMessage(e), namespace: nw.namespace }, 'pod re-list failed; retrying');
            resume(nw, true, attempt + 1);
          });
      },
      Math.min(rewatchDelayMs * attempt, 10_000),
    );
  };

  const openWatch = async (nw: NsWatch, from: string | undefined): Promise<void> => {
    if (closed) return;
    const { namespace } = nw;
    opened += 1;
    let expired = false;
    let idle: NodeJS.Timeout | undefined;
    let controller: AbortController | undefined;
    // A connection that went silent (a NAT or proxy dropped it without a reset) is re-opened;
    // the server sends bookmarks well within this interval when nothing changes.
    const touch = () => {
      clearTimeout(idle);
      idle = setTimeout(() => {
        logger?.warn({ namespace, idleMs: watchIdleMs }, 'pod watch silent; re-opening');
        controller?.abort();
      }, watchIdleMs);
      idle.unref();
    };
    touch();
    controller = await watch.watch(
      `/api/v1/namespaces/${namespace}/pods`,
      { labelSelector: selector, resourceVersion: from, allowWatchBookmarks: true },
      (type, obj) => {
        touch();
        if (type === 'ERROR') {
          if (obj?.code === 410) expired = true;
          return;
        }
        if (obj?.metadata?.resourceVersion) nw.lastRv = obj.metadata.resourceVersion;
        if (type !== 'BOOKMARK') onPod(type, obj as V1Pod);
      },
      (err) => {
        clearTimeout(idle);
        if (closed || watches.get(namespace) !== nw) return; // released: stays closed
        if (err && !expired && (err as Error).name !== 'AbortError') {
          logger?.warn({ err: (err as Error).message, namespace }, 'pod watch dropped; re-opening');
        }
        resume(nw, expired);
      },
    );
    nw.current = controller;
  };

  const ensureWatch = (namespace: string) => {
    const nw = watchOf(namespace);
    nw.started ??= relist(nw).then((rv) => {
      nw.lastRv = rv;
      return openWatch(nw, rv);
    });
    return nw.started.catch((e) => {
      nw.started = undefined;
      throw new Error(`kubernetes executor: cannot watch pods in ${namespace}: ${apiMessage(e)}`, {
        cause: e,
      });
    });
  };

  const cleanup = async (jobId: string, objs: ReturnType<typeof buildJobObjects>, namespace: string) => {
    const quiet = (call: () => Promise<unknown>) => api(call).catch(() => undefined);
    await Promise.all([
      quiet(() => batch.deleteNamespacedJob({ name: jobId, namespace, propagationPolicy: 'Background' })),
      quiet(() => core.deleteNamespacedConfigMap({ name: objs.configMap.metadata!.name!, namespace })),
      ...[objs.secret, objs.storageSecret].map((s) =>
        s ? quiet(() => core.deleteNamespacedSecret({ name: s.metadata!.name!, namespace })) : undefined,
      ),
    ]);
  };

  const readLog = async (
    podName: string | undefined,
    namespace: string,
  ): Promise<{ text: string; truncated: boolean }> => {
    if (!podName) return { text: '', truncated: false };
    try {
      const text = await api(() =>
        core.readNamespacedPodLog({
          name: podName,
          namespace,
          container: CONTAINER_NAME,
          limitBytes: maxLogBytes + 1,
        }),
      );
      const bytes = Buffer.from(text ?? '');
      if (bytes.length <= maxLogBytes) return { text: bytes.toString('utf8'), truncated: false };
      return {
        text: `${bytes.subarray(0, maxLogBytes).toString('utf8')}\n[log truncated at ${maxLogBytes} bytes]\n`,
        truncated: true,
      };
    } catch (e) {
      logger?.warn({ pod: podName, err: apiMessage(e) }, 'cannot read the pod log');
      return { text: '', truncated: false };
    }
  };

  const run = async (req: ExecutionRequest): Promise<ExecutionResult> => {
    if (closed) throw new Error('kubernetes executor: closed');
    const began = Date.now();
    if (req.signal?.aborted) return result(began, { exitCode: null, cancelled: true });
    const service = await opts.resolveService(req.serviceName);
    if (!service?.image) {
      throw new Error(`kubernetes executor: service ${req.serviceName} has no image to run`);
    }
    const namespace = namespaceOf(service);
    await ensureNamespace(namespace);
    const objs = buildJobObjects({
      namespace,
      jobId: req.jobId,
      serviceName: req.serviceName,
      image: service.image,
      script: req.script,
      event: req.event,
      // The request merges variables and secrets: all of it goes to the Secret, none in the Job.
      variables: { ...req.extraEnv },
      secrets: { ...req.env },
      cpu: service.cpu,
      memory: service.memory,
      logLevel: service.log_level,
      labels: service.labels,
      annotations: service.annotations,
      input: service.input,
      output: service.output,
      timeoutMs: req.timeoutMs,
      supervisor: opts.supervisor,
      storageProviders: jobStorageProviders(
        service.storage_providers,
        await opts.storageFor?.(req.serviceName),
      ),
    });
    await ensureWatch(namespace);
    // Kubernetes names: the job id when it is a DNS label, else a stable hash of it.
    const name = kubeJobName(req.jobId);

    let waiter!: Waiter;
    const terminal = new Promise<Terminal | 'timeout' | 'cancel' | 'detach'>((resolve) => {
      waiter = { settle: resolve, namespace };
      if (req.onLog) waiter.follow = { onLog: req.onLog, started: false, text: '', stopped: false };
    });
    const settle = waiter.settle as (t: Terminal | 'timeout' | 'cancel' | 'detach') => void;
    // Registered before the Job is posted, so no watch event can be missed.
    waiters.set(name, waiter);
    const timer = setTimeout(() => settle('timeout'), req.timeoutMs);
    const onAbort = () => settle('cancel');
    req.signal?.addEventListener('abort', onAbort, { once: true });
    // close(): a stored job's Job keeps running in the cluster and the next manager
    // re-attaches to it; a synchronous run has no one to come back for it: cancelled.
    const stop = () => {
      settle(req.resumable ? 'detach' : 'cancel');
      return terminal;
    };
    running.add(stop);
    let attached = false;
    try {
      try {
        // The Job last: its pod must find both when the kubelet starts it.
        // A 409 here is this job's own object from before a manager restart: kept.
        await Promise.all([
          create(
            () => gate.add(() => core.createNamespacedConfigMap({ namespace, body: objs.configMap })),
            true,
          ),
          ...[objs.secret, objs.storageSecret].map((body) =>
            body
              ? create(() => gate.add(() => core.createNamespacedSecret({ namespace, body })), true)
              : undefined,
          ),
        ]);
        attached =
          (await create(
            () => gate.add(() => batch.createNamespacedJob({ namespace, body: objs.job })),
            true,
          )) === 'exists';
      } catch (e) {
        await cleanup(name, objs, namespace);
        throw new Error(`kubernetes executor: cannot create job ${req.jobId}: ${apiMessage(e)}`, {
          cause: e,
        });
      }
      if (attached) {
        // Re-attach: the Job was started by an earlier run of the manager; the watch began
        // after its pod's last change, so read where it is now.
        logger?.info?.({ jobId: req.jobId }, 're-attached to a Job already in the cluster');
        const pods = await api(() =>
          core.listNamespacedPod({ namespace, labelSelector: `${JOB_LABEL}=${name}` }),
        );
        for (const pod of pods.items) onPod('MODIFIED', pod);
      }
      const outcome = await terminal;
      // Stop the live log first, then hand over only what it did not deliver.
      const live = waiter.follow;
      if (live) {
        live.stopped = true;
        live.stop?.();
      }
      if (outcome === 'detach') return { ...result(began, { exitCode: null }), detached: true };
      const log = await readLog(waiter.podName, namespace);
      await cleanup(name, objs, namespace);
      const rest = live && log.text.startsWith(live.text) ? log.text.slice(live.text.length) : log.text;
      if (rest) req.onLog?.(rest);
      if (outcome === 'timeout') return result(began, { exitCode: null, timedOut: true, log });
      if (outcome === 'cancel') return result(began, { exitCode: null, cancelled: true, log });
      if (outcome.kind === 'gone') return result(began, { exitCode: null, cancelled: true, log });
      if (outcome.deadline) return result(began, { exitCode: null, timedOut: true, log });
      return result(began, { exitCode: outcome.exitCode, log });
    } finally {
      clearTimeout(timer);
      req.signal?.removeEventListener('abort', onAbort);
      waiters.delete(name);
      running.delete(stop);
    }
  };

  return {
    kind: 'kubernetes',
    isolation: 'kubernetes-pod',
    isolationNote: `jobs run as Kubernetes pods in namespace ${base} (isolation_level USER: the owner's own namespace)`,
    reattach: true,
    exposed: createExposedServices({
      kubeConfig: pooled.config,
      namespaceOf,
      ensureNamespace,
      ingressHost: opts.ingressHost,
      logger,
    }),
    run,
    releaseNamespace,
    async clusterNodes() {
      const [nodes, pods, usage] = await Promise.all([
        api(() => core.listNode({})),
        api(() =>
          core.listPodForAllNamespaces({ fieldSelector: 'status.phase!=Succeeded,status.phase!=Failed' }),
        ),
        // Not every cluster runs metrics-server: without it, usage shows requests.
        api(() => metrics.getNodeMetrics()).then(
          (list): NodeUsage => new Map(list.items.map((m) => [m.metadata.name, m.usage])),
          () => undefined,
        ),
      ]);
      return clusterCapacity(nodes.items, pods.items, usage);
    },
    async serverVersion() {
      const info = await api(() => version.getCode());
      return info.gitVersion;
    },
    watchStats: () => ({
      opened,
      relists,
      retries: retryCount.value,
      resourceVersion: watches.get(base)?.lastRv,
      namespaces: [...watches.keys()],
    }),
    async close() {
      closed = true;
      for (const w of watches.values()) clearTimeout(w.retryTimer);
      await Promise.all([...running].map((stop) => stop()));
      for (const w of watches.values()) w.current?.abort();
      pooled.close();
    },
  };
}

/**
 * The supervisor's storage_providers: the service's own, with minio.default replaced by this
 * cluster's scoped keys (or dropped: a key the service wrote for it is not this cluster's).
 */
export function jobStorageProviders(
  own: KubeServiceSpec['storage_providers'],
  local: JobStorageKeys | undefined,
): Record<string, Record<string, Record<string, unknown>>> {
  const out: Record<string, Record<string, Record<string, unknown>>> = {};
  for (const [kind, byId] of Object.entries(own ?? {})) {
    if (!byId || typeof byId !== 'object') continue;
    const ids = Object.entries(byId).filter(([id]) => !(kind === 'minio' && id === 'default'));
    if (ids.length > 0) out[kind] = Object.fromEntries(ids);
  }
  if (local) out.minio = { ...out.minio, default: { ...local } };
  return out;
}

const TRANSIENT = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN']);

/** A dropped connection (a reused keep-alive socket the server just closed), not an answer. */
function isTransient(e: unknown): boolean {
  const err = e as { code?: unknown; errno?: unknown; cause?: { code?: unknown } };
  return [err.code, err.errno, err.cause?.code].some((c) => typeof c === 'string' && TRANSIENT.has(c));
}

const retryCount = { value: 0 };

async function retrying<T>(call: () => Promise<T>, attempts = 4): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await call();
    } catch (e) {
      if (i >= attempts || !isTransient(e)) throw e;
      retryCount.value += 1;
      await new Promise((r) => setTimeout(r, 25 * i));
    }
  }
}

/**
 * Creates, retrying a dropped connection; a 409 after a retry is our own earlier attempt.
 * With `existingIsOurs`, any 409 means the object is there already (objects are named after
 * the job id): 'exists'.
 */
async function create(call: () => Promise<unknown>, existingIsOurs = false): Promise<'created' | 'exists'> {
  let retried = false;
  return retrying(async () => {
    try {
      await call();
      return 'created' as const;
    } catch (e) {
      if ((retried || existingIsOurs) && (e as { code?: number }).code === 409) return 'exists' as const;
      if (isTransient(e)) retried = true;
      throw e;
    }
  });
}

function terminalOf(pod: V1Pod): Terminal | undefined {
  const phase = pod.status?.phase;
  if (phase !== 'Succeeded' && phase !== 'Failed') return undefined;
  const status = pod.status?.containerStatuses?.find((c) => c.name === CONTAINER_NAME);
  const exitCode = status?.state?.terminated?.exitCode ?? null;
  return { kind: 'exited', exitCode, deadline: pod.status?.reason === 'DeadlineExceeded' };
}

function result(
  began: number,
  r: {
    exitCode: number | null;
    timedOut?: boolean;
    cancelled?: boolean;
    log?: { text: string; truncated: boolean };
  },
): ExecutionResult {
  return {
    exitCode: r.exitCode,
    signal: null,
    timedOut: r.timedOut ?? false,
    cancelled: r.cancelled ?? false,
    stdout: r.log?.text ?? '',
    stderr: '',
    truncated: r.log?.truncated ?? false,
    outputs: [],
    durationMs: Date.now() - began,
    dispose: async () => undefined,
  };
}

/** The API server's own message (a Status body), never the request we sent. */
function apiMessage(e: unknown): string {
  const err = e as { code?: number; body?: unknown; message?: string };
  let body = err.body;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      // not JSON
    }
  }
  const message = (body as { message?: string } | undefined)?.message;
  if (err.code && message) return `${err.code}: ${message}`;
  if (err.code) return `HTTP ${err.code}`;
  return err.message ?? String(e);
}
