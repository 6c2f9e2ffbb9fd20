// /system/info, /system/config and /system/status: what this cluster is and has.
import type { Principal } from '../core/auth/principal.ts';
import { clusterStatus, type NodeState } from '../core/capacity.ts';
import { fail } from '../core/errors.ts';
import type { DefaultMinioView } from '../core/fdl/secrets.ts';
import type { JobStore, ObjectStore, StorageCredentials } from '../core/ports.ts';

export interface BuildInfo {
  version: string;
  gitCommit: string;
}

export interface SystemDeps {
  build: BuildInfo;
  /** OSCAR's `config.name` (default "oscar", `flotilla up --name`). */
  name: string;
  clusterId: string;
  /** This cluster's address for others (read at use: known once listening). */
  publicUrl: () => string;
  tier: string;
  executor: { kind: string; isolation: string; note?: string };
  /** The API server's version when jobs run on Kubernetes. */
  kubernetesVersion?: string;
  oidcIssuers: readonly string[];
  nodes: () => readonly NodeState[];
  jobs: Pick<JobStore, 'countJobs'>;
  objects?: Pick<ObjectStore, 'listBuckets' | 'listObjects' | 'credentials'>;
  /** Mean run time of recent jobs here (topsis weighs it); undefined before the first. */
  meanRunSeconds?: () => number | undefined;
  /** Storage keys handed to a caller of /system/config. */
  storageCredentialsFor?: (p: Principal) => Promise<StorageCredentials | undefined>;
  /** The mTLS peer channel's URL, once listening. */
  peerChannelUrl?: () => string | undefined;
}

const ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386' };

export class SystemUseCases {
  constructor(private readonly deps: SystemDeps) {}

  info() {
    const d = this.deps;
    return {
      version: d.build.version,
      git_commit: d.build.gitCommit,
      architecture: ARCH[process.arch] ?? process.arch,
      kubernetes_version: d.kubernetesVersion ?? '',
      serverless_backend: { name: `flotilla-${d.executor.kind}`, version: d.build.version },
      // Flotilla's own additions; OSCAR clients ignore unknown fields.
      cluster_id: d.clusterId,
      peer_channel_url: d.peerChannelUrl?.() ?? null,
      tier: d.tier,
      executor: {
        kind: d.executor.kind,
        isolation: d.executor.isolation,
        ...(d.executor.note ? { note: d.executor.note } : {}),
      },
    };
  }

  /** The cluster's own storage, as a service's `minio.default` shows it (no keys). */
  storageView(): DefaultMinioView {
    const c = this.deps.objects?.credentials;
    return { endpoint: c?.endpoint ?? '', region: c?.region ?? '', verify: c?.verify ?? true };
  }

  async config(principal: Principal) {
    const d = this.deps;
    const creds = await d.storageCredentialsFor?.(principal);
    return {
      config: {
        name: d.name,
        namespace: 'flotilla',
        services_namespace: 'flotilla-svc',
        serverless_backend: `flotilla-${d.executor.kind}`,
        gpu_available: false,
        interLink_available: false,
        yunikorn_enable: false,
        kueue_enable: false,
        volume_enable: false,
        minio_quota_enabled: false,
        oidc_groups: [] as string[],
        // Flotilla's own additions.
        cluster_id: d.clusterId,
        public_url: d.publicUrl(),
      },
      minio_provider: creds ?? { endpoint: '', verify: false, access_key: '', secret_key: '', region: '' },
    };
  }

  /** PUT /system/config: Flotilla's configuration is its flags and environment. */
  updateConfig(principal: Principal): never {
    if (principal.kind !== 'admin') fail('FORBIDDEN', 'only the admin may change the configuration');
    return fail(
      'NOT_IMPLEMENTED',
      'the configuration comes from the flags and environment of `flotilla up`: restart the manager to change it',
    );
  }

  async status() {
    const d = this.deps;
    const counts = await d.jobs.countJobs();
    const minio = await this.minioStatus();
    const meanRun = d.meanRunSeconds?.();
    return {
      cluster: clusterStatus(d.nodes()),
      oscar: {
        deployment_name: d.name,
        ready: true,
        jobs_count: counts.Pending + counts.Running + counts.Succeeded + counts.Failed,
        pods: {
          total: counts.Pending + counts.Running,
          states: {
            Pending: counts.Pending,
            Running: counts.Running,
            Succeeded: counts.Succeeded,
            Failed: counts.Failed,
          },
        },
        oidc: { enabled: d.oidcIssuers.length > 0, issuers: [...d.oidcIssuers], groups: [] as string[] },
        // Flotilla's addition, for other clusters' topsis policy (OSCAR's clients ignore it).
        ...(meanRun !== undefined ? { mean_run_seconds: Number(meanRun.toFixed(3)) } : {}),
      },
      minio,
    };
  }

  // Counting objects walks every bucket; peers poll /system/status often, so cache it.
  private minioCache: { at: number; value: { buckets_count: number; total_objects: number } } | undefined;

  private async minioStatus() {
    if (this.minioCache && Date.now() - this.minioCache.at < 10_000) return this.minioCache.value;
    const value = await this.countObjects();
    this.minioCache = { at: Date.now(), value };
    return value;
  }

  private async countObjects() {
    const objects = this.deps.objects;
    if (!objects) return { buckets_count: 0, total_objects: 0 };
    try {
      const buckets = await objects.listBuckets();
      let total = 0;
      for (const b of buckets) {
        let cursor: string | null = null;
        do {
          const page = await objects.listObjects(b.name, { cursor, limit: 1000 });
          total += page.objects.length;
          cursor = page.next;
        } while (cursor);
      }
      return { buckets_count: buckets.length, total_objects: total };
    } catch {
      return { buckets_count: 0, total_objects: 0 };
    }
  }
}
