// FDL files as oscar-cli writes them, and the bare-service layout of OSCAR's federation
// quickstart: split into services, shared blocks embedded, script paths kept.
import { describe, expect, it } from 'vitest';
import { FlotillaError } from '../../src/core/errors.ts';
import { parseFdl } from '../../src/core/fdl/fdl-file.ts';
import { goDecode } from '../../src/core/fdl/go-decode.ts';
import { applyDefaults, parseServiceInput } from '../../src/core/fdl/service.ts';

/** The error parseFdl throws for `text`, which must be a FlotillaError. */
const fdlError = (text: string): FlotillaError => {
  try {
    parseFdl(text);
  } catch (e) {
    expect(e).toBeInstanceOf(FlotillaError);
    return e as FlotillaError;
  }
  throw new Error('parseFdl accepted the document');
};

// oscar-cli's example (examples/cowsay, imagemagick) with two clusters and shared blocks.
const OSCAR_CLI_FDL = `
functions:
  oscar:
  - oscar-cluster:
      name: grayify
      memory: 1Gi
      cpu: '0.9'
      image: ghcr.io/grycap/imagemagick
      script: scripts/grayify.sh
      log_level: DEBUG
      input:
      - storage_provider: minio.default
        path: grayify/input
      output:
      - storage_provider: s3.my_s3
        path: my-bucket/grayify
        suffix:
        - png
  - other-cluster:
      name: cowsay
      image: ghcr.io/grycap/cowsay
      script: ./cowsay.sh
      cluster_id: explicit-id
      storage_providers:
        s3:
          my_s3:
            region: eu-central-1
        minio:
          own:
            endpoint: https://minio.own.example
            access_key: own
            secret_key: own-secret
      clusters:
        oscar-cluster:
          endpoint: https://override.example
          auth_user: override
storage_providers:
  s3:
    my_s3:
      access_key: AKIAEXAMPLE
      secret_key: s3-secret
      region: us-east-1
clusters:
  oscar-cluster:
    endpoint: https://oscar.example.org
    auth_user: oscar
    auth_password: cluster-pw
    ssl_verify: true
  other-cluster:
    endpoint: https://other.example.org
    auth_user: oscar
    auth_password: other-pw
`;

// The layout of OSCAR's federation quickstart: services listed directly, no cluster key.
const BARE_FDL = `
functions:
  oscar:
    - name: grayifyr0
      image: ghcr.io/grycap/imagemagick
      cpu: "0.5"
      memory: 0.5Gi
      script: script.sh
      federation:
        topology: mesh
        delegation: random
        members:
          - type: oscar
            cluster_id: oscar-cluster-a
            service_name: grayifyr1
          - type: oscar
            cluster_id: oscar-cluster-b
            service_name: grayifyr2
      input:
        - storage_provider: minio.default
          path: grayifyr0/in
      output:
        - storage_provider: minio.shared
          path: grayifyr0/out
`;

describe('parseFdl: oscar-cli layout', () => {
  const fdl = parseFdl(OSCAR_CLI_FDL);

  it('yields one entry per list item, keyed by cluster id, in order', () => {
    expect(fdl.entries.map((e) => [e.clusterId, e.service.name])).toEqual([
      ['oscar-cluster', 'grayify'],
      ['other-cluster', 'cowsay'],
    ]);
  });

  it('keeps the script as the path written in the file', () => {
    expect(fdl.entries[0].scriptPath).toBe('scripts/grayify.sh');
    expect(fdl.entries[0].service.script).toBe('scripts/grayify.sh');
    expect(fdl.entries[1].scriptPath).toBe('./cowsay.sh');
  });

  it('sets cluster_id from the key unless the service names one', () => {
    expect(fdl.entries[0].service.cluster_id).toBe('oscar-cluster');
    expect(fdl.entries[1].service.cluster_id).toBe('explicit-id');
  });

  it('keeps the service fields as written', () => {
    expect(fdl.entries[0].service).toMatchObject({
      memory: '1Gi',
      cpu: '0.9',
      image: 'ghcr.io/grycap/imagemagick',
      log_level: 'DEBUG',
      input: [{ storage_provider: 'minio.default', path: 'grayify/input' }],
      output: [{ storage_provider: 's3.my_s3', path: 'my-bucket/grayify', suffix: ['png'] }],
    });
  });

  it('embeds the top-level storage_providers and clusters into every service', () => {
    const first = fdl.entries[0].service;
    expect(first.storage_providers).toEqual({
      s3: { my_s3: { access_key: 'AKIAEXAMPLE', secret_key: 's3-secret', region: 'us-east-1' } },
    });
    expect(first.clusters).toEqual({
      'oscar-cluster': {
        endpoint: 'https://oscar.example.org',
        auth_user: 'oscar',
        auth_password: 'cluster-pw',
        ssl_verify: true,
      },
      'other-cluster': {
        endpoint: 'https://other.example.org',
        auth_user: 'oscar',
        auth_password: 'other-pw',
      },
    });
  });

  it("lets a service's own blocks win: providers merged per kind, clusters replaced per id", () => {
    const second = fdl.entries[1].service;
    expect(second.storage_providers).toEqual({
      // Same kind (s3): the service's provider ids are merged over the file's.
      s3: { my_s3: { region: 'eu-central-1' } },
      minio: { own: { endpoint: 'https://minio.own.example', access_key: 'own', secret_key: 'own-secret' } },
    });
    expect((second.clusters as Record<string, unknown>)['oscar-cluster']).toEqual({
      endpoint: 'https://override.example',
      auth_user: 'override',
    });
    expect((second.clusters as Record<string, unknown>)['other-cluster']).toMatchObject({
      endpoint: 'https://other.example.org',
    });
  });

  it('does not share objects between entries (editing one leaves the others)', () => {
    const again = parseFdl(OSCAR_CLI_FDL);
    (again.entries[0].service.clusters as Record<string, any>)['other-cluster'].auth_user = 'changed';
    expect((again.entries[1].service.clusters as Record<string, any>)['other-cluster'].auth_user).toBe(
      'oscar',
    );
  });

  it('produces services the validator accepts once the script is read', () => {
    for (const entry of fdl.entries) {
      const svc = parseServiceInput({ ...entry.service, script: '#!/bin/sh\necho hi\n' });
      expect(svc.name).toBe(entry.service.name);
    }
    expect(parseServiceInput({ ...fdl.entries[0].service, script: 'x' }).cpu).toBe('0.9');
  });
});

describe('parseFdl: bare-service layout', () => {
  const fdl = parseFdl(BARE_FDL);

  it('reads a service listed without a cluster key', () => {
    expect(fdl.entries).toHaveLength(1);
    const [entry] = fdl.entries;
    expect(entry.clusterId).toBeUndefined();
    expect(entry.scriptPath).toBe('script.sh');
    expect(entry.service).toMatchObject({ name: 'grayifyr0', cpu: '0.5', memory: '0.5Gi' });
    expect(entry.service.cluster_id).toBeUndefined();
    expect(entry.service.storage_providers).toBeUndefined();
    expect(entry.service.clusters).toBeUndefined();
  });

  it('keeps the federation block whole', () => {
    expect(fdl.entries[0].service.federation).toEqual({
      topology: 'mesh',
      delegation: 'random',
      members: [
        { type: 'oscar', cluster_id: 'oscar-cluster-a', service_name: 'grayifyr1' },
        { type: 'oscar', cluster_id: 'oscar-cluster-b', service_name: 'grayifyr2' },
      ],
    });
  });

  it('embeds top-level blocks into bare services too', () => {
    const withTop = `${BARE_FDL}\nclusters:\n  oscar-cluster-a:\n    endpoint: https://a.example\n`;
    expect(parseFdl(withTop).entries[0].service.clusters).toEqual({
      'oscar-cluster-a': { endpoint: 'https://a.example' },
    });
  });

  it('takes a one-key entry with a name as a bare service, not a cluster map', () => {
    const fdl2 = parseFdl('functions:\n  oscar:\n  - name: solo\n');
    expect(fdl2.entries[0]).toMatchObject({ clusterId: undefined, service: { name: 'solo' } });
  });

  it('reads mixed layouts in one file', () => {
    const mixed = parseFdl(
      'functions:\n  oscar:\n  - c1: {name: a, script: a.sh}\n  - {name: b, script: b.sh}\n',
    );
    expect(mixed.entries.map((e) => [e.clusterId, e.service.name, e.scriptPath])).toEqual([
      ['c1', 'a', 'a.sh'],
      [undefined, 'b', 'b.sh'],
    ]);
  });

  it('accepts JSON, which is YAML', () => {
    const json = JSON.stringify({ functions: { oscar: [{ local: { name: 'j', script: 'j.sh' } }] } });
    expect(parseFdl(json).entries[0]).toMatchObject({ clusterId: 'local', scriptPath: 'j.sh' });
  });

  it('leaves scriptPath undefined when the service has no script', () => {
    expect(parseFdl('functions:\n  oscar:\n  - c: {name: noscript}\n').entries[0].scriptPath).toBeUndefined();
  });
});

describe('parseFdl: errors are FlotillaErrors naming the problem', () => {
  it.each([
    ['not YAML', 'functions: [unclosed', 'INVALID_YAML', /not valid YAML/],
    [
      'alias bomb',
      'a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]',
      'INVALID_YAML',
      /alias/i,
    ],
    ['empty file', '', 'VALIDATION_FAILED', /must be a map with a "functions" key/],
    ['a list', '- a\n- b', 'VALIDATION_FAILED', /must be a map/],
    ['a scalar', 'hello', 'VALIDATION_FAILED', /must be a map/],
    ['no functions', 'storage_providers: {}', 'VALIDATION_FAILED', /functions: \{oscar/],
    ['functions is a list', 'functions: [a]', 'VALIDATION_FAILED', /functions: \{oscar/],
    ['oscar missing', 'functions: {}', 'VALIDATION_FAILED', /functions\.oscar" must be a non-empty list/],
    ['oscar empty', 'functions: {oscar: []}', 'VALIDATION_FAILED', /non-empty list/],
    ['oscar is a map', 'functions: {oscar: {c: {name: a}}}', 'VALIDATION_FAILED', /non-empty list/],
    [
      'entry is a string',
      'functions: {oscar: [grayify]}',
      'VALIDATION_FAILED',
      /functions\.oscar\[0\] must be a map/,
    ],
    [
      'entry is null',
      'functions: {oscar: [null]}',
      'VALIDATION_FAILED',
      /functions\.oscar\[0\] must be a map/,
    ],
    [
      'entry with two keys, no name',
      'functions: {oscar: [{a: {name: x}, b: {name: y}}]}',
      'VALIDATION_FAILED',
      /functions\.oscar\[0\] must be "\{<cluster-id>: <service>\}"/,
    ],
    ['cluster entry not a map', 'functions: {oscar: [{c: 3}]}', 'VALIDATION_FAILED', /functions\.oscar\[0\]/],
    [
      'script not a path',
      'functions: {oscar: [{c: {name: a, script: [x]}}]}',
      'VALIDATION_FAILED',
      /functions\.oscar\[0\]\.c\.script must be a file path/,
    ],
    [
      'top-level storage_providers a list',
      'storage_providers: [a]\nfunctions: {oscar: [{c: {name: a}}]}',
      'VALIDATION_FAILED',
      /storage_providers must be a map/,
    ],
    [
      'service clusters a string',
      'functions: {oscar: [{c: {name: a, clusters: x}}]}',
      'VALIDATION_FAILED',
      /functions\.oscar\[0\]\.c\.clusters must be a map/,
    ],
  ])('%s', (_label, text, code, message) => {
    const err = fdlError(text);
    expect(err.code).toBe(code);
    expect(err.status).toBe(400);
    expect(err.message).toMatch(message);
  });
});

/** The FlotillaError parseServiceInput throws for `raw`. */
const serviceError = (raw: unknown): FlotillaError => {
  try {
    parseServiceInput(raw);
  } catch (e) {
    expect(e).toBeInstanceOf(FlotillaError);
    return e as FlotillaError;
  }
  throw new Error('parseServiceInput accepted the service');
};

describe("parseServiceInput: OSCAR's Go decoder rules (DESIGN §3.1)", () => {
  const base = { name: 'go-rules', image: 'alpine', script: 'echo' };

  it('matches keys case-insensitively, map keys excepted', () => {
    const out = parseServiceInput({
      NAME: 'go-rules',
      Image: 'alpine',
      SCRIPT: 'echo',
      Environment: { Variables: { Mode: 'fast' }, SECRETS: { Key: 'k' } },
      Input: [{ Storage_Provider: 'minio.default', PATH: 'bucket/in' }],
    });
    expect(out).toMatchObject({
      name: 'go-rules',
      image: 'alpine',
      environment: { variables: { Mode: 'fast' }, secrets: { Key: 'k' } },
      input: [{ storage_provider: 'minio.default', path: 'bucket/in' }],
    });
    expect(out).not.toHaveProperty('Environment');
  });

  it('folds as Go does: "ſ" is s and the Kelvin sign is k', () => {
    expect(parseServiceInput({ ...base, ſcript: 'folded' }).script).toBe('folded');
    expect(parseServiceInput({ ...base, ['to\u212aen']: 'folded' }).token).toBe('folded');
  });

  it('lets the last key for a field win, as Go assigns them in order', () => {
    expect(parseServiceInput({ ...base, memory: '1Gi', MEMORY: '2Gi' }).memory).toBe('2Gi');
    expect(parseServiceInput({ ...base, MEMORY: '2Gi', memory: '1Gi' }).memory).toBe('1Gi');
  });

  it.each([
    ['memory', 12, /memory: must be a string, got a number/],
    ['cpu', 0.5, /cpu: must be a string, got a number/],
    ['image', true, /image: must be a string, got a boolean/],
    ['environment', { variables: { RETRIES: 3 } }, /environment\.variables\.RETRIES: must be a string/],
    ['allowed_users', 'alice', /allowed_users: must be a list, got a string/],
    ['alpine', 'yes', /alpine: must be true or false, got a string/],
    ['input', [{ path: 'bucket/in', suffix: 'png' }], /input\[0\]\.suffix: must be a list/],
    [
      'clusters',
      { b: { endpoint: 'https://b', ssl_verify: 'no' } },
      /clusters\.b\.ssl_verify: must be true or false/,
    ],
    [
      'federation',
      { members: [{ cluster_id: 'b', priority: -1 }] },
      /federation\.members\[0\]\.priority: must be a whole number of 0 or more/,
    ],
    ['expose', { min_scale: 2 ** 40 }, /expose\.min_scale: must be a 32-bit whole number/],
  ])('refuses %s = %j as Go refuses it, naming the field', (field, value, message) => {
    const err = serviceError({ ...base, [field]: value });
    expect(err.code).toBe('VALIDATION_FAILED');
    expect(err.message).toMatch(message);
  });

  it('requires name, image and script (an empty string is missing, as binding:"required")', () => {
    expect(serviceError({ name: 'x', script: 's' }).message).toMatch(/image: is required/);
    expect(serviceError({ name: 'x', image: '', script: 's' }).message).toMatch(/image: is required/);
    expect(serviceError({ name: 'x', image: 'i' }).message).toMatch(/script: is required/);
    expect(serviceError({ image: 'i', script: 's' }).code).toBe('INVALID_NAME');
  });

  it('reads "minio" as "minio.default" (and a kind in any case), as OSCAR does', () => {
    const out = parseServiceInput({
      ...base,
      input: [{ storage_provider: 'minio', path: 'bucket/in' }],
      output: [
        { storage_provider: 'MinIO.shared', path: 'bucket/out' },
        { storage_provider: 's3', path: 'out/x' },
      ],
    });
    expect(out.input?.[0].storage_provider).toBe('minio.default');
    expect(out.output?.map((o) => o.storage_provider)).toEqual(['minio.shared', 's3.default']);
    expect(
      serviceError({ ...base, input: [{ storage_provider: 'ftp', path: 'bucket/in' }] }).message,
    ).toMatch(/input\[0\]\.storage_provider/);
  });

  it('keeps unknown fields with their spelling and value', () => {
    expect(parseServiceInput({ ...base, X_Custom: { Deep: [1] } })).toMatchObject({
      X_Custom: { Deep: [1] },
    });
  });
});

describe('parseFdl: keys and scalars as oscar-cli reads an FDL', () => {
  it('folds service keys (the script path is found) and makes YAML scalars strings', () => {
    const fdl = parseFdl(
      'functions:\n  oscar:\n  - c1:\n      Name: old-style\n      Image: img\n      Script: run.sh\n      CPU: 1\n      environment:\n        Variables:\n          RETRIES: 3\n',
    );
    const [entry] = fdl.entries;
    expect(entry.scriptPath).toBe('run.sh');
    expect(entry.service).toMatchObject({
      name: 'old-style',
      image: 'img',
      cpu: '1',
      environment: { variables: { RETRIES: '3' } },
    });
  });
});

describe("parseServiceInput: the zero values of oscar-cli's json.Marshal of OSCAR's struct", () => {
  it('reads "" for cpu, memory, log_level, visibility and a storage_provider as not given', () => {
    const out = applyDefaults(
      parseServiceInput({
        name: 'zeroes',
        image: 'alpine',
        script: 'echo',
        cpu: '',
        memory: '',
        log_level: '',
        visibility: '',
        cluster_id: '',
        total_cpu: '',
        enable_gpu: false,
        synchronous: { min_scale: 0, max_scale: 0 },
        input: [{ storage_provider: '', path: 'zero-bucket/in', suffix: null, prefix: null, options: '' }],
        output: null,
        environment: { variables: null, secrets: null },
        annotations: null,
        labels: null,
        expose: { min_scale: 0, max_scale: 0, api_port: 0, cpu_threshold: 0, nodePort: 0, health_path: '' },
        mount: { storage_provider: '', path: '', suffix: null, prefix: null, options: '' },
        allowed_users: null,
        volume_status: { enabled: false },
      }),
      { token: 't', owner: 'o' },
    );
    expect(out).toMatchObject({
      cpu: '0.2',
      memory: '256Mi',
      log_level: 'INFO',
      visibility: 'private',
      input: [{ storage_provider: 'minio.default', path: 'zero-bucket/in' }],
      environment: { variables: {}, secrets: {} },
      // OSCAR's label on every service, by which its test suite finds services.
      labels: { oscar_service: 'zeroes' },
    });
  });
});

describe('goDecode: keys are data', () => {
  it('keeps "__proto__" in a map, a struct and an unknown field as an ordinary key, never as a prototype', () => {
    const raw = JSON.parse(
      '{"name":"s","__proto__":{"polluted":1},"labels":{"__proto__":"x","a":"b"},"environment":{"__proto__":{"p":2},"variables":{"A":"1"}}}',
    );
    const { value, issues } = goDecode(raw);
    const out = value as Record<string, any>;
    expect(issues).toEqual([]);
    for (const node of [out, out.labels, out.environment]) {
      expect(Object.getPrototypeOf(node)).toBe(Object.prototype);
      expect(Object.hasOwn(node, '__proto__')).toBe(true);
    }
    expect(out.labels).toEqual(JSON.parse('{"__proto__":"x","a":"b"}'));
    expect(out.polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
