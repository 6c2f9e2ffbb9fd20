// The objects of an exposed service (FDL `expose`), built the way OSCAR builds them
// (grycap/oscar pkg/backends/resources/expose.go and pkg/handlers/lifecycle.go). Pure: same
// service → same objects.
//
// What mirrors OSCAR:
// - Deployment `<name>-dpl`, replicas = min_scale, selector and pod label
//   `app=oscar-svc-exp-<name>`; container "oscar-container" with the service image, its
//   cpu/memory, the script mounted from a ConfigMap at /oscar/config (mode 0777, not read-only)
//   and run as `/bin/sh -c /oscar/config/script.sh`, or the image's own command with
//   default_command; container port "podport" = api_port; liveness (30 s delay, every 10 s)
//   and readiness (10 s delay, every 5 s) HTTP probes on health_path (prefixed with the API
//   path under rewrite_target), 2 s timeout; environment.secrets through envFrom of a Secret;
// - autoscaling/v1 HPA `<name>-hpa` on the Deployment: min_scale..max_scale at cpu_threshold %;
// - Service `<name>-svc`: port "serviceport" 80 → api_port, ClusterIP, or NodePort with
//   nodePort (then no Ingress, as in OSCAR);
// - Ingress `<name>-ing` on path `/system/services/<name>/exposed/?(.*)` (Prefix) to the
//   Service's port 80, nginx annotations rewrite-target (`/$1`, or the API path + `/$1` with
//   rewrite_target) and use-regex; with set_auth, basic auth from Secret
//   `<name>-auth-expose` (user = the service name, password = the service token); with an
//   ingress host, a rule and TLS for it (TLS secret named after the host).
// Where it differs, and why:
// - every object carries `oscar_service=<name>` and `app.kubernetes.io/managed-by=flotilla`,
//   so removal finds them and nothing else;
// - the ConfigMap holds script.sh only: OSCAR's also holds function_config.yaml with the
//   storage providers' keys; an exposed service's pod runs no supervisor, and keys never go
//   in a ConfigMap;
// - the htpasswd line uses `{SSHA}` (salted SHA-1, which nginx reads) instead of APR1-MD5;
//   the salt is derived from the token so the object is deterministic;
// - spec.ingressClassName is set (OSCAR writes it as an annotation named
//   "spec.ingressClassName", which no controller reads);
// - HPA minReplicas is at least 1 (the API refuses 0; min_scale 0 still starts the
//   Deployment at 0 replicas, which the HPA leaves alone);
// - api_port as a list (OSCAR v4.1's type): the first port is OSCAR's; each further port p
//   gets container port "podport-<i>" and a Service port p → p (nodePort[i] when given);
// - the environment Secret is `<name>-expose-env`, not OSCAR's `<name>`: with `<name>`, a
//   service named `x-auth-expose` would own the same Secret name as service x's basic-auth
//   Secret and, on create or update, overwrite it with its own `auth` key (so set x's
//   password). Every name here ends in a suffix no other object name of a job or exposed
//   service can end in, so no service's objects can collide with another's;
// - automountServiceAccountToken false, and refresh_token never reaches the Secret.
import { createHash } from 'node:crypto';
import type {
  V1ConfigMap,
  V1Container,
  V1Deployment,
  V1HorizontalPodAutoscaler,
  V1Ingress,
  V1Secret,
  V1Service,
  V1ServicePort,
} from '@kubernetes/client-node';
import type { ExposeSpec } from '../../core/fdl/expose.ts';
import { isOwnerTokenKey } from '../../core/fdl/owner-token.ts';
import { CONTAINER_NAME, MANAGED_BY_LABEL, SERVICE_LABEL } from './objects.ts';

export const EXPOSE_APP_LABEL = 'app';
export const exposeAppValue = (name: string): string => `oscar-svc-exp-${name}`;
export const exposeNames = (name: string) => ({
  deployment: `${name}-dpl`,
  hpa: `${name}-hpa`,
  service: `${name}-svc`,
  ingress: `${name}-ing`,
  authSecret: `${name}-auth-expose`,
  configMap: name,
  envSecret: `${name}-expose-env`,
});
export const exposedApiPath = (name: string): string => `/system/services/${name}/exposed`;
const CONFIG_PATH = '/oscar/config';

export interface ExposeInput {
  namespace: string;
  name: string;
  image: string;
  script: string;
  cpu?: string;
  memory?: string;
  variables?: Record<string, string>;
  secrets?: Record<string, string>;
  /** The service token: the basic-auth password with set_auth. */
  token: string;
  spec: ExposeSpec;
  /** OSCAR's cfg.IngressHost: undefined for a host-less rule. */
  ingressHost?: string;
  ingressClassName?: string;
}

export interface ExposeObjects {
  configMap: V1ConfigMap;
  envSecret: V1Secret | undefined;
  deployment: V1Deployment;
  hpa: V1HorizontalPodAutoscaler;
  service: V1Service;
  /** Undefined for a NodePort service. */
  ingress: V1Ingress | undefined;
  /** Undefined without set_auth or without an Ingress. */
  authSecret: V1Secret | undefined;
}

const sorted = (m: Record<string, string> | undefined) =>
  Object.entries(m ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

/** nginx's `{SSHA}` htpasswd form: base64(sha1(password ‖ salt) ‖ salt). */
export const sshaHtpasswd = (user: string, password: string): string => {
  const salt = createHash('sha256').update(`flotilla-expose:${password}`).digest().subarray(0, 8);
  const digest = createHash('sha1').update(password).update(salt).digest();
  return `${user}:{SSHA}${Buffer.concat([digest, salt]).toString('base64')}`;
};

export function buildExposeObjects(input: ExposeInput): ExposeObjects {
  const { namespace, name, spec } = input;
  const n = exposeNames(name);
  const own = { [SERVICE_LABEL]: name, [MANAGED_BY_LABEL]: 'flotilla' };
  const meta = (objName: string) => ({ name: objName, namespace, labels: { ...own } });
  const apiPath = exposedApiPath(name);

  const configMap: V1ConfigMap = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: meta(n.configMap),
    data: { 'script.sh': input.script },
  };
  const secretEntries = sorted(input.secrets).filter(([k]) => !isOwnerTokenKey(k));
  const envSecret: V1Secret | undefined =
    secretEntries.length === 0
      ? undefined
      : {
          apiVersion: 'v1',
          kind: 'Secret',
          type: 'Opaque',
          metadata: meta(n.envSecret),
          data: Object.fromEntries(
            secretEntries.map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')]),
          ),
        };

  const limits: Record<string, string> = {};
  if (input.cpu) limits.cpu = input.cpu;
  if (input.memory) limits.memory = input.memory;
  const probePath = spec.rewriteTarget ? `${apiPath}${spec.healthPath}` : spec.healthPath;
  const probe = { httpGet: { path: probePath, port: 'podport' }, timeoutSeconds: 2 };
  const container: V1Container = {
    name: CONTAINER_NAME,
    image: input.image,
    imagePullPolicy: 'Always',
    ...(spec.defaultCommand ? {} : { command: ['/bin/sh'], args: ['-c', `${CONFIG_PATH}/script.sh`] }),
    ports: spec.apiPorts.map((p, i) => ({ name: i === 0 ? 'podport' : `podport-${i}`, containerPort: p })),
    env: sorted(input.variables).map(([k, value]) => ({ name: k, value })),
    ...(envSecret ? { envFrom: [{ secretRef: { name: n.envSecret } }] } : {}),
    resources: Object.keys(limits).length > 0 ? { limits, requests: { ...limits } } : {},
    volumeMounts: [{ name: 'oscar-config', mountPath: CONFIG_PATH, readOnly: false }],
    livenessProbe: { ...probe, initialDelaySeconds: 30, periodSeconds: 10 },
    readinessProbe: { ...probe, initialDelaySeconds: 10, periodSeconds: 5 },
  };
  const appLabel = { [EXPOSE_APP_LABEL]: exposeAppValue(name) };
  const deployment: V1Deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(n.deployment),
    spec: {
      replicas: spec.minScale,
      selector: { matchLabels: { ...appLabel } },
      template: {
        metadata: { labels: { ...appLabel, ...own } },
        spec: {
          automountServiceAccountToken: false,
          containers: [container],
          volumes: [{ name: 'oscar-config', configMap: { name: n.configMap, defaultMode: 0o777 } }],
        },
      },
    },
  };
  const hpa: V1HorizontalPodAutoscaler = {
    apiVersion: 'autoscaling/v1',
    kind: 'HorizontalPodAutoscaler',
    metadata: meta(n.hpa),
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: n.deployment },
      minReplicas: Math.max(1, spec.minScale),
      maxReplicas: spec.maxScale,
      targetCPUUtilizationPercentage: spec.cpuThreshold,
    },
  };
  const nodePort = spec.nodePorts.some((p) => p !== 0);
  const ports: V1ServicePort[] = spec.apiPorts.map((p, i) => ({
    name: i === 0 ? 'serviceport' : `port-${p}`,
    port: i === 0 ? 80 : p,
    targetPort: p,
    ...(spec.nodePorts[i] ? { nodePort: spec.nodePorts[i] } : {}),
  }));
  const service: V1Service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(n.service),
    spec: { type: nodePort ? 'NodePort' : 'ClusterIP', ports, selector: { ...appLabel } },
  };
  let ingress: V1Ingress | undefined;
  let authSecret: V1Secret | undefined;
  if (!nodePort) {
    const annotations: Record<string, string> = {
      'nginx.ingress.kubernetes.io/rewrite-target': spec.rewriteTarget ? `${apiPath}/$1` : '/$1',
      'nginx.ingress.kubernetes.io/use-regex': 'true',
    };
    if (spec.setAuth) {
      annotations['nginx.ingress.kubernetes.io/auth-type'] = 'basic';
      annotations['nginx.ingress.kubernetes.io/auth-secret'] = n.authSecret;
      annotations['nginx.ingress.kubernetes.io/auth-realm'] = 'Authentication Required';
    }
    const host = input.ingressHost;
    ingress = {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { ...meta(n.ingress), annotations },
      spec: {
        ingressClassName: input.ingressClassName ?? 'nginx',
        ...(host ? { tls: [{ hosts: [host], secretName: host }] } : {}),
        rules: [
          {
            ...(host ? { host } : {}),
            http: {
              paths: [
                {
                  path: `${apiPath}/?(.*)`,
                  pathType: 'Prefix',
                  backend: { service: { name: n.service, port: { number: 80 } } },
                },
              ],
            },
          },
        ],
      },
    };
    if (spec.setAuth) {
      authSecret = {
        apiVersion: 'v1',
        kind: 'Secret',
        type: 'Opaque',
        metadata: meta(n.authSecret),
        data: { auth: Buffer.from(sshaHtpasswd(name, input.token), 'utf8').toString('base64') },
      };
    }
  }
  return { configMap, envSecret, deployment, hpa, service, ingress, authSecret };
}
