// deploy/helm/flotilla rendered by scripts/render-manifests.mjs (no helm binary here): every
// object is valid against the official schemas, the RBAC grants exactly what the Kubernetes
// executor calls (read from the adapter's source, not a copy), no secret value sits outside a
// Secret, and deploy/manifests is what the chart renders today.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

type Obj = any;
interface Renderer {
  renderChart(values?: string[]): string;
  renderedFile(o: { file: string; values: string[] }): string;
  OUTPUTS: Array<{ file: string; values: string[] }>;
  MANIFESTS_DIR: string;
}
const renderer = (await import('../../scripts/render-manifests.mjs' as string)) as Renderer;

const MODELS: Record<string, new (o: never) => { validate(): void }> = {
  Deployment,
  StatefulSet,
  Service,
  ServiceAccount,
  Role,
  RoleBinding,
  ClusterRole,
  ClusterRoleBinding,
  ConfigMap,
  Secret,
  Namespace,
};

const objectsOf = (text: string): Obj[] =>
  parseAllDocuments(text).map((d) => {
    expect(d.errors).toEqual([]);
    return d.toJS();
  });

/** "group/resource:verb" for each call the executor makes, read from its source. */
function executorCalls(): { namespaced: Set<string>; cluster: Set<string> } {
  const dir = 'src/adapters/executor-kubernetes';
  const src = readdirSync(dir)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => readFileSync(join(dir, f), 'utf8'))
    .join('\n');
  const namespaced = new Set<string>();
  const cluster = new Set<string>();
  const resourceOf = (kind: string) =>
    kind === 'PodLog' ? 'pods/log' : kind === 'Ingress' ? 'ingresses' : `${kind.toLowerCase()}s`;
  const groups: Record<string, string> = {
    core: '',
    batch: 'batch',
    apps: 'apps',
    net: 'networking.k8s.io',
    autoscaling: 'autoscaling',
  };
  const verbs: Record<string, string> = { read: 'get', replace: 'update' };
  for (const m of src.matchAll(/\b(core|batch|apps|net|autoscaling)\.(\w+)\(/g)) {
    const call = /^(create|delete|list|read|patch|replace)(Namespaced)?([A-Z]\w*?)(ForAllNamespaces)?$/.exec(
      m[2]!,
    );
    if (!call) throw new Error(`unmapped Kubernetes call ${m[1]}.${m[2]}`);
    const verb = verbs[call[1]!] ?? call[1]!;
    const rule = `${groups[m[1]!]}/${resourceOf(call[3]!)}:${verb}`;
    (call[2] ? namespaced : cluster).add(rule);
  }
  if (/\blogs\.log\(/.test(src)) namespaced.add('/pods/log:get');
  if (/\bmetrics\.getNodeMetrics\(/.test(src)) cluster.add('metrics.k8s.io/nodes:list');
  for (const m of src.matchAll(/watch\.watch\(\s*`\/api\/v1\/namespaces\/\$\{namespace\}\/(\w+)`/g))
    namespaced.add(`/${m[1]}:watch`);
  return { namespaced, cluster };
}

const grants = (rules: Obj[]): Set<string> =>
  new Set(
    rules.flatMap((r) =>
      r.apiGroups.flatMap((g: string) =>
        r.resources.flatMap((res: string) => r.verbs.map((v: string) => `${g}/${res}:${v}`)),
      ),
    ),
  );

describe('Helm chart', () => {
  const rendered = renderer.OUTPUTS.map((o) => ({
    ...o,
    objects: objectsOf(renderer.renderChart(o.values)),
  }));

  it('renders only objects that validate against the official schemas', () => {
    for (const { file, objects } of rendered) {
      expect(objects.length, file).toBeGreaterThan(10);
      for (const o of objects) {
        const Model = MODELS[o.kind];
        expect(Model, `${file}: no model for ${o.kind}`).toBeDefined();
        expect(
          () => new Model!(o as never).validate(),
          `${file}: ${o.kind} ${o.metadata?.name}`,
        ).not.toThrow();
      }
      const kinds = new Set(objects.map((o) => o.kind));
      for (const k of ['Deployment', 'Service', 'ServiceAccount', 'Role', 'RoleBinding', 'ClusterRole'])
        expect(kinds.has(k), `${file}: ${k}`).toBe(true);
    }
  });

  it('no Role or ClusterRole lets anyone read a Secret; every binding is to the manager alone', () => {
    for (const { file, objects } of rendered) {
      const roles = objects.filter((o) => o.kind === 'Role' || o.kind === 'ClusterRole');
      expect(roles.length, file).toBeGreaterThan(0);
      for (const r of roles) {
        for (const g of grants(r.rules))
          expect(g, `${file}: ${r.metadata.name}`).not.toMatch(/^\/(secrets|\*):(get|list|watch|\*)$/);
      }
      const sa = objects.find((o) => o.kind === 'ServiceAccount').metadata.name;
      for (const b of objects.filter((o) => o.kind === 'RoleBinding' || o.kind === 'ClusterRoleBinding')) {
        expect(b.subjects, `${file}: ${b.metadata.name}`).toEqual([
          { kind: 'ServiceAccount', name: sa, namespace: 'flotilla' },
        ]);
      }
    }
  });

  it('the Role grants exactly the verbs the executor calls; the ClusterRole only reads', () => {
    const calls = executorCalls();
    // The derivation sees the adapter's real calls (not an empty match).
    expect(calls.namespaced).toContain('batch/jobs:create');
    expect(calls.namespaced).toContain('/pods:watch');
    expect(calls.cluster).toContain('metrics.k8s.io/nodes:list');
    for (const { file, objects } of rendered) {
      const role = objects.find((o) => o.kind === 'Role');
      expect(role.metadata.namespace, file).toBe('flotilla-svc');
      expect([...grants(role.rules)].sort(), file).toEqual([...calls.namespaced].sort());
      const clusterRole = objects.find(
        (o) => o.kind === 'ClusterRole' && o.metadata.name.endsWith('-capacity'),
      );
      const cluster = grants(clusterRole.rules);
      for (const c of calls.cluster)
        if (!c.startsWith('/namespaces:')) expect(cluster, `${file}: ${c}`).toContain(c);
      for (const g of cluster)
        expect(g, file).toMatch(/^(|metrics\.k8s\.io)\/(nodes|pods):(get|list|watch)$/);
      // Per-user namespaces: the Role's verbs anywhere, plus creating, reading and deleting
      // namespaces (a user's goes with their last service in it); nothing else.
      const nsVerbs = ['/namespaces:create', '/namespaces:delete', '/namespaces:get'];
      for (const v of nsVerbs) expect(calls.cluster).toContain(v);
      const users = objects.find(
        (o) => o.kind === 'ClusterRole' && o.metadata.name.endsWith('-user-namespaces'),
      );
      expect([...grants(users.rules)].sort(), file).toEqual([...calls.namespaced, ...nsVerbs].sort());
      // All bound to the manager's ServiceAccount, which the Deployment runs as.
      const sa = objects.find((o) => o.kind === 'ServiceAccount').metadata.name;
      for (const b of objects.filter((o) => o.kind === 'RoleBinding' || o.kind === 'ClusterRoleBinding')) {
        expect(b.subjects, `${file}: ${b.kind}`).toEqual([
          { kind: 'ServiceAccount', name: sa, namespace: 'flotilla' },
        ]);
      }
      const deployment = objects.find((o) => o.kind === 'Deployment');
      expect(deployment.spec.template.spec.serviceAccountName).toBe(sa);
    }
  });

  it('keeps every secret value in a Secret: none in a ConfigMap or any other object', () => {
    for (const { file, objects } of rendered) {
      const secrets = objects.filter((o) => o.kind === 'Secret');
      expect(secrets.length, file).toBeGreaterThan(0);
      const values = secrets
        .flatMap((s) => [
          ...Object.values<string>(s.stringData ?? {}),
          ...Object.values<string>(s.data ?? {}).map((v) => Buffer.from(v, 'base64').toString('utf8')),
        ])
        .filter((v) => v.length >= 8);
      expect(values.length, file).toBeGreaterThanOrEqual(4);
      for (const o of objects.filter((x) => x.kind !== 'Secret')) {
        const text = JSON.stringify(o);
        for (const v of values) expect(text.includes(v), `${file}: ${o.kind} ${o.metadata.name}`).toBe(false);
      }
    }
  });

  it('runs the manager with /health probes, one replica by default and two in values-federated', () => {
    const manager = (file: string) => {
      const objects = rendered.find((r) => r.file === file)!.objects;
      const d = objects.find((o) => o.kind === 'Deployment');
      const env = Object.assign({}, ...objects.filter((o) => o.kind === 'ConfigMap').map((c) => c.data));
      return { d, c: d.spec.template.spec.containers[0], env, objects };
    };
    const one = manager('flotilla.yaml');
    const two = manager('flotilla-federated.yaml');
    for (const { c } of [one, two]) {
      expect(c.livenessProbe.httpGet).toEqual({ path: '/health', port: 'http' });
      expect(c.readinessProbe.httpGet).toEqual({ path: '/health', port: 'http' });
    }
    expect(one.d.spec.replicas).toBe(1);
    expect(one.d.spec.strategy).toEqual({ type: 'Recreate' });
    expect(one.env.FLOTILLA_TIER).toBe('standalone');
    expect(one.objects.some((o) => o.metadata.name === 'flotilla-valkey')).toBe(false);
    expect(two.d.spec.replicas).toBe(2);
    expect(two.env.FLOTILLA_TIER).toBe('federated');
    expect(two.c.env).toContainEqual({
      name: 'FLOTILLA_REPLICA_ID',
      valueFrom: { fieldRef: { fieldPath: 'metadata.name' } },
    });
    const secret = two.objects.find((o) => o.kind === 'Secret');
    expect(secret.stringData.VALKEY_URL).toBe('redis://flotilla-valkey:6379');
    expect(
      two.objects
        .filter((o) => o.kind === 'StatefulSet')
        .map((o) => o.metadata.name)
        .sort(),
    ).toEqual(['flotilla-postgresql', 'flotilla-s3', 'flotilla-valkey']);
  });

  it('deploy/manifests is what the chart renders now', () => {
    for (const o of renderer.OUTPUTS) {
      expect(readFileSync(join(renderer.MANIFESTS_DIR, o.file), 'utf8'), o.file).toBe(
        renderer.renderedFile(o),
      );
    }
  });
});
