// Exposed services on Kubernetes (ExposedServices port): the objects of expose-objects.ts
// created or replaced on service create/update, deleted with the service; status and logs
// read as OSCAR's handlers read them (pkg/handlers/deployment.go); start/stop/restart as
// pkg/handlers/lifecycle.go does them (annotations on the Deployment keep the replicas a
// stop took away).
import {
  AppsV1Api,
  AutoscalingV1Api,
  CoreV1Api,
  type KubeConfig,
  NetworkingV1Api,
  type V1Deployment,
  type V1Pod,
} from '@kubernetes/client-node';
import { fail, isFlotillaError } from '../../core/errors.ts';
import { exposeSpec, isExposed } from '../../core/fdl/expose.ts';
import type { Service } from '../../core/fdl/service.ts';
import type { DeploymentLogs, DeploymentStatus, ExposedServices } from '../../core/ports.ts';
import {
  buildExposeObjects,
  EXPOSE_APP_LABEL,
  type ExposeObjects,
  exposeAppValue,
  exposeNames,
} from './expose-objects.ts';
import { CONTAINER_NAME, MANAGED_BY_LABEL, SERVICE_LABEL } from './objects.ts';

export const PREVIOUS_REPLICAS = 'oscar.grycap.io/previous-replicas';
export const STOPPED = 'oscar.grycap.io/stopped';
export const RESTARTED_AT = 'oscar.grycap.io/restarted-at';

export interface ExposedOptions {
  kubeConfig: KubeConfig;
  namespaceOf: (service: Service) => string;
  /** Before the first object goes to a namespace (per-user namespaces are made on demand). */
  ensureNamespace?: (namespace: string) => Promise<void>;
  ingressHost?: string;
  ingressClassName?: string;
  /** Log lines kept per pod at most. */
  maxTailLines?: number;
  logger?: { warn(obj: object, msg?: string): void };
}

type ApiError = { code?: number };
const codeOf = (e: unknown) => (e as ApiError).code;
const absentOk = async (call: () => Promise<unknown>) => {
  try {
    await call();
  } catch (e) {
    if (codeOf(e) !== 404) throw e;
  }
};

export function createExposedServices(opts: ExposedOptions): ExposedServices {
  const apps = opts.kubeConfig.makeApiClient(AppsV1Api);
  const core = opts.kubeConfig.makeApiClient(CoreV1Api);
  const net = opts.kubeConfig.makeApiClient(NetworkingV1Api);
  const autoscaling = opts.kubeConfig.makeApiClient(AutoscalingV1Api);
  const maxTail = opts.maxTailLines ?? 5000;

  const objectsOf = (s: Service): ExposeObjects | undefined => {
    const spec = exposeSpec(s);
    if (!spec) return undefined;
    if (!s.image) return fail('BAD_REQUEST', 'image: an exposed service needs an image');
    return buildExposeObjects({
      namespace: opts.namespaceOf(s),
      name: s.name,
      image: s.image,
      script: s.script,
      cpu: s.cpu,
      memory: s.memory,
      variables: s.environment?.variables,
      secrets: s.environment?.secrets,
      token: s.token,
      spec,
      ingressHost: opts.ingressHost,
      ingressClassName: opts.ingressClassName,
    });
  };

  /** Create, or replace what is there (keeping what the API server owns). */
  const upsert = async <
    T extends {
      kind?: string;
      metadata?: { name?: string; resourceVersion?: string; labels?: Record<string, string> };
    },
  >(
    body: T,
    api: {
      create: (b: T) => Promise<unknown>;
      /** Absent: an unconditional replace (no read: Secrets are never read back). */
      read?: () => Promise<T>;
      replace: (b: T) => Promise<unknown>;
      /** Deletes it again when a later step of the same apply fails. */
      remove: () => Promise<unknown>;
    },
    merge: (desired: T, existing: T) => T = (d) => d,
  ) => {
    try {
      await api.create(body);
      return true;
    } catch (e) {
      if (codeOf(e) !== 409) throw e;
    }
    if (!api.read) {
      await api.replace(body);
      return false;
    }
    const existing = await api.read();
    // Only our own object for this service is replaced, never one someone else made there.
    const mine = existing.metadata?.labels ?? {};
    if (
      mine[MANAGED_BY_LABEL] !== 'flotilla' ||
      mine[SERVICE_LABEL] !== body.metadata?.labels?.[SERVICE_LABEL]
    ) {
      fail(
        'CONFLICT',
        `a ${body.kind} named "${body.metadata?.name}" that this service did not make is in the namespace`,
      );
    }
    const next = merge(structuredClone(body), existing);
    next.metadata = { ...next.metadata, resourceVersion: existing.metadata?.resourceVersion };
    await api.replace(next);
    return false;
  };

  const removeObjects = async (s: Pick<Service, 'name'>, namespace: string) => {
    const n = exposeNames(s.name);
    const ns = { namespace };
    // Every call settles before an error is thrown: none is still on its way when the caller
    // answers (a refused delete must not go on removing things after it said no).
    const all = async (calls: Array<() => Promise<unknown>>) => {
      const failed = (await Promise.allSettled(calls.map((c) => absentOk(c)))).find(
        (r): r is PromiseRejectedResult => r.status === 'rejected',
      );
      if (failed) throw failed.reason;
    };
    await all([
      () => autoscaling.deleteNamespacedHorizontalPodAutoscaler({ ...ns, name: n.hpa }),
      () => apps.deleteNamespacedDeployment({ ...ns, name: n.deployment, propagationPolicy: 'Background' }),
      () => core.deleteNamespacedService({ ...ns, name: n.service }),
      () => net.deleteNamespacedIngress({ ...ns, name: n.ingress }),
      () => core.deleteNamespacedSecret({ ...ns, name: n.authSecret }),
    ]);
    // What the pods mount last: the Deployment is gone first.
    await all([
      () => core.deleteNamespacedConfigMap({ ...ns, name: n.configMap }),
      () => core.deleteNamespacedSecret({ ...ns, name: n.envSecret }),
    ]);
  };

  const readDeployment = async (s: Service): Promise<V1Deployment | undefined> => {
    try {
      return await apps.readNamespacedDeployment({
        name: exposeNames(s.name).deployment,
        namespace: opts.namespaceOf(s),
      });
    } catch (e) {
      if (codeOf(e) === 404) return undefined;
      throw e;
    }
  };

  const podsOf = async (s: Service): Promise<V1Pod[]> =>
    (
      await core.listNamespacedPod({
        namespace: opts.namespaceOf(s),
        labelSelector: `${EXPOSE_APP_LABEL}=${exposeAppValue(s.name)}`,
      })
    ).items;

  const unavailable = (s: Service, reason: string): DeploymentStatus => ({
    service_name: s.name,
    namespace: opts.namespaceOf(s),
    state: 'unavailable',
    reason,
    active_instances: 0,
    affected_instances: 0,
    resource_kind: 'unavailable',
  });

  const status = async (s: Service): Promise<DeploymentStatus> => {
    if (!isExposed(s))
      return unavailable(s, 'Current deployment visibility is unavailable for this service runtime.');
    const [deployment, pods] = await Promise.all([readDeployment(s), podsOf(s)]);
    if (!deployment) return unavailable(s, 'Current deployment resources are unavailable.');
    return statusFromDeployment(s.name, opts.namespaceOf(s), deployment, pods);
  };

  /** Creates or replaces; when a step fails, what this call created is deleted again (only that). */
  const applyObjects = async (s: Service, objs: ExposeObjects | undefined, previous?: Service) => {
    const made: Array<() => Promise<unknown>> = [];
    try {
      await applySteps(s, objs, made, previous);
    } catch (e) {
      for (const undo of made.reverse()) await absentOk(undo).catch(() => undefined);
      throw e;
    }
  };

  const applySteps = async (
    s: Service,
    objs: ExposeObjects | undefined,
    made: Array<() => Promise<unknown>>,
    previous?: Service,
  ) => {
    const up: typeof upsert = async (body, api, merge) => {
      const created = await upsert(body, api, merge);
      if (created) made.push(() => (api as unknown as { remove: () => Promise<unknown> }).remove());
      return created;
    };
    if (previous && isExposed(previous)) {
      const before = opts.namespaceOf(previous);
      if (!objs || before !== opts.namespaceOf(s)) await removeObjects(previous, before);
    }
    if (!objs) return;
    const namespace = opts.namespaceOf(s);
    await opts.ensureNamespace?.(namespace);
    const n = exposeNames(s.name);
    await up(objs.configMap, {
      create: (body) => core.createNamespacedConfigMap({ namespace, body }),
      remove: () => core.deleteNamespacedConfigMap({ namespace, name: n.configMap }),
      read: () => core.readNamespacedConfigMap({ namespace, name: n.configMap }),
      replace: (body) => core.replaceNamespacedConfigMap({ namespace, name: n.configMap, body }),
    });
    if (objs.envSecret) {
      await up(objs.envSecret, {
        create: (body) => core.createNamespacedSecret({ namespace, body }),
        remove: () => core.deleteNamespacedSecret({ namespace, name: n.envSecret }),
        replace: (body) => core.replaceNamespacedSecret({ namespace, name: n.envSecret, body }),
      });
    } else {
      await absentOk(() => core.deleteNamespacedSecret({ namespace, name: n.envSecret }));
    }
    let stopped = false;
    await up(
      objs.deployment,
      {
        create: (body) => apps.createNamespacedDeployment({ namespace, body }),
        remove: () =>
          apps.deleteNamespacedDeployment({ namespace, name: n.deployment, propagationPolicy: 'Background' }),
        read: () => apps.readNamespacedDeployment({ namespace, name: n.deployment }),
        replace: (body) => apps.replaceNamespacedDeployment({ namespace, name: n.deployment, body }),
      },
      (desired, existing) => {
        // A stopped service stays stopped through an update (start brings it back).
        const notes = existing.metadata?.annotations ?? {};
        if (notes[STOPPED] === 'true') {
          stopped = true;
          desired.spec!.replicas = 0;
          desired.metadata!.annotations = { ...desired.metadata!.annotations, ...notes };
        }
        const restarted = existing.spec?.template?.metadata?.annotations?.[RESTARTED_AT];
        if (restarted) {
          desired.spec!.template.metadata!.annotations = { [RESTARTED_AT]: restarted };
        }
        return desired;
      },
    );
    if (!stopped) {
      await up(objs.hpa, {
        create: (body) => autoscaling.createNamespacedHorizontalPodAutoscaler({ namespace, body }),
        remove: () => autoscaling.deleteNamespacedHorizontalPodAutoscaler({ namespace, name: n.hpa }),
        read: () => autoscaling.readNamespacedHorizontalPodAutoscaler({ namespace, name: n.hpa }),
        replace: (body) =>
          autoscaling.replaceNamespacedHorizontalPodAutoscaler({ namespace, name: n.hpa, body }),
      });
    }
    await up(
      objs.service,
      {
        create: (body) => core.createNamespacedService({ namespace, body }),
        remove: () => core.deleteNamespacedService({ namespace, name: n.service }),
        read: () => core.readNamespacedService({ namespace, name: n.service }),
        replace: (body) => core.replaceNamespacedService({ namespace, name: n.service, body }),
      },
      // spec.clusterIP is immutable and the API server's to choose.
      (desired, existing) => {
        if (existing.spec?.clusterIP) desired.spec!.clusterIP = existing.spec.clusterIP;
        if (existing.spec?.clusterIPs) desired.spec!.clusterIPs = existing.spec.clusterIPs;
        return desired;
      },
    );
    if (objs.ingress) {
      await up(objs.ingress, {
        create: (body) => net.createNamespacedIngress({ namespace, body }),
        remove: () => net.deleteNamespacedIngress({ namespace, name: n.ingress }),
        read: () => net.readNamespacedIngress({ namespace, name: n.ingress }),
        replace: (body) => net.replaceNamespacedIngress({ namespace, name: n.ingress, body }),
      });
    } else {
      await absentOk(() => net.deleteNamespacedIngress({ namespace, name: n.ingress }));
    }
    if (objs.authSecret) {
      await up(objs.authSecret, {
        create: (body) => core.createNamespacedSecret({ namespace, body }),
        remove: () => core.deleteNamespacedSecret({ namespace, name: n.authSecret }),
        replace: (body) => core.replaceNamespacedSecret({ namespace, name: n.authSecret, body }),
      });
    } else {
      await absentOk(() => core.deleteNamespacedSecret({ namespace, name: n.authSecret }));
    }
  };

  return {
    namespaceOf: opts.namespaceOf,

    async apply(s, previous) {
      const objs = objectsOf(s); // checks expose first: a 400 before any call
      try {
        await applyObjects(s, objs, previous);
      } catch (e) {
        throw clusterError(e, `cannot deploy exposed service "${s.name}"`);
      }
    },

    async remove(s) {
      if (!isExposed(s)) return;
      try {
        await removeObjects(s, opts.namespaceOf(s));
      } catch (e) {
        throw clusterError(e, `cannot remove the workload of exposed service "${s.name}"`);
      }
    },

    status: (s) =>
      status(s).catch((e) => Promise.reject(clusterError(e, `cannot read the deployment of "${s.name}"`))),

    async logs(s, { tailLines, timestamps }) {
      const out: DeploymentLogs = { service_name: s.name, available: false, entries: [] };
      const pods = isExposed(s) ? await podsOf(s) : [];
      if (pods.length === 0) return { ...out, message: 'Deployment logs are unavailable for this service.' };
      const tail = Math.min(Math.max(tailLines, 1), maxTail);
      const namespace = opts.namespaceOf(s);
      const texts = await Promise.all(
        pods.map((p) =>
          core
            .readNamespacedPodLog({
              namespace,
              name: p.metadata!.name!,
              container: CONTAINER_NAME,
              tailLines: tail,
              timestamps: true,
            })
            .catch((e) => {
              opts.logger?.warn({ pod: p.metadata?.name, code: codeOf(e) }, 'cannot read an exposed pod log');
              return '';
            }),
        ),
      );
      const entries: Array<{ at: string; message: string }> = [];
      for (const text of texts) {
        for (const line of (text ?? '').split('\n')) {
          if (!line) continue;
          const space = line.indexOf(' ');
          const at = space > 0 ? line.slice(0, space) : '';
          const stamped = /^\d{4}-\d\d-\d\dT/.test(at);
          entries.push({ at: stamped ? at : '', message: stamped ? line.slice(space + 1) : line });
        }
      }
      entries.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
      const last = entries.slice(-tail);
      if (last.length === 0) return { ...out, message: 'Deployment logs are not yet available.' };
      return {
        service_name: s.name,
        available: true,
        entries: last.map((e) =>
          timestamps && e.at ? { timestamp: e.at, message: e.message } : { message: e.message },
        ),
      };
    },

    async lifecycle(s, action) {
      const spec = exposeSpec(s);
      if (!spec) return fail('BAD_REQUEST', `service "${s.name}" is not exposed`);
      const namespace = opts.namespaceOf(s);
      const n = exposeNames(s.name);
      const deployment = await readDeployment(s);
      if (!deployment)
        return fail('NOT_FOUND', `the deployment of service "${s.name}" is not in the cluster`);
      const notes = { ...deployment.metadata?.annotations };
      if (action === 'stop') {
        const replicas = deployment.spec?.replicas ?? 0;
        if (replicas > 0) notes[PREVIOUS_REPLICAS] = String(replicas);
        notes[STOPPED] = 'true';
        deployment.spec!.replicas = 0;
      } else if (action === 'start') {
        const previous = Number.parseInt(notes[PREVIOUS_REPLICAS] ?? '', 10);
        deployment.spec!.replicas = previous > 0 ? previous : spec.minScale > 0 ? spec.minScale : 1;
        notes[STOPPED] = 'false';
      } else {
        const tpl = deployment.spec!.template;
        tpl.metadata = {
          ...tpl.metadata,
          annotations: { ...tpl.metadata?.annotations, [RESTARTED_AT]: new Date().toISOString() },
        };
      }
      deployment.metadata = { ...deployment.metadata, annotations: notes };
      await apps.replaceNamespacedDeployment({ namespace, name: n.deployment, body: deployment });
      if (action === 'stop') {
        await absentOk(() => autoscaling.deleteNamespacedHorizontalPodAutoscaler({ namespace, name: n.hpa }));
      } else if (action === 'start') {
        const objs = objectsOf(s)!;
        try {
          await autoscaling.createNamespacedHorizontalPodAutoscaler({ namespace, body: objs.hpa });
        } catch (e) {
          if (codeOf(e) !== 409) throw e;
        }
      }
      return status(s);
    },
  };
}

/**
 * An API server's refusal as a Flotilla error: 422 (the object is invalid: the FDL asks for
 * something this cluster refuses, e.g. a node port in use) is the caller's 400 with the
 * server's message; anything else is 503. Already-Flotilla errors pass unchanged.
 */
function clusterError(e: unknown, what: string): unknown {
  if (isFlotillaError(e)) return e;
  const code = codeOf(e);
  let message = '';
  const body = (e as { body?: unknown }).body;
  try {
    message = (typeof body === 'string' ? JSON.parse(body) : (body as { message?: string }))?.message ?? '';
  } catch {
    message = '';
  }
  const detail = message || (typeof code === 'number' ? `HTTP ${code}` : '');
  // No answer (a connection refused or cut: code is then a string such as ECONNRESET).
  const unreached = `the Kubernetes API cannot be reached (${(code as unknown as string) || (e as Error).message || String(e)})`;
  try {
    fail(
      code === 422 || code === 409 ? 'BAD_REQUEST' : 'UNAVAILABLE',
      `${what}: ${detail ? `the cluster answered ${detail}` : unreached}`,
    );
  } catch (err) {
    return err;
  }
  return e;
}

/** OSCAR's deploymentStatusFromDeployment. */
export function statusFromDeployment(
  name: string,
  namespace: string,
  d: V1Deployment,
  pods: V1Pod[],
): DeploymentStatus {
  const desired = Math.max(0, d.spec?.replicas ?? 1);
  const observed = Math.max(0, d.status?.replicas ?? 0);
  const available = d.status?.availableReplicas ?? 0;
  const affected = Math.max(0, observed - available);
  const crash = pods
    .flatMap((p) => p.status?.containerStatuses ?? [])
    .find((c) => c.state?.waiting?.reason === 'CrashLoopBackOff');
  const conditions = d.status?.conditions ?? [];
  const failedCondition = conditions.some(
    (c) =>
      (c.type === 'Progressing' && c.status === 'False') ||
      (c.type === 'ReplicaFailure' && c.status === 'True'),
  );
  let state: DeploymentStatus['state'];
  if (desired === 0) state = 'stopped';
  else if (available >= desired) state = 'ready';
  else if (available > 0) state = 'degraded';
  else if (crash || failedCondition) state = 'failed';
  else state = 'pending';
  const latest = [...conditions]
    .filter((c) => c.lastTransitionTime)
    .sort((a, b) => new Date(b.lastTransitionTime!).getTime() - new Date(a.lastTransitionTime!).getTime())[0];
  let reason = latest?.message ?? '';
  if (state === 'stopped') reason = 'Deployment is stopped.';
  if (state === 'failed' && crash) reason = crash.state?.waiting?.message || 'CrashLoopBackOff';
  if (!reason && state === 'degraded') reason = `${affected} of ${desired} instances are affected.`;
  if (!reason && state === 'ready') reason = 'Deployment is ready.';
  const at = latest?.lastTransitionTime;
  return {
    service_name: name,
    namespace,
    state,
    ...(reason ? { reason } : {}),
    ...(at ? { last_transition_time: new Date(at).toISOString() } : {}),
    active_instances: observed,
    affected_instances: affected,
    resource_kind: 'exposed_service',
  };
}
