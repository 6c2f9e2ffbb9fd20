// A fake Kubernetes API server on loopback HTTP, for the resources the Kubernetes executor uses:
// ConfigMaps, Secrets, Jobs, Pods (made by the fake's "job controller" when a Job is created),
// pod logs, Nodes, and watch (chunked JSON lines from a resourceVersion). It behaves like the
// real one where the executor could get it wrong:
// - every object received is validated against the official OpenAPI schemas (kubernetes-models)
//   and refused with 422 and the validation message, like the API server;
// - resourceVersions are one global counter; a watch from a compacted one gets an ERROR event
//   with a 410 Status (Expired), as the real server sends it; tests can compact and drop watches;
// - deleting a Job without propagationPolicy orphans its pods (the batch/v1 API default);
// - a pod whose ConfigMap or Secret is missing stays Pending with CreateContainerConfigError;
// - GET /version, and metrics.k8s.io node metrics when the test gives some (else 404, as a
//   cluster without metrics-server);
// - exposed services' kinds: apps/v1 Deployments (a one-step deployment controller: pods of
//   the current template up to spec.replicas, a changed template rolls them all, status and
//   the Available condition as the controller reports them; an image named "*crash*" stays in
//   CrashLoopBackOff), v1 Services (a clusterIP assigned and immutable, node ports allocated
//   cluster-wide), networking.k8s.io/v1 Ingresses, autoscaling/v1 HPAs; PUT with
//   resourceVersion conflicts (409) as the real server; pod logs with tailLines/timestamps;
// - with `namespaces` given, objects only in namespaces that exist (404 otherwise),
//   POST /api/v1/namespaces to make one (validated, 409 when it exists), and DELETE to remove
//   one with everything in it (preconditions.uid honoured with a 409 as the real server; with
//   `namespaceTerminationMs`, Terminating that long first: a create in it is a 403, a create of
//   it a 409, as the real server answers);
// - fail(match): the requests it matches get their connection cut, as a server that cannot be
//   reached (every one, or some, to test what a caller leaves behind).
// Pods run either by hand (the test sets phases) or by the 'shell' kubelet: it plays the
// container + faas-supervisor by running the ConfigMap's script.sh with /bin/sh, with the
// container's env, the Secret's envFrom, TMP_INPUT_DIR/TMP_OUTPUT_DIR, stdout and stderr into one
// log (as a container runtime does), capped like kubelet's log rotation. The config volume
// (a ConfigMap, or a projected ConfigMap + Secret) is written under the working directory at its
// mount path (./oscar/config/…): the fake has no chroot.
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v1/HorizontalPodAutoscaler';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1/Ingress';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { stringify as stringifyYaml } from 'yaml';

/** Kubernetes objects as JSON. */
type Obj = any;
type Kind =
  | 'configmaps'
  | 'secrets'
  | 'jobs'
  | 'pods'
  | 'deployments'
  | 'services'
  | 'ingresses'
  | 'horizontalpodautoscalers';

const KIND_NAMES: Record<Kind, { kind: string; apiVersion: string; group: string }> = {
  configmaps: { kind: 'ConfigMap', apiVersion: 'v1', group: '' },
  secrets: { kind: 'Secret', apiVersion: 'v1', group: '' },
  jobs: { kind: 'Job', apiVersion: 'batch/v1', group: 'batch' },
  pods: { kind: 'Pod', apiVersion: 'v1', group: '' },
  deployments: { kind: 'Deployment', apiVersion: 'apps/v1', group: 'apps' },
  services: { kind: 'Service', apiVersion: 'v1', group: '' },
  ingresses: { kind: 'Ingress', apiVersion: 'networking.k8s.io/v1', group: 'networking.k8s.io' },
  horizontalpodautoscalers: {
    kind: 'HorizontalPodAutoscaler',
    apiVersion: 'autoscaling/v1',
    group: 'autoscaling',
  },
};

const VALIDATORS: Partial<Record<Kind, (o: Obj) => void>> = {
  configmaps: (o) => new ConfigMap(o).validate(),
  secrets: (o) => new Secret(o).validate(),
  jobs: (o) => new Job(o).validate(),
  deployments: (o) => new Deployment(o).validate(),
  services: (o) => new Service(o).validate(),
  ingresses: (o) => new Ingress(o).validate(),
  horizontalpodautoscalers: (o) => new HorizontalPodAutoscaler(o).validate(),
};

/** The API group in a request's path must be the kind's (apps/v1 deployments, not batch/v1). */
const groupOfPath = (parts: string[]): string => (parts[0] === 'api' ? '' : (parts[1] ?? ''));

export interface FakeKubeOptions {
  /** 'shell': pods run their script for real; 'manual': the test moves them with setPod. */
  kubelet?: 'shell' | 'manual';
  /** Between SIGTERM and SIGKILL when a pod is deleted. Default 300 ms. */
  killGraceMs?: number;
  /** Kept per container log, like kubelet's containerLogMaxSize. Default 10 MiB. */
  maxLogBytes?: number;
  nodes?: Obj[];
  /** false: skip the schema validation (benchmarks, to leave the fake's own cost out). Default true. */
  validate?: boolean;
  /** GET /version's gitVersion. Default v1.31.2. */
  version?: string;
  /**
   * Namespaces that exist at start. Given: objects can only be made in an existing namespace
   * (else 404, as the real server), and POST /api/v1/namespaces makes more. Absent: any
   * namespace is accepted (most tests).
   */
  namespaces?: string[];
  /** How long a deleted namespace stays Terminating before it is gone. Default 0 (at once). */
  namespaceTerminationMs?: number;
  /** metrics.k8s.io NodeMetrics usage per node; absent: no metrics-server (404). */
  nodeMetrics?: Record<string, { cpu: string; memory: string }>;
}

interface WatchConn {
  kind: Kind;
  namespace: string | undefined;
  selector: Record<string, string>;
  res: ServerResponse;
}

interface Running {
  child: ChildProcess;
  dir: string;
}

export interface FakeKubeApi {
  url: string;
  /** Options for KubeConfig.loadFromOptions pointing at this server. */
  kubeconfig(namespace?: string): Obj;
  /** The same as a kubeconfig file at `path` (for `--kubeconfig`); returns the path. */
  writeKubeconfig(path: string, namespace?: string): string;
  get(kind: Kind, namespace: string, name: string): Obj | undefined;
  list(kind: Kind, namespace?: string): Obj[];
  /** Every object POSTed (refused ones included, with their status); `at`: when its request arrived. */
  readonly received: Array<{ kind: Kind; status: number; object: Obj; at: number; method?: 'PUT' }>;
  /** Every watch request: path and query. */
  readonly watchRequests: Array<{ kind: Kind; namespace: string | undefined; query: Record<string, string> }>;
  openWatches(): number;
  /** TCP connections accepted so far. */
  connections(): number;
  /** Most requests being answered at once so far (watches left out). */
  maxInFlight(): number;
  /** The namespaces made so far (with `namespaces` given), with their objects. */
  namespaces(): Obj[];
  /** Every pod log request: pod name and whether it followed. */
  readonly logRequests: Array<{ pod: string; follow: boolean }>;
  /** Moves a pod (manual kubelet): phase, exit code, log text. */
  setPod(
    namespace: string,
    jobName: string,
    state: { phase: 'Running' | 'Succeeded' | 'Failed'; exitCode?: number; log?: string },
  ): void;
  /** Forgets history up to now: a watch from an older resourceVersion gets 410. */
  compact(): void;
  /**
   * From now on, requests `match` selects (all when absent) have their connection cut with no
   * answer, as an API server that cannot be reached; `fail(null)` heals it.
   */
  fail(match?: ((req: { method: string; path: string }) => boolean) | null): void;
  /** Cuts every open watch connection mid-stream. */
  dropWatches(): void;
  /** Keeps every open watch connection open but sends nothing more on it (a silent drop). */
  stallWatches(): void;
  close(): Promise<void>;
}

export async function startFakeKubeApi(opts: FakeKubeOptions = {}): Promise<FakeKubeApi> {
  const kubelet = opts.kubelet ?? 'shell';
  const killGraceMs = opts.killGraceMs ?? 300;
  const maxLogBytes = opts.maxLogBytes ?? 10 * 1024 * 1024;
  const nodes = opts.nodes ?? [fakeNode('fake-node-1', '4', '8Gi')];
  let rv = 1;
  let compactedAt = 0;
  const store = new Map<string, Obj>(); // `${kind}/${ns}/${name}`
  const history: Array<{ rv: number; kind: Kind; type: string; object: Obj }> = [];
  const watches = new Set<WatchConn>();
  const logs = new Map<string, { text: string; bytes: number }>(); // pod key → log
  const stamps = new Map<string, Array<{ at: string; line: string }>>(); // pod key → timed lines (deployment pods)
  const running = new Map<string, Running>(); // pod key → process
  const received: FakeKubeApi['received'] = [];
  const watchRequests: FakeKubeApi['watchRequests'] = [];
  const logRequests: FakeKubeApi['logRequests'] = [];
  const sockets = new Set<import('node:net').Socket>();
  const namespaceObjs = new Map<string, Obj>(
    (opts.namespaces ?? []).map((n) => [
      n,
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: n }, status: { phase: 'Active' } },
    ]),
  );

  const key = (kind: Kind, ns: string, name: string) => `${kind}/${ns}/${name}`;

  const emit = (kind: Kind, type: 'ADDED' | 'MODIFIED' | 'DELETED', object: Obj) => {
    history.push({
      rv: Number(object.metadata.resourceVersion),
      kind,
      type,
      object: structuredClone(object),
    });
    for (const w of watches) {
      if (matches(w, kind, object)) writeEvent(w.res, type, object);
    }
  };

  const put = (kind: Kind, object: Obj, type: 'ADDED' | 'MODIFIED') => {
    rv += 1;
    object.metadata.resourceVersion = String(rv);
    store.set(key(kind, object.metadata.namespace, object.metadata.name), object);
    emit(kind, type, object);
  };

  const remove = (kind: Kind, ns: string, name: string): Obj | undefined => {
    const k = key(kind, ns, name);
    const object = store.get(k);
    if (!object) return undefined;
    store.delete(k);
    rv += 1;
    object.metadata.resourceVersion = String(rv);
    emit(kind, 'DELETED', object);
    return object;
  };

  const updatePod = (pod: Obj, status: Obj) => {
    if (!store.has(key('pods', pod.metadata.namespace, pod.metadata.name))) return;
    pod.status = { ...pod.status, ...status };
    put('pods', pod, 'MODIFIED');
    const phase = pod.status.phase;
    if (phase === 'Succeeded' || phase === 'Failed') finishJob(pod, phase);
  };

  const finishJob = (pod: Obj, phase: string) => {
    const jobName = pod.metadata.labels?.['job-name'];
    const job = jobName && store.get(key('jobs', pod.metadata.namespace, jobName));
    if (!job) return;
    const now = new Date().toISOString();
    const cond = phase === 'Succeeded' ? 'Complete' : 'Failed';
    job.status = {
      ...job.status,
      active: 0,
      [phase === 'Succeeded' ? 'succeeded' : 'failed']: 1,
      completionTime: phase === 'Succeeded' ? now : undefined,
      conditions: [{ type: cond, status: 'True', lastTransitionTime: now, lastProbeTime: now }],
    };
    put('jobs', job, 'MODIFIED');
  };

  const followers = new Map<string, Set<{ res: ServerResponse; left: number }>>(); // pod key → follow=true readers
  const endFollowers = (podKey: string) => {
    for (const f of followers.get(podKey) ?? []) f.res.end();
    followers.delete(podKey);
  };
  const appendLog = (podKey: string, chunk: Buffer) => {
    const log = logs.get(podKey) ?? { text: '', bytes: 0 };
    const room = maxLogBytes - log.bytes;
    if (room > 0) {
      const part = chunk.subarray(0, room);
      log.text += part.toString('utf8');
      log.bytes += part.length;
      for (const f of followers.get(podKey) ?? []) {
        const out = part.subarray(0, f.left);
        f.left -= out.length;
        if (out.length > 0) f.res.write(out);
        if (f.left <= 0) f.res.end();
      }
    }
    logs.set(podKey, log);
  };

  /** The job controller: one pod per Job, named and labelled as Kubernetes does. */
  const createPodFor = (job: Obj) => {
    const ns = job.metadata.namespace;
    const tpl = job.spec.template;
    const pod: Obj = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: `${job.metadata.name}-${randomBytes(3).toString('hex').slice(0, 5)}`,
        namespace: ns,
        uid: randomUUID(),
        creationTimestamp: new Date().toISOString(),
        labels: {
          ...tpl.metadata?.labels,
          'job-name': job.metadata.name,
          'batch.kubernetes.io/job-name': job.metadata.name,
          'controller-uid': job.metadata.uid,
        },
        annotations: tpl.metadata?.annotations,
        ownerReferences: [
          {
            apiVersion: 'batch/v1',
            kind: 'Job',
            name: job.metadata.name,
            uid: job.metadata.uid,
            controller: true,
          },
        ],
      },
      spec: { ...structuredClone(tpl.spec), nodeName: nodes[0]?.metadata.name },
      status: { phase: 'Pending' },
    };
    put('pods', pod, 'ADDED');
    job.status = { active: 1, startTime: new Date().toISOString() };
    put('jobs', job, 'MODIFIED');
    if (kubelet === 'shell') setImmediate(() => startContainer(pod));
  };

  const startContainer = (pod: Obj) => {
    const ns = pod.metadata.namespace;
    const podKey = key('pods', ns, pod.metadata.name);
    if (!store.has(podKey)) return;
    const container = pod.spec.containers[0];
    const configVolume = pod.spec.volumes?.find((v: Obj) => v.name === 'oscar-config');
    const sources: Obj[] = configVolume?.projected
      ? configVolume.projected.sources
      : [{ configMap: configVolume?.configMap }];
    const cmName = sources.find((src) => src.configMap)?.configMap?.name;
    const cm = cmName && store.get(key('configmaps', ns, cmName));
    const env: Record<string, string> = {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    };
    let missing: string | undefined = cm ? undefined : `configmap "${cmName}" not found`;
    // The files of the config volume, as the kubelet would project them.
    const files: Record<string, string> = { ...cm?.data };
    for (const src of sources) {
      if (!src.secret) continue;
      const secret = store.get(key('secrets', ns, src.secret.name));
      if (!secret) {
        missing = `secret "${src.secret.name}" not found`;
        continue;
      }
      for (const [k, v] of Object.entries(secret.data ?? {}))
        files[k] = Buffer.from(String(v), 'base64').toString('utf8');
    }
    for (const from of container.envFrom ?? []) {
      const secret = from.secretRef && store.get(key('secrets', ns, from.secretRef.name));
      if (!secret) {
        missing = `secret "${from.secretRef?.name}" not found`;
        continue;
      }
      for (const [k, v] of Object.entries(secret.data ?? {}))
        env[k] = Buffer.from(String(v), 'base64').toString('utf8');
    }
    if (missing) {
      updatePod(pod, {
        containerStatuses: [
          {
            name: container.name,
            ready: false,
            restartCount: 0,
            image: container.image,
            imageID: '',
            state: { waiting: { reason: 'CreateContainerConfigError', message: missing } },
          },
        ],
      });
      return;
    }
    for (const e of container.env ?? []) {
      if (e.value !== undefined) env[e.name] = e.value;
      else if (e.valueFrom?.fieldRef?.fieldPath === 'spec.nodeName') env[e.name] = pod.spec.nodeName;
    }
    const dir = mkdtempSync(join(tmpdir(), 'fake-kubelet-'));
    mkdirSync(join(dir, 'input'));
    mkdirSync(join(dir, 'output'));
    writeFileSync(join(dir, 'script.sh'), cm.data['script.sh']);
    const mountPath = container.volumeMounts?.find((m: Obj) => m.name === 'oscar-config')?.mountPath;
    if (mountPath) {
      const at = join(dir, mountPath);
      mkdirSync(at, { recursive: true });
      for (const [name, text] of Object.entries(files)) writeFileSync(join(at, name), text);
    }
    env.TMP_INPUT_DIR = join(dir, 'input');
    env.TMP_OUTPUT_DIR = join(dir, 'output');
    const startedAt = new Date().toISOString();
    const child = spawn('/bin/sh', [join(dir, 'script.sh')], {
      cwd: dir,
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.set(podKey, { child, dir });
    child.stdout?.on('data', (c: Buffer) => appendLog(podKey, c));
    child.stderr?.on('data', (c: Buffer) => appendLog(podKey, c));
    updatePod(pod, {
      phase: 'Running',
      startTime: startedAt,
      containerStatuses: [
        {
          name: container.name,
          ready: true,
          restartCount: 0,
          image: container.image,
          imageID: '',
          started: true,
          state: { running: { startedAt } },
        },
      ],
    });
    // When the container's main process ends, the runtime kills what it left behind.
    let exitCode = 0;
    child.on('exit', (code, signal) => {
      exitCode = code ?? (signal === 'SIGKILL' ? 137 : 143);
      killGroup(child, 'SIGKILL');
    });
    child.on('close', () => {
      running.delete(podKey);
      rmSync(dir, { recursive: true, force: true });
      terminate(pod, exitCode, startedAt);
    });
  };

  const terminate = (pod: Obj, exitCode: number, startedAt: string) => {
    endFollowers(key('pods', pod.metadata.namespace, pod.metadata.name));
    const container = pod.spec.containers[0];
    updatePod(pod, {
      phase: exitCode === 0 ? 'Succeeded' : 'Failed',
      containerStatuses: [
        {
          name: container.name,
          ready: false,
          restartCount: 0,
          image: container.image,
          imageID: '',
          started: false,
          state: {
            terminated: {
              exitCode,
              reason: exitCode === 0 ? 'Completed' : 'Error',
              startedAt,
              finishedAt: new Date().toISOString(),
            },
          },
        },
      ],
    });
  };

  const deletePod = (ns: string, name: string) => {
    const podKey = key('pods', ns, name);
    const proc = running.get(podKey);
    const gone = () => {
      endFollowers(podKey);
      remove('pods', ns, name);
      logs.delete(podKey);
    };
    if (!proc) return gone();
    killGroup(proc.child, 'SIGTERM');
    const timer = setTimeout(() => killGroup(proc.child, 'SIGKILL'), killGraceMs);
    proc.child.once('close', () => {
      clearTimeout(timer);
      gone();
    });
  };

  /** Node ports are cluster-wide: one already allocated to another Service is refused. */
  const checkNodePorts = (svc: Obj, self: Obj | undefined) => {
    (svc.spec?.ports ?? []).forEach((p: Obj, i: number) => {
      if (!p.nodePort) return;
      const taken = [...store.values()].some(
        (o) =>
          o.kind === 'Service' &&
          o !== self &&
          (o.spec?.ports ?? []).some((q: Obj) => q.nodePort === p.nodePort),
      );
      if (taken)
        throw new Error(
          `spec.ports[${i}].nodePort: Invalid value: ${p.nodePort}: provided port is already allocated`,
        );
    });
  };

  let nextIp = 10;
  const assignClusterIp = (svc: Obj) => {
    nextIp += 1;
    const ip = `10.96.${Math.floor(nextIp / 250)}.${nextIp % 250}`;
    svc.spec = { ...svc.spec, clusterIP: ip, clusterIPs: [ip] };
  };

  const podsOfDeployment = (ns: string, name: string): Obj[] =>
    [...store.values()].filter(
      (o) =>
        o.kind === 'Pod' &&
        o.metadata.namespace === ns &&
        o.metadata.ownerReferences?.[0]?.kind === 'ReplicaSet' &&
        o.metadata.annotations?.['fake.flotilla/deployment'] === name,
    );

  /**
   * The deployment controller, in one step: pods of the current template up to spec.replicas
   * (a changed template replaces them all: a rollout), Running and ready at once, unless the
   * image name contains "crash" (then CrashLoopBackOff); status as the controller reports it.
   */
  const reconcileDeployment = (d: Obj) => {
    const ns = d.metadata.namespace;
    const name = d.metadata.name;
    const tpl = d.spec.template;
    const hash = createHash('sha256').update(JSON.stringify(tpl)).digest('hex').slice(0, 10);
    const desired = d.spec.replicas ?? 1;
    const current = podsOfDeployment(ns, name);
    const keep = current.filter((p) => p.metadata.labels['pod-template-hash'] === hash);
    for (const p of current) if (!keep.includes(p)) remove('pods', ns, p.metadata.name);
    while (keep.length > desired) remove('pods', ns, keep.pop().metadata.name);
    const crash = /crash/.test(tpl.spec.containers[0]?.image ?? '');
    while (keep.length < desired) {
      const c = tpl.spec.containers[0];
      const startedAt = new Date().toISOString();
      const pod: Obj = {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: `${name}-${hash}-${randomBytes(3).toString('hex').slice(0, 5)}`,
          namespace: ns,
          uid: randomUUID(),
          creationTimestamp: startedAt,
          labels: { ...tpl.metadata?.labels, 'pod-template-hash': hash },
          annotations: { ...tpl.metadata?.annotations, 'fake.flotilla/deployment': name },
          ownerReferences: [
            {
              apiVersion: 'apps/v1',
              kind: 'ReplicaSet',
              name: `${name}-${hash}`,
              uid: d.metadata.uid,
              controller: true,
            },
          ],
        },
        spec: { ...structuredClone(tpl.spec), nodeName: nodes[0]?.metadata.name },
        status: crash
          ? {
              phase: 'Running',
              startTime: startedAt,
              containerStatuses: [
                {
                  name: c.name,
                  ready: false,
                  restartCount: 3,
                  image: c.image,
                  imageID: '',
                  state: {
                    waiting: {
                      reason: 'CrashLoopBackOff',
                      message: `back-off restarting failed container ${c.name}`,
                    },
                  },
                },
              ],
            }
          : {
              phase: 'Running',
              startTime: startedAt,
              containerStatuses: [
                {
                  name: c.name,
                  ready: true,
                  restartCount: 0,
                  image: c.image,
                  imageID: '',
                  started: true,
                  state: { running: { startedAt } },
                },
              ],
            },
      };
      put('pods', pod, 'ADDED');
      const podKey = key('pods', ns, pod.metadata.name);
      const port = c.ports?.[0]?.containerPort;
      const line = crash ? 'fatal: cannot start' : `serving ${c.image} on :${port}`;
      appendLog(podKey, Buffer.from(`${line}\n`));
      stamps.set(podKey, [{ at: startedAt, line }]);
      keep.push(pod);
    }
    const ready = crash ? 0 : keep.length;
    const now = new Date().toISOString();
    const before = d.status?.conditions?.find((c: Obj) => c.type === 'Available');
    const availableNow = ready >= desired ? 'True' : 'False';
    d.status = {
      observedGeneration: d.metadata.generation ?? 1,
      replicas: keep.length,
      updatedReplicas: keep.length,
      readyReplicas: ready,
      availableReplicas: ready,
      ...(keep.length - ready > 0 ? { unavailableReplicas: keep.length - ready } : {}),
      conditions: [
        {
          type: 'Available',
          status: availableNow,
          reason: availableNow === 'True' ? 'MinimumReplicasAvailable' : 'MinimumReplicasUnavailable',
          message:
            availableNow === 'True'
              ? 'Deployment has minimum availability.'
              : 'Deployment does not have minimum availability.',
          lastUpdateTime: now,
          lastTransitionTime: before?.status === availableNow ? before.lastTransitionTime : now,
        },
      ],
    };
    put('deployments', d, 'MODIFIED');
  };

  let failing: ((req: { method: string; path: string }) => boolean) | undefined;
  const handler = async (req: IncomingMessage, res: ServerResponse) => {
    // when the request reached the fake, before it parses and validates (for the bench)
    const arrived = performance.now();
    const url = new URL(req.url ?? '/', 'http://fake');
    if (failing?.({ method: req.method ?? 'GET', path: url.pathname })) {
      req.socket.destroy();
      return;
    }
    const query = Object.fromEntries(url.searchParams);
    const parts = url.pathname.split('/').filter(Boolean);
    if (url.pathname === '/version' && req.method === 'GET') {
      const gitVersion = opts.version ?? 'v1.31.2';
      const [major, minor] = gitVersion.replace(/^v/, '').split('.');
      return json(res, 200, { major, minor, gitVersion, platform: 'linux/amd64' });
    }
    if (url.pathname === '/apis/metrics.k8s.io/v1beta1/nodes' && req.method === 'GET' && opts.nodeMetrics) {
      const now = new Date().toISOString();
      return json(res, 200, {
        kind: 'NodeMetricsList',
        apiVersion: 'metrics.k8s.io/v1beta1',
        metadata: {},
        items: Object.entries(opts.nodeMetrics).map(([name, usage]) => ({
          metadata: { name, creationTimestamp: now },
          timestamp: now,
          window: '20s',
          usage,
        })),
      });
    }
    // /api/v1/... or /apis/batch/v1/...
    const rest = parts[0] === 'api' ? parts.slice(2) : parts[0] === 'apis' ? parts.slice(3) : undefined;
    if (!rest) return status(res, 404, 'NotFound', `the server could not find the requested resource`);
    if (parts[0] === 'api' && rest[0] === 'namespaces' && rest.length === 1 && req.method === 'POST') {
      const body = JSON.parse(await readBody(req));
      try {
        if (opts.validate !== false) new Namespace(body).validate();
        if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(body.metadata?.name ?? ''))
          throw new Error(
            `metadata.name: Invalid value: "${body.metadata?.name}": a lowercase RFC 1123 label`,
          );
      } catch (e) {
        return status(
          res,
          422,
          'Invalid',
          `Namespace "${body.metadata?.name ?? ''}" is invalid: ${(e as Error).message}`,
        );
      }
      if (namespaceObjs.has(body.metadata.name))
        return status(
          res,
          409,
          'AlreadyExists',
          `namespaces "${body.metadata.name}" already exists`,
          body.metadata.name,
          'namespaces',
        );
      rv += 1;
      const object = {
        ...body,
        metadata: {
          ...body.metadata,
          uid: randomUUID(),
          creationTimestamp: new Date().toISOString(),
          resourceVersion: String(rv),
        },
        status: { phase: 'Active' },
      };
      namespaceObjs.set(body.metadata.name, object);
      return json(res, 201, object);
    }
    if (parts[0] === 'api' && rest[0] === 'namespaces' && rest.length === 2 && req.method === 'DELETE') {
      const o = namespaceObjs.get(rest[1]!);
      if (!o) return status(res, 404, 'NotFound', `namespaces "${rest[1]}" not found`, rest[1], 'namespaces');
      const raw = await readBody(req);
      const uid = raw ? JSON.parse(raw).preconditions?.uid : undefined;
      if (uid && uid !== o.metadata.uid)
        return status(
          res,
          409,
          'Conflict',
          `Operation cannot be fulfilled on namespaces "${rest[1]}": Precondition failed: UID in precondition: ${uid}, UID in object meta: ${o.metadata.uid ?? ''}`,
          rest[1],
          'namespaces',
        );
      for (const obj of [...store.values()]) {
        if (obj.metadata.namespace !== rest[1]) continue;
        if (obj.kind === 'Pod') deletePod(rest[1]!, obj.metadata.name);
        else remove(KIND_OF[obj.kind as string]!, rest[1]!, obj.metadata.name);
      }
      o.status = { phase: 'Terminating' };
      o.metadata.deletionTimestamp = new Date().toISOString();
      const gone = () => {
        if (namespaceObjs.get(rest[1]!) === o) namespaceObjs.delete(rest[1]!);
      };
      if (opts.namespaceTerminationMs) setTimeout(gone, opts.namespaceTerminationMs).unref();
      else gone();
      return json(res, 200, o);
    }
    if (parts[0] === 'api' && rest[0] === 'namespaces' && rest.length === 2 && req.method === 'GET') {
      const o = namespaceObjs.get(rest[1]!);
      return o
        ? json(res, 200, o)
        : status(res, 404, 'NotFound', `namespaces "${rest[1]}" not found`, rest[1], 'namespaces');
    }
    if (rest[0] === 'nodes' && req.method === 'GET') {
      return json(res, 200, {
        kind: 'NodeList',
        apiVersion: 'v1',
        metadata: { resourceVersion: String(rv) },
        items: nodes,
      });
    }
    let ns: string | undefined;
    let i = 0;
    if (rest[0] === 'namespaces') {
      ns = rest[1];
      i = 2;
    }
    const kind = rest[i] as Kind;
    const name = rest[i + 1];
    const sub = rest[i + 2];
    if (!KIND_NAMES[kind])
      return status(res, 404, 'NotFound', `the server could not find the requested resource`);
    const { kind: kindName, group } = KIND_NAMES[kind];
    if (groupOfPath(parts) !== group)
      return status(res, 404, 'NotFound', `the server could not find the requested resource`);
    const groupSuffix = group ? `.${group}` : '';
    const selector = parseSelector(query.labelSelector);

    if (req.method === 'GET' && !name && query.watch === 'true') {
      watchRequests.push({ kind, namespace: ns, query });
      return startWatch(res, { kind, namespace: ns, selector, res }, query.resourceVersion);
    }
    if (req.method === 'GET' && !name) {
      const items = [...store.values()].filter(
        (o) => o.kind === kindName && (!ns || o.metadata.namespace === ns) && selects(selector, o),
      );
      return json(res, 200, {
        kind: `${kindName}List`,
        apiVersion: KIND_NAMES[kind].apiVersion,
        metadata: { resourceVersion: String(rv) },
        items,
      });
    }
    if (!ns) return status(res, 404, 'NotFound', 'namespace required');
    if (req.method === 'GET' && name && sub === 'log' && kind === 'pods') {
      const pod = store.get(key('pods', ns, name));
      if (!pod) return status(res, 404, 'NotFound', `pods "${name}" not found`);
      logRequests.push({ pod: name, follow: query.follow === 'true' });
      const podKey = key('pods', ns, name);
      let text = logs.get(podKey)?.text ?? '';
      if (query.timestamps === 'true' || query.tailLines) {
        const stamped = stamps.get(podKey) ?? [];
        let lines =
          stamped.length > 0
            ? stamped
            : text
                .split('\n')
                .filter(Boolean)
                .map((l) => ({ at: '', line: l }));
        if (query.tailLines) lines = lines.slice(-Number(query.tailLines));
        const at0 = pod.status?.startTime ?? new Date().toISOString();
        text = lines
          .map((l) => (query.timestamps === 'true' ? `${l.at || at0} ${l.line}\n` : `${l.line}\n`))
          .join('');
      }
      const limit = query.limitBytes ? Number(query.limitBytes) : undefined;
      const body = limit === undefined ? Buffer.from(text) : Buffer.from(text).subarray(0, limit);
      res.writeHead(200, { 'content-type': 'text/plain' });
      const phase = pod.status?.phase;
      const left = (limit ?? Number.POSITIVE_INFINITY) - body.length;
      if (query.follow !== 'true' || phase === 'Succeeded' || phase === 'Failed' || left <= 0)
        return res.end(body);
      // follow: what is there, then what the container writes until it ends
      res.write(body);
      const f = { res, left };
      const set = followers.get(podKey) ?? new Set();
      set.add(f);
      followers.set(podKey, set);
      res.on('close', () => set.delete(f));
      return;
    }
    if (req.method === 'GET' && name) {
      const o = store.get(key(kind, ns, name));
      return o
        ? json(res, 200, o)
        : status(res, 404, 'NotFound', `${kind}${groupSuffix} "${name}" not found`, name, kind);
    }
    if ((req.method === 'POST' || req.method === 'PUT') && opts.namespaces && !namespaceObjs.has(ns))
      return status(res, 404, 'NotFound', `namespaces "${ns}" not found`, ns, 'namespaces');
    if (req.method === 'POST' && namespaceObjs.get(ns)?.status?.phase === 'Terminating')
      return status(
        res,
        403,
        'Forbidden',
        `${kindName.toLowerCase()}s "${name ?? ''}" is forbidden: unable to create new content in namespace ${ns} because it is being terminated`,
      );
    if (req.method === 'POST' && !name) {
      const body = JSON.parse(await readBody(req));
      const validate = VALIDATORS[kind];
      try {
        if (!validate) throw new Error(`the fake does not accept ${kind}`);
        if (opts.validate !== false) validate(body);
        if (body.kind !== kindName) throw new Error(`kind: must be ${kindName}`);
        if (body.metadata?.namespace && body.metadata.namespace !== ns)
          throw new Error('metadata.namespace: does not match the namespace of the request');
        if (!body.metadata?.name) throw new Error('metadata.name: Required value');
        if (kind === 'services') checkNodePorts(body, undefined);
      } catch (e) {
        received.push({ kind, status: 422, object: body, at: arrived });
        return status(
          res,
          422,
          'Invalid',
          `${kindName}${groupSuffix} "${body.metadata?.name ?? ''}" is invalid: ${(e as Error).message}`,
          body.metadata?.name,
          kind,
        );
      }
      if (store.has(key(kind, ns, body.metadata.name))) {
        received.push({ kind, status: 409, object: body, at: arrived });
        return status(
          res,
          409,
          'AlreadyExists',
          `${kind}${groupSuffix} "${body.metadata.name}" already exists`,
          body.metadata.name,
          kind,
        );
      }
      received.push({ kind, status: 201, object: body, at: arrived });
      const object = {
        ...body,
        metadata: {
          ...body.metadata,
          namespace: ns,
          uid: randomUUID(),
          creationTimestamp: new Date().toISOString(),
        },
      };
      if (kind === 'services') assignClusterIp(object);
      put(kind, object, 'ADDED');
      if (kind === 'jobs') createPodFor(object);
      if (kind === 'deployments') reconcileDeployment(object);
      return json(res, 201, object);
    }
    if (req.method === 'DELETE' && name) {
      const raw = await readBody(req);
      const policy = query.propagationPolicy ?? (raw ? JSON.parse(raw).propagationPolicy : undefined);
      if (kind === 'pods') {
        const pod = store.get(key('pods', ns, name));
        if (!pod) return status(res, 404, 'NotFound', `pods "${name}" not found`, name, kind);
        deletePod(ns, name);
        return json(res, 200, pod);
      }
      const removed = remove(kind, ns, name);
      if (!removed)
        return status(res, 404, 'NotFound', `${kind}${groupSuffix} "${name}" not found`, name, kind);
      // apps/v1 deletes a Deployment's pods by default (its ReplicaSets go in the background).
      if (kind === 'deployments' && policy !== 'Orphan') {
        for (const pod of podsOfDeployment(ns, name)) deletePod(ns, pod.metadata.name);
      }
      if (kind === 'jobs' && (policy === 'Background' || policy === 'Foreground')) {
        for (const pod of [...store.values()]) {
          if (
            pod.kind === 'Pod' &&
            pod.metadata.namespace === ns &&
            pod.metadata.labels?.['job-name'] === name
          )
            deletePod(ns, pod.metadata.name);
        }
      }
      return json(res, 200, { kind: 'Status', apiVersion: 'v1', status: 'Success', details: { name, kind } });
    }
    if (req.method === 'PUT' && name && !sub) {
      const body = JSON.parse(await readBody(req));
      const existing = store.get(key(kind, ns, name));
      if (!existing)
        return status(res, 404, 'NotFound', `${kind}${groupSuffix} "${name}" not found`, name, kind);
      try {
        if (!VALIDATORS[kind]) throw new Error(`the fake does not update ${kind}`);
        if (opts.validate !== false) VALIDATORS[kind]!(body);
        if (body.kind !== kindName) throw new Error(`kind: must be ${kindName}`);
        if (body.metadata?.name !== name)
          throw new Error('metadata.name: must match the name of the request');
        if (kind === 'services' && body.spec?.clusterIP && body.spec.clusterIP !== existing.spec?.clusterIP)
          throw new Error(`spec.clusterIP: Invalid value: "${body.spec.clusterIP}": field is immutable`);
        if (kind === 'services') checkNodePorts(body, existing);
      } catch (e) {
        received.push({ kind, status: 422, object: body, at: arrived, method: 'PUT' });
        return status(
          res,
          422,
          'Invalid',
          `${kindName}${groupSuffix} "${name}" is invalid: ${(e as Error).message}`,
          name,
          kind,
        );
      }
      const sent = body.metadata?.resourceVersion;
      if (sent && sent !== existing.metadata.resourceVersion) {
        received.push({ kind, status: 409, object: body, at: arrived, method: 'PUT' });
        return status(
          res,
          409,
          'Conflict',
          `Operation cannot be fulfilled on ${kind}${groupSuffix} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
          name,
          kind,
        );
      }
      received.push({ kind, status: 200, object: body, at: arrived, method: 'PUT' });
      const specChanged = JSON.stringify(body.spec) !== JSON.stringify(existing.spec);
      const object = {
        ...body,
        metadata: {
          ...body.metadata,
          namespace: ns,
          uid: existing.metadata.uid,
          creationTimestamp: existing.metadata.creationTimestamp,
          generation: (existing.metadata.generation ?? 1) + (specChanged ? 1 : 0),
        },
        status: existing.status,
      };
      if (kind === 'services')
        object.spec = {
          ...object.spec,
          clusterIP: existing.spec.clusterIP,
          clusterIPs: existing.spec.clusterIPs,
        };
      put(kind, object, 'MODIFIED');
      if (kind === 'deployments') reconcileDeployment(object);
      return json(res, 200, object);
    }
    return status(res, 405, 'MethodNotAllowed', `${req.method} is not supported by the fake`);
  };

  const startWatch = (res: ServerResponse, w: WatchConn, from: string | undefined) => {
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    if (from !== undefined && from !== '' && from !== '0') {
      const since = Number(from);
      if (since < compactedAt) {
        writeEvent(res, 'ERROR', {
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Failure',
          message: `too old resource version: ${since} (${compactedAt})`,
          reason: 'Expired',
          code: 410,
        });
        return res.end();
      }
      for (const h of history)
        if (h.rv > since && matches(w, h.kind, h.object)) writeEvent(res, h.type, h.object);
    } else {
      for (const o of store.values())
        if (matches(w, KIND_OF[o.kind as string]!, o)) writeEvent(res, 'ADDED', o);
    }
    watches.add(w);
    res.on('close', () => watches.delete(w));
  };

  let inFlight = 0;
  let peak = 0;
  const server: Server = createServer((req, res) => {
    inFlight += 1;
    peak = Math.max(peak, inFlight);
    let counted = true;
    const done = () => {
      if (counted) inFlight -= 1;
      counted = false;
    };
    res.on('close', done);
    // a watch stays open: not a call in flight
    if (req.url?.includes('watch=true')) done();
    handler(req, res).catch((e) => {
      if (!res.headersSent) status(res, 500, 'InternalError', (e as Error).message);
      else res.destroy();
    });
  });
  let accepted = 0;
  server.on('connection', (s) => {
    accepted += 1;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    kubeconfig: (namespace = 'default') => ({
      clusters: [{ name: 'fake', server: url, skipTLSVerify: true }],
      users: [{ name: 'fake-user', token: 'fake-token' }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'fake-user', namespace }],
      currentContext: 'fake',
    }),
    writeKubeconfig: (path, namespace) => {
      // The file's spelling of the same (plain HTTP on loopback: client-node insists the
      // kubeconfig says so).
      const context = { cluster: 'fake', user: 'fake-user', ...(namespace ? { namespace } : {}) };
      writeFileSync(
        path,
        stringifyYaml({
          apiVersion: 'v1',
          kind: 'Config',
          clusters: [{ name: 'fake', cluster: { server: url, 'insecure-skip-tls-verify': true } }],
          users: [{ name: 'fake-user', user: { token: 'fake-token' } }],
          contexts: [{ name: 'fake', context }],
          'current-context': 'fake',
        }),
      );
      return path;
    },
    get: (kind, ns, name) => store.get(key(kind, ns, name)),
    list: (kind, ns) =>
      [...store.values()].filter(
        (o) => o.kind === KIND_NAMES[kind].kind && (!ns || o.metadata.namespace === ns),
      ),
    received,
    watchRequests,
    logRequests,
    openWatches: () => watches.size,
    connections: () => accepted,
    maxInFlight: () => peak,
    namespaces: () => [...namespaceObjs.values()],
    setPod(ns, jobName, state) {
      const pod = [...store.values()].find(
        (o) => o.kind === 'Pod' && o.metadata.namespace === ns && o.metadata.labels?.['job-name'] === jobName,
      );
      if (!pod) throw new Error(`no pod for job ${jobName}`);
      if (state.log !== undefined) appendLog(key('pods', ns, pod.metadata.name), Buffer.from(state.log));
      const startedAt = pod.status.startTime ?? new Date().toISOString();
      if (state.phase === 'Running') {
        const c = pod.spec.containers[0];
        updatePod(pod, {
          phase: 'Running',
          startTime: startedAt,
          containerStatuses: [
            {
              name: c.name,
              ready: true,
              restartCount: 0,
              image: c.image,
              imageID: '',
              started: true,
              state: { running: { startedAt } },
            },
          ],
        });
      } else {
        terminate(pod, state.exitCode ?? (state.phase === 'Succeeded' ? 0 : 1), startedAt);
      }
    },
    compact() {
      compactedAt = rv;
      history.length = 0;
    },
    fail(match) {
      failing = match === null ? undefined : (match ?? (() => true));
    },
    dropWatches() {
      for (const w of watches) w.res.destroy();
      watches.clear();
    },
    stallWatches() {
      watches.clear();
    },
    async close() {
      for (const { child } of running.values()) killGroup(child, 'SIGKILL');
      for (const w of watches) w.res.destroy();
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const KIND_OF: Record<string, Kind> = {
  ConfigMap: 'configmaps',
  Secret: 'secrets',
  Job: 'jobs',
  Pod: 'pods',
  Deployment: 'deployments',
  Service: 'services',
  Ingress: 'ingresses',
  HorizontalPodAutoscaler: 'horizontalpodautoscalers',
};

function matches(w: WatchConn, kind: Kind, o: Obj): boolean {
  return w.kind === kind && (!w.namespace || o.metadata.namespace === w.namespace) && selects(w.selector, o);
}

function parseSelector(s: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (s ?? '').split(',').filter(Boolean)) {
    const [k, v] = part.split('=');
    out[k!.trim()] = (v ?? '').trim();
  }
  return out;
}

function selects(sel: Record<string, string>, o: Obj): boolean {
  return Object.entries(sel).every(([k, v]) => o.metadata.labels?.[k] === v);
}

function writeEvent(res: ServerResponse, type: string, object: Obj) {
  if (!res.destroyed) res.write(`${JSON.stringify({ type, object })}\n`);
}

function json(res: ServerResponse, code: number, body: unknown) {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function status(
  res: ServerResponse,
  code: number,
  reason: string,
  message: string,
  name?: string,
  kind?: string,
) {
  json(res, code, {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    details: name ? { name, kind } : undefined,
    code,
  });
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals) {
  try {
    if (child.pid) process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

export function fakeNode(name: string, cpu: string, memory: string): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name } },
    status: {
      capacity: { cpu, memory, pods: '110' },
      allocatable: { cpu, memory, pods: '110' },
      conditions: [{ type: 'Ready', status: 'True' }],
    },
  };
}
