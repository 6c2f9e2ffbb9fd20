// The objects one invocation needs on Kubernetes: a ConfigMap (script + supervisor config), a
// Secret (environment.secrets) and a batch/v1 Job. Pure: no I/O, same input → same objects.
//
// What this mirrors from OSCAR (grycap/oscar pkg/types/service.go ToPodSpec, pkg/handlers/job.go):
// - container "oscar-container" with the service image, imagePullPolicy Always, command
//   `/bin/sh -c 'echo $EVENT | /oscar/bin/supervisor'`; EVENT, JOB_UUID and RESOURCE_ID
//   (spec.nodeName) in its env after the service's variables;
// - the script and function_config.yaml mounted read-only at /oscar/config (volume oscar-config);
// - environment.secrets through envFrom of a Secret, never as plain env values;
// - backoffLimit 0, restartPolicy Never, labels and annotations of the service on the Job and
//   its pod template, plus `oscar_service`;
// - cpu/memory as limits (OSCAR's CreateResources).
// Where it differs, and why:
// - the supervisor binary comes from an init container into an emptyDir mounted at /oscar/bin,
//   not from OSCAR's cluster-wide PVC `oscar-pvc`: nothing to provision in the cluster first;
// - one ConfigMap and one Secret per job (named after the job), not per service: a job keeps
//   the script it was started with, and cleanup is "delete what carries oscar_job=<id>";
// - label `oscar_job=<id>` on everything, so one watch per namespace finds a job's pod;
// - requests = limits set explicitly (Kubernetes would default requests to limits anyway);
// - storage_providers (OSCAR's shape: minio.default with the cluster's keys, plus the service's
//   own providers) make function_config.yaml secret: it then goes into a second Secret
//   (<job>-storage), projected with the ConfigMap's script.sh at the same /oscar/config, so the
//   supervisor finds the same files while no key sits in a ConfigMap, annotation or label.
//   minio.default carries keys scoped to the service's inputs (read) and outputs (write), not
//   the admin's;
// - environment.secrets.refresh_token is dropped here too (it never reaches a job), and env
//   names are sorted so the objects are deterministic (Go map order is random in OSCAR);
// - automountServiceAccountToken false: the job has no business with the API server;
// - activeDeadlineSeconds from the job timeout as a cluster-side backstop.
import { createHash } from 'node:crypto';
import type { V1ConfigMap, V1EnvVar, V1Job, V1Secret } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { isOwnerTokenKey } from '../../core/fdl/owner-token.ts';

export const CONTAINER_NAME = 'oscar-container';
export const SUPERVISOR_CONTAINER_NAME = 'oscar-supervisor';
export const SERVICE_LABEL = 'oscar_service';
export const JOB_LABEL = 'oscar_job';
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
const BIN_PATH = '/oscar/bin';
const CONFIG_PATH = '/oscar/config';

export interface SupervisorImage {
  /** Image that holds the faas-supervisor binary. */
  image: string;
  /** Path of the binary inside that image. */
  path: string;
}

export const DEFAULT_SUPERVISOR: SupervisorImage = {
  image: 'ghcr.io/grycap/faas-supervisor:latest',
  path: '/supervisor',
};

/** What one invocation needs, independent of where it came from (a Service or an ExecutionRequest). */
export interface KubeJobInput {
  namespace: string;
  jobId: string;
  serviceName: string;
  image: string;
  script: string;
  event: string;
  /** Plain environment (the service's variables and the input's extra variables). */
  variables: Record<string, string>;
  /** Goes into the Secret only. refresh_token is dropped whatever the caller passed. */
  secrets: Record<string, string>;
  cpu?: string;
  memory?: string;
  logLevel?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  input?: unknown[];
  output?: unknown[];
  timeoutMs?: number;
  supervisor?: SupervisorImage;
  /** Seconds a finished Job stays for inspection before Kubernetes removes it. */
  ttlSecondsAfterFinished?: number;
  /** OSCAR's storage_providers block for the supervisor (kind → id → endpoint and keys). */
  storageProviders?: StorageProviders;
}

export type StorageProviders = Record<string, Record<string, Record<string, unknown>>>;

export interface KubeJobObjects {
  configMap: V1ConfigMap;
  secret: V1Secret | undefined;
  /** function_config.yaml when it carries storage keys. */
  storageSecret: V1Secret | undefined;
  job: V1Job;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?$/;

/**
 * The Job's name (and `oscar_job` label) for a job id: the id itself when it is a short DNS
 * label (a UUID is), else a stable hash of it, so the same job always maps to the same Job.
 */
export const kubeJobName = (jobId: string): string =>
  DNS_LABEL.test(jobId) ? jobId : `job-${createHash('sha256').update(jobId).digest('hex').slice(0, 40)}`;

export const configMapName = (jobId: string): string => `${kubeJobName(jobId)}-config`;
export const secretName = (jobId: string): string => `${kubeJobName(jobId)}-env`;
export const storageSecretName = (jobId: string): string => `${kubeJobName(jobId)}-storage`;

const sortedEntries = (m: Record<string, string> | undefined) =>
  Object.entries(m ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

export function buildJobObjects(input: KubeJobInput): KubeJobObjects {
  const { namespace, jobId, serviceName } = input;
  const name = kubeJobName(jobId);
  const supervisor = input.supervisor ?? DEFAULT_SUPERVISOR;
  // The service's labels first: ours win, so a user label cannot hide a job from the watch.
  const labels: Record<string, string> = {
    ...input.labels,
    [SERVICE_LABEL]: serviceName,
    [JOB_LABEL]: name,
    [MANAGED_BY_LABEL]: 'flotilla',
  };
  const annotations =
    input.annotations && Object.keys(input.annotations).length > 0 ? { ...input.annotations } : undefined;
  const ownLabels = { [SERVICE_LABEL]: serviceName, [JOB_LABEL]: name, [MANAGED_BY_LABEL]: 'flotilla' };

  const functionConfig: Record<string, unknown> = {
    name: serviceName,
    image: input.image,
    script: `${CONFIG_PATH}/script.sh`,
    log_level: input.logLevel ?? 'INFO',
  };
  if (input.input?.length) functionConfig.input = input.input;
  if (input.output?.length) functionConfig.output = input.output;
  const providers = input.storageProviders;
  const withKeys = !!providers && Object.keys(providers).length > 0;
  if (withKeys) functionConfig.storage_providers = providers;

  const configMap: V1ConfigMap = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: configMapName(jobId), namespace, labels: ownLabels },
    data: withKeys
      ? { 'script.sh': input.script }
      : { 'script.sh': input.script, 'function_config.yaml': stringify(functionConfig) },
  };
  const storageSecret: V1Secret | undefined = withKeys
    ? {
        apiVersion: 'v1',
        kind: 'Secret',
        type: 'Opaque',
        metadata: { name: storageSecretName(jobId), namespace, labels: ownLabels },
        data: { 'function_config.yaml': Buffer.from(stringify(functionConfig), 'utf8').toString('base64') },
      }
    : undefined;

  const secretEntries = sortedEntries(input.secrets).filter(([k]) => !isOwnerTokenKey(k));
  const secret: V1Secret | undefined =
    secretEntries.length === 0
      ? undefined
      : {
          apiVersion: 'v1',
          kind: 'Secret',
          type: 'Opaque',
          metadata: { name: secretName(jobId), namespace, labels: ownLabels },
          data: Object.fromEntries(
            secretEntries.map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')]),
          ),
        };

  const env: V1EnvVar[] = [
    ...sortedEntries(input.variables).map(([name, value]) => ({ name, value })),
    { name: 'EVENT', value: input.event },
    { name: 'JOB_UUID', value: jobId },
    { name: 'OSCAR_SERVICE_NAME', value: serviceName },
    { name: 'RESOURCE_ID', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
  ];

  const limits: Record<string, string> = {};
  if (input.cpu) limits.cpu = input.cpu;
  if (input.memory) limits.memory = input.memory;
  const resources = Object.keys(limits).length > 0 ? { limits, requests: { ...limits } } : {};

  const templateMeta = annotations ? { labels, annotations } : { labels };
  const job: V1Job = {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, namespace, ...templateMeta },
    spec: {
      backoffLimit: 0,
      ttlSecondsAfterFinished: input.ttlSecondsAfterFinished ?? 3600,
      ...(input.timeoutMs ? { activeDeadlineSeconds: Math.max(1, Math.ceil(input.timeoutMs / 1000)) } : {}),
      template: {
        metadata: templateMeta,
        spec: {
          restartPolicy: 'Never',
          automountServiceAccountToken: false,
          initContainers: [
            {
              name: SUPERVISOR_CONTAINER_NAME,
              image: supervisor.image,
              command: [
                '/bin/sh',
                '-c',
                `cp ${supervisor.path} ${BIN_PATH}/supervisor && chmod 0555 ${BIN_PATH}/supervisor`,
              ],
              volumeMounts: [{ name: 'oscar-volume', mountPath: BIN_PATH }],
            },
          ],
          containers: [
            {
              name: CONTAINER_NAME,
              image: input.image,
              imagePullPolicy: 'Always',
              command: ['/bin/sh'],
              args: ['-c', `echo $EVENT | ${BIN_PATH}/supervisor`],
              env,
              ...(secret ? { envFrom: [{ secretRef: { name: secretName(jobId) } }] } : {}),
              resources,
              volumeMounts: [
                { name: 'oscar-config', mountPath: CONFIG_PATH, readOnly: true },
                { name: 'oscar-volume', mountPath: BIN_PATH, readOnly: true },
              ],
            },
          ],
          volumes: [
            withKeys
              ? {
                  name: 'oscar-config',
                  projected: {
                    sources: [
                      { configMap: { name: configMapName(jobId) } },
                      { secret: { name: storageSecretName(jobId) } },
                    ],
                  },
                }
              : { name: 'oscar-config', configMap: { name: configMapName(jobId) } },
            { name: 'oscar-volume', emptyDir: {} },
          ],
        },
      },
    },
  };
  return { configMap, secret, storageSecret, job };
}

/** The builder's input from a stored service (the record-and-compare tests use this). */
export function inputFromService(
  service: {
    name: string;
    image?: string;
    script: string;
    cpu?: string;
    memory?: string;
    log_level?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    input?: unknown[];
    output?: unknown[];
    environment?: { variables?: Record<string, string>; secrets?: Record<string, string> };
  },
  job: {
    namespace: string;
    jobId: string;
    event: string;
    extraEnv?: Record<string, string>;
    timeoutMs?: number;
  },
): KubeJobInput {
  return {
    namespace: job.namespace,
    jobId: job.jobId,
    serviceName: service.name,
    image: service.image ?? 'alpine',
    script: service.script,
    event: job.event,
    variables: { ...service.environment?.variables, ...job.extraEnv },
    secrets: { ...service.environment?.secrets },
    cpu: service.cpu,
    memory: service.memory,
    logLevel: service.log_level,
    labels: service.labels,
    annotations: service.annotations,
    input: service.input,
    output: service.output,
    timeoutMs: job.timeoutMs,
  };
}
