// Record-and-compare: the objects Flotilla builds for an exposed service against the ones
// OSCAR builds for the same FDL (recorded by hand from grycap/oscar
// pkg/backends/resources/expose.go getDeploymentSpec/getHortizontalAutoScaleSpec/getServiceSpec/
// getIngressSpec/getSecretSpec), with only the documented differences (expose-objects.ts)
// taken out before comparing. Every object also passes the official schemas.
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v1/HorizontalPodAutoscaler';
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1/Ingress';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { describe, expect, it } from 'vitest';
import { buildExposeObjects, sshaHtpasswd } from '../../src/adapters/executor-kubernetes/expose-objects.ts';
import { FlotillaError } from '../../src/core/errors.ts';
import { exposeSpec } from '../../src/core/fdl/expose.ts';

const TOKEN = 'f'.repeat(64);
const fdl = {
  name: 'web',
  image: 'ghcr.io/example/web:2',
  script: '#!/bin/sh\nexec python -m http.server 8080\n',
  cpu: '0.5',
  memory: '256Mi',
  environment: {
    variables: { MODE: 'prod' },
    secrets: { DB_PASSWORD: 'hunter2-db', refresh_token: 'rt-never' },
  },
  expose: {
    api_port: [8080],
    min_scale: 2,
    max_scale: 5,
    cpu_threshold: 70,
    rewrite_target: true,
    set_auth: true,
  } as Record<string, unknown>,
};

const build = (service: typeof fdl, host?: string) =>
  buildExposeObjects({
    namespace: 'oscar-svc',
    name: service.name,
    image: service.image,
    script: service.script,
    cpu: service.cpu,
    memory: service.memory,
    variables: service.environment.variables,
    secrets: service.environment.secrets,
    token: TOKEN,
    spec: exposeSpec(service)!,
    ingressHost: host,
  });

// What OSCAR sends for `fdl` (ServicesNamespace "oscar-svc", IngressHost "oscar.example.org").
const probe = { httpGet: { path: '/system/services/web/exposed/', port: 'podport' }, timeoutSeconds: 2 };
const OSCAR = {
  deployment: {
    metadata: { name: 'web-dpl', namespace: 'oscar-svc' },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: 'oscar-svc-exp-web' } },
      template: {
        metadata: { labels: { app: 'oscar-svc-exp-web' } },
        container: {
          name: 'oscar-container',
          image: 'ghcr.io/example/web:2',
          imagePullPolicy: 'Always',
          command: ['/bin/sh'],
          args: ['-c', '/oscar/config/script.sh'],
          ports: [{ name: 'podport', containerPort: 8080 }],
          env: [{ name: 'MODE', value: 'prod' }],
          envFrom: [{ secretRef: { name: 'web' } }], // ours: web-expose-env (see below)
          resources: { limits: { cpu: '0.5', memory: '256Mi' } },
          livenessProbe: { ...probe, initialDelaySeconds: 30, periodSeconds: 10 },
          readinessProbe: { ...probe, initialDelaySeconds: 10, periodSeconds: 5 },
          configMount: { name: 'oscar-config', mountPath: '/oscar/config', readOnly: false },
        },
        configVolume: { name: 'oscar-config', configMap: { name: 'web', defaultMode: 0o777 } },
      },
    },
  },
  hpa: {
    metadata: { name: 'web-hpa', namespace: 'oscar-svc' },
    spec: {
      scaleTargetRef: { kind: 'Deployment', name: 'web-dpl', apiVersion: 'apps/v1' },
      minReplicas: 2,
      maxReplicas: 5,
      targetCPUUtilizationPercentage: 70,
    },
  },
  service: {
    metadata: { name: 'web-svc', namespace: 'oscar-svc' },
    spec: {
      ports: [{ name: 'serviceport', port: 80, targetPort: 8080 }],
      type: 'ClusterIP',
      selector: { app: 'oscar-svc-exp-web' },
    },
  },
  ingress: {
    metadata: {
      name: 'web-ing',
      namespace: 'oscar-svc',
      annotations: {
        'nginx.ingress.kubernetes.io/rewrite-target': '/system/services/web/exposed/$1',
        'spec.ingressClassName': 'nginx',
        'nginx.ingress.kubernetes.io/use-regex': 'true',
        'nginx.ingress.kubernetes.io/auth-type': 'basic',
        'nginx.ingress.kubernetes.io/auth-secret': 'web-auth-expose',
        'nginx.ingress.kubernetes.io/auth-realm': 'Authentication Required',
      },
    },
    spec: {
      tls: [{ hosts: ['oscar.example.org'], secretName: 'oscar.example.org' }],
      rules: [
        {
          host: 'oscar.example.org',
          http: {
            paths: [
              {
                path: '/system/services/web/exposed/?(.*)',
                pathType: 'Prefix',
                backend: { service: { name: 'web-svc', port: { number: 80 } } },
              },
            ],
          },
        },
      ],
    },
  },
  authSecret: {
    metadata: { name: 'web-auth-expose', namespace: 'oscar-svc' },
    type: 'Opaque',
    authUser: 'web',
  },
};

/** Our labels, on every object (documented difference). */
const OWN = { oscar_service: 'web', 'app.kubernetes.io/managed-by': 'flotilla' };

describe('exposed service objects against OSCAR', () => {
  const ours = build(fdl, 'oscar.example.org');

  it('Deployment: as OSCAR, plus our labels, requests = limits and no service-account token', () => {
    const d = ours.deployment;
    const expected = OSCAR.deployment;
    expect(d.metadata).toEqual({ ...expected.metadata, labels: OWN });
    expect(d.spec!.replicas).toBe(expected.spec.replicas);
    expect(d.spec!.selector).toEqual(expected.spec.selector);
    expect(d.spec!.template.metadata!.labels).toEqual({ ...expected.spec.template.metadata.labels, ...OWN });
    const pod = d.spec!.template.spec!;
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.volumes).toEqual([expected.spec.template.configVolume]);
    const { configMount, resources, envFrom, ...container } = expected.spec.template.container;
    const c = pod.containers[0]!;
    expect(c).toMatchObject(container);
    // the environment Secret's name: web-expose-env, not OSCAR's "web" (a name another
    // service could own: see expose-objects.ts)
    expect(envFrom).toEqual([{ secretRef: { name: 'web' } }]);
    expect(c.envFrom).toEqual([{ secretRef: { name: 'web-expose-env' } }]);
    expect(c.resources).toEqual({ limits: resources.limits, requests: resources.limits });
    expect(c.volumeMounts).toEqual([configMount]);
    expect(Object.keys(c).sort()).toEqual(
      [...Object.keys(container), 'envFrom', 'resources', 'volumeMounts'].sort(),
    );
  });

  it('HPA and Service: as OSCAR, plus our labels', () => {
    expect(ours.hpa).toEqual({
      apiVersion: 'autoscaling/v1',
      kind: 'HorizontalPodAutoscaler',
      metadata: { ...OSCAR.hpa.metadata, labels: OWN },
      spec: OSCAR.hpa.spec,
    });
    expect(ours.service).toEqual({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { ...OSCAR.service.metadata, labels: OWN },
      spec: OSCAR.service.spec,
    });
  });

  it("Ingress: as OSCAR, with the class in spec.ingressClassName instead of OSCAR's no-op annotation", () => {
    const { 'spec.ingressClassName': cls, ...annotations } = OSCAR.ingress.metadata.annotations;
    expect(ours.ingress).toEqual({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { name: 'web-ing', namespace: 'oscar-svc', labels: OWN, annotations },
      spec: { ingressClassName: cls, ...OSCAR.ingress.spec },
    });
  });

  it('auth Secret: htpasswd line for the service name and its token (a salted hash, never the token)', () => {
    const s = ours.authSecret!;
    expect(s.metadata).toEqual({ ...OSCAR.authSecret.metadata, labels: OWN });
    expect(s.type).toBe('Opaque');
    const line = Buffer.from(s.data!.auth!, 'base64').toString('utf8');
    expect(line).toBe(sshaHtpasswd('web', TOKEN));
    expect(line.startsWith(`${OSCAR.authSecret.authUser}:{SSHA}`)).toBe(true);
    expect(line).not.toContain(TOKEN);
  });

  it('environment secrets only in their Secret (web-expose-env), refresh_token never', () => {
    expect(ours.envSecret!.metadata!.name).toBe('web-expose-env');
    const data = Object.fromEntries(
      Object.entries(ours.envSecret!.data!).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]),
    );
    expect(data).toEqual({ DB_PASSWORD: 'hunter2-db' });
    const rest = JSON.stringify([ours.configMap, ours.deployment, ours.hpa, ours.service, ours.ingress]);
    for (const secret of ['hunter2-db', 'rt-never', TOKEN]) expect(rest).not.toContain(secret);
    expect(ours.configMap.data).toEqual({ 'script.sh': fdl.script });
  });

  it('nodePort: a NodePort Service and no Ingress or auth Secret, as OSCAR', () => {
    const np = build({ ...fdl, expose: { ...fdl.expose, nodePort: 30080 } });
    expect(np.service.spec).toEqual({
      type: 'NodePort',
      ports: [{ name: 'serviceport', port: 80, targetPort: 8080, nodePort: 30080 }],
      selector: { app: 'oscar-svc-exp-web' },
    });
    expect(np.ingress).toBeUndefined();
    expect(np.authSecret).toBeUndefined();
  });

  it('default_command keeps the image command; no host gives a host-less rule without TLS', () => {
    const plain = build({ ...fdl, expose: { api_port: 9000, default_command: true } });
    const c = plain.deployment.spec!.template.spec!.containers[0]!;
    expect(c.command).toBeUndefined();
    expect(c.args).toBeUndefined();
    expect(c.livenessProbe!.httpGet!.path).toBe('/');
    expect(plain.deployment.spec!.replicas).toBe(1);
    expect(plain.hpa.spec).toMatchObject({
      minReplicas: 1,
      maxReplicas: 10,
      targetCPUUtilizationPercentage: 80,
    });
    expect(plain.ingress!.spec!.tls).toBeUndefined();
    expect(plain.ingress!.spec!.rules![0]!.host).toBeUndefined();
    expect(plain.ingress!.metadata!.annotations!['nginx.ingress.kubernetes.io/rewrite-target']).toBe('/$1');
  });

  it('every object validates against the official schemas', () => {
    for (const objs of [ours, build({ ...fdl, expose: { api_port: [80, 9090], nodePort: [0, 31000] } })]) {
      new Deployment(objs.deployment as never).validate();
      new HorizontalPodAutoscaler(objs.hpa as never).validate();
      new Service(objs.service as never).validate();
      new ConfigMap(objs.configMap as never).validate();
      if (objs.ingress) new Ingress(objs.ingress as never).validate();
      if (objs.envSecret) new Secret(objs.envSecret as never).validate();
      if (objs.authSecret) new Secret(objs.authSecret as never).validate();
    }
  });
});

describe('expose block checks (400 naming the field)', () => {
  const refused: Array<[Record<string, unknown>, RegExp]> = [
    [{ api_port: [70000] }, /expose\.api_port\[0\]/],
    [{ api_port: [-1] }, /expose\.api_port\[0\]/],
    [{ api_port: [8080, 8080] }, /ports must differ/],
    [{ api_port: 8080, nodePort: 80 }, /expose\.nodePort\[0\]: .*30000 to 32767/],
    [{ api_port: 8080, nodePort: [30001, 30002] }, /one node port per api_port/],
    [{ api_port: 8080, min_scale: 5, max_scale: 2 }, /expose\.max_scale/],
    [{ api_port: 8080, cpu_threshold: 0 }, /expose\.cpu_threshold/],
    [{ api_port: 8080, min_scale: 1.5 }, /expose\.min_scale/],
    [{ api_port: 8080, health_path: 'no-slash' }, /expose\.health_path/],
    [{ api_port: 8080, health_path: '/a b' }, /expose\.health_path/],
    [{ api_port: 8080, set_auth: 'yes' }, /expose\.set_auth/],
  ];
  for (const [expose, message] of refused) {
    it(`refuses ${JSON.stringify(expose)}`, () => {
      let caught: unknown;
      try {
        exposeSpec({ expose });
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(FlotillaError);
      expect((caught as FlotillaError).code).toBe('BAD_REQUEST');
      expect((caught as Error).message).toMatch(message);
    });
  }

  it('a service without api_port (or with 0) is not exposed', () => {
    expect(exposeSpec({})).toBeUndefined();
    expect(exposeSpec({ expose: { api_port: [0] } })).toBeUndefined();
    expect(exposeSpec({ expose: { min_scale: 3 } })).toBeUndefined();
  });
});
