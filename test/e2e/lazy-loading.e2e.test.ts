// A started manager holds only what its tier uses: the local tier never loads the Postgres
// driver or BullMQ, the standalone tier never loads PGlite, the Kubernetes client loads only
// with --executor kubernetes, and the S3 stack (AWS SDK, s3rver) loads at the first use of
// storage, not at start. Read from the modules the real
// `flotilla up` process tree loaded (test/support/module-log.mjs). And the launcher runs the
// TypeScript sources (tsx) exactly when dist/ is not a build of the current sources.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { distState } from '../../scripts/build-stamp.mjs';
import { type ClusterProcess, createClusterProcess, REPO_ROOT } from '../support/cluster-harness.ts';
import { type FakeKubeApi, startFakeKubeApi } from '../support/fake-kube-api.ts';
import { loadedPackages, MODULE_LOG_ARGS } from '../support/module-log.ts';
import { createTempDatabase, type TempDatabase } from '../support/postgres.ts';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'flotilla-lazy-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A manager whose process tree logs every module it loads to `log`. */
const started = async (id: string, env: Record<string, string> = {}) => {
  const log = join(root, `${id}.modules`);
  const c = await createClusterProcess(
    {
      id,
      env: {
        // The harness's own NODE_OPTIONS, plus the module log.
        NODE_OPTIONS: `--max-old-space-size=512 ${MODULE_LOG_ARGS.join(' ')}`,
        FLOTILLA_MODULE_LOG: log,
        ...env,
      },
    },
    { root },
  );
  await c.start();
  return { c, loaded: () => loadedPackages(log) };
};

// Each test starts a `flotilla up` process: more than the default 30 s on two loaded cores.
describe('what a started manager has loaded', { timeout: 120_000 }, () => {
  let local: { c: ClusterProcess; loaded: () => Promise<Set<string>> };
  afterAll(async () => local?.c.stop());

  it('local tier: PGlite and Fastify, no Postgres driver, no BullMQ, no S3 stack yet', async () => {
    // Whether the sources ran through tsx depends only on whether dist/ is current.
    const runsSources = distState(REPO_ROOT) !== 'fresh';
    local = await started('local');
    const loaded = await local.loaded();
    expect(loaded.has('@electric-sql/pglite')).toBe(true);
    expect(loaded.has('fastify')).toBe(true);
    for (const pkg of [
      'pg',
      'bullmq',
      'ioredis',
      '@aws-sdk/client-s3',
      's3rver',
      '@kubernetes/client-node',
      // The circuit breaker of federated queries: loaded on the first query to a peer.
      'cockatiel',
      // Tracing is off without an OTLP endpoint: no OpenTelemetry module at all.
      '@opentelemetry/api',
      '@opentelemetry/sdk-trace-base',
      '@opentelemetry/exporter-trace-otlp-http',
    ]) {
      expect(loaded.has(pkg), pkg).toBe(false);
    }
    expect(loaded.has('tsx')).toBe(runsSources);
  });

  it('local tier: the S3 stack loads at the first use of storage, and still no pg or BullMQ', async () => {
    // /system/status counts the buckets and objects of the embedded store.
    const status = await local.c.client.status();
    expect(status.minio).toBeDefined();
    const loaded = await local.loaded();
    expect(loaded.has('@aws-sdk/client-s3')).toBe(true);
    expect(loaded.has('s3rver')).toBe(true);
    for (const pkg of ['pg', 'bullmq', 'ioredis']) expect(loaded.has(pkg), pkg).toBe(false);
  });

  describe('tracing (OTEL_EXPORTER_OTLP_ENDPOINT)', () => {
    let traced: { c: ClusterProcess; loaded: () => Promise<Set<string>> } | undefined;
    afterAll(async () => traced?.c.stop());

    it('loads the OTel SDK and its OTLP exporter only when an endpoint is set, not when disabled', async () => {
      // Nothing listens there: spans are dropped after the exporter's failed attempts.
      const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9' };
      traced = await started('traced', endpoint);
      const loaded = await traced.loaded();
      for (const pkg of [
        '@opentelemetry/api',
        '@opentelemetry/sdk-trace-base',
        '@opentelemetry/exporter-trace-otlp-http',
      ])
        expect(loaded.has(pkg), pkg).toBe(true);
      await traced.c.stop();
      traced = await started('traced-disabled', { ...endpoint, OTEL_SDK_DISABLED: 'true' });
      expect((await traced.loaded()).has('@opentelemetry/sdk-trace-base')).toBe(false);
    });
  });

  describe('standalone tier (DATABASE_URL)', () => {
    let db: TempDatabase;
    let standalone: { c: ClusterProcess; loaded: () => Promise<Set<string>> };
    beforeAll(async () => {
      db = await createTempDatabase();
    });
    afterAll(async () => {
      await standalone?.c.stop();
      await db?.drop();
    });

    it('loads the Postgres driver and neither PGlite nor BullMQ', async () => {
      standalone = await started('standalone', { DATABASE_URL: db.url });
      const loaded = await standalone.loaded();
      expect(loaded.has('pg')).toBe(true);
      for (const pkg of [
        '@electric-sql/pglite',
        'bullmq',
        'ioredis',
        '@aws-sdk/client-s3',
        's3rver',
        '@kubernetes/client-node',
      ]) {
        expect(loaded.has(pkg), pkg).toBe(false);
      }
    });
  });

  describe('--executor kubernetes', () => {
    let fake: FakeKubeApi;
    let kube: { c: ClusterProcess; loaded: () => Promise<Set<string>> };
    afterAll(async () => {
      await kube?.c.stop();
      await fake?.close();
    });

    it('loads the Kubernetes client, and still no pg or BullMQ', async () => {
      fake = await startFakeKubeApi({ kubelet: 'shell' });
      const kubeconfig = join(root, 'kubeconfig.yaml');
      fake.writeKubeconfig(kubeconfig, 'jobs');
      kube = await started('kube', {
        FLOTILLA_EXECUTOR: 'kubernetes',
        KUBECONFIG: kubeconfig,
        FLOTILLA_NAMESPACE: 'jobs',
      });
      const loaded = await kube.loaded();
      expect(loaded.has('@kubernetes/client-node')).toBe(true);
      for (const pkg of ['pg', 'bullmq', 'ioredis']) expect(loaded.has(pkg), pkg).toBe(false);
    });
  });
});
