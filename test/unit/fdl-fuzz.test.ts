// Property-based fuzzing of the FDL parser, the service validator and the services API:
// whatever goes in, the only failure is a FlotillaError with a 4xx status (never a
// TypeError, RangeError or a 5xx), and what is accepted is a well-formed service. Known keys
// match as Go's encoding/json matches them (case-insensitively, map keys excepted), and a
// value of the wrong JSON type is refused naming the field, as OSCAR's decoder refuses it.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { FlotillaError } from '../../src/core/errors.ts';
import { isHijackVariable } from '../../src/core/fdl/environment-policy.ts';
import { parseFdl } from '../../src/core/fdl/fdl-file.ts';
import { parseCpuMillis, parseMemoryBytes } from '../../src/core/fdl/quantity.ts';
import { MASK, redactService, restoreMaskedSecrets } from '../../src/core/fdl/secrets.ts';
import { applyDefaults, parseServiceInput, SERVICE_NAME_RE } from '../../src/core/fdl/service.ts';
import { basic, startInProcess, type TestManager } from '../support/in-process.ts';

/** Runs fn; it may return or throw a FlotillaError with a 4xx status, nothing else. */
const onlyFlotillaErrors = <T>(fn: () => T): T | FlotillaError => {
  try {
    return fn();
  } catch (e) {
    if (!(e instanceof FlotillaError)) {
      throw new Error(`threw ${(e as Error)?.name ?? typeof e}: ${(e as Error)?.message ?? String(e)}`);
    }
    expect(e.status).toBeGreaterThanOrEqual(400);
    expect(e.status).toBeLessThan(500);
    expect(e.message.length).toBeGreaterThan(0);
    return e;
  }
};

// ---------------------------------------------------------------- generators

const serviceName = fc.oneof(
  fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,37}[a-z0-9])?$/),
  fc.string({ maxLength: 45 }),
  fc.constantFrom('', '-', 'A', 'a'.repeat(39), 'a'.repeat(40), 'a\u0000b', '\ud800'),
);
const quantity = fc.oneof(
  fc.stringMatching(/^-?\d{0,4}(\.\d{0,3})?(m|Ki|Mi|Gi|Ti|k|M|G|e3|mi)?$/),
  fc.double(),
  fc.integer(),
  fc.string({ maxLength: 8 }),
);
const storageIo = fc.record(
  {
    storage_provider: fc.oneof(fc.constantFrom('minio.default', 's3.aws', 'minio', 'ftp.x', ''), fc.string()),
    path: fc.oneof(fc.constantFrom('bucket/in', '/', 'ab', 'my.bucket/x/y', ''), fc.string()),
    prefix: fc.oneof(fc.array(fc.string(), { maxLength: 3 }), fc.anything()),
    suffix: fc.array(fc.string(), { maxLength: 3 }),
  },
  { requiredKeys: [] },
);
const stringMapish = fc.oneof(
  fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.string(), fc.integer(), fc.boolean())),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.anything({ maxDepth: 2 })),
  fc.anything({ maxDepth: 2 }),
);
const replica: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  member: fc.record(
    {
      type: fc.constantFrom('oscar', 'endpoint', 'ftp'),
      cluster_id: fc.string({ maxLength: 8 }),
      service_name: fc.string({ maxLength: 8 }),
      url: fc.webUrl(),
      priority: fc.oneof(fc.integer({ min: -2, max: 10 }), fc.double()),
      members: fc.array(tie('member'), { maxLength: 2 }),
    },
    { requiredKeys: [] },
  ),
})).member;

const validName = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,37}[a-z0-9])?$/);
const bucketPath = fc
  .tuple(
    fc.oneof(
      { weight: 5, arbitrary: fc.stringMatching(/^[a-z0-9]{3,10}(-[a-z0-9]{1,5})?(\.[a-z0-9]{1,6})?$/) },
      { weight: 1, arbitrary: fc.stringMatching(/^[a-z0-9][a-z0-9.-]{1,20}[a-z0-9]$/) },
    ),
    fc.array(fc.stringMatching(/^[\w.-]{1,8}$/), { maxLength: 2 }),
  )
  .map(([bucket, rest]) => [bucket, ...rest].join('/'));
// OSCAR's maps are map[string]string: JSON strings only (YAML scalars are strings too).
const scalarMap = fc.dictionary(
  fc.string({ maxLength: 8 }).filter((k) => k !== '__proto__'),
  fc.string({ maxLength: 12 }),
  { maxKeys: 3 },
);

// Variable names Flotilla accepts: the hijack list (LD_*, ENV, IFS…) has its own tests.
const variableMap = fc.dictionary(
  fc.string({ maxLength: 8 }).filter((k) => k !== '__proto__' && !isHijackVariable(k)),
  fc.string({ maxLength: 12 }),
  { maxKeys: 3 },
);

/** Services OSCAR would accept: every optional field sometimes present, always well-typed. */
const validService = fc.record(
  {
    name: validName,
    script: fc.string({ minLength: 1, maxLength: 40 }),
    image: fc.string({ minLength: 1, maxLength: 20 }),
    cpu: fc.constantFrom('0.5', '500m', '1', '2.25', '100m', '64'),
    memory: fc.constantFrom('256Mi', '1Gi', '0.5Gi', '128974848', '129M', '1Ti'),
    log_level: fc.constantFrom('info', 'DEBUG', 'WARNING', 'critical'),
    visibility: fc.constantFrom('private', 'public', 'restricted'),
    allowed_users: fc.array(fc.string({ maxLength: 12 }), { maxLength: 3 }),
    input: fc.array(
      fc.record(
        {
          // A bare kind is OSCAR's "<kind>.default"; the kind is read in any case.
          storage_provider: fc.constantFrom('minio.default', 's3.aws', 'minio', 'MinIO.default'),
          path: bucketPath,
          suffix: fc.array(fc.string({ maxLength: 4 }), { maxLength: 2 }),
        },
        { requiredKeys: ['path'] },
      ),
      { maxLength: 2 },
    ),
    output: fc.array(
      fc.record(
        { path: bucketPath, prefix: fc.array(fc.string({ maxLength: 4 }), { maxLength: 2 }) },
        { requiredKeys: ['path'] },
      ),
      { maxLength: 2 },
    ),
    environment: fc.record({ variables: variableMap, secrets: variableMap }, { requiredKeys: [] }),
    annotations: scalarMap,
    labels: scalarMap,
    clusters: fc.dictionary(
      fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/),
      fc.record(
        {
          endpoint: fc.webUrl(),
          auth_user: fc.string({ maxLength: 8 }),
          auth_password: fc.string({ maxLength: 8 }),
          ssl_verify: fc.boolean(),
        },
        { requiredKeys: ['endpoint'] },
      ),
      { maxKeys: 2 },
    ),
    storage_providers: fc.record(
      {
        s3: fc.dictionary(
          fc.stringMatching(/^[a-z]{1,5}$/),
          fc.record({ access_key: fc.string(), secret_key: fc.string(), region: fc.string() }),
        ),
      },
      { requiredKeys: [] },
    ),
    federation: fc.record(
      {
        topology: fc.constantFrom('mesh', 'star', 'tree'),
        members: fc.array(
          fc.record({
            type: fc.constant('oscar'),
            cluster_id: fc.string({ maxLength: 6 }),
            service_name: validName,
            priority: fc.nat(5),
          }),
          { maxLength: 3 },
        ),
      },
      { requiredKeys: [] },
    ),
    timeout: fc.integer({ min: 1, max: 3600 }),
    vo: fc.string({ maxLength: 10 }),
    isolation_level: fc.constantFrom('SERVICE', 'USER'),
  },
  { requiredKeys: ['name', 'script', 'image'] },
);

const FIELDS = [
  'name',
  'script',
  'image',
  'cpu',
  'memory',
  'log_level',
  'visibility',
  'allowed_users',
  'input',
  'output',
  'environment',
  'annotations',
  'labels',
  'clusters',
  'storage_providers',
  'federation',
  'timeout',
  'token',
  'owner',
] as const;

/** A wrong value for a field: wrong type, wrong text, wrong shape inside, or absent. */
const badValue = fc.oneof(
  fc.anything({ maxDepth: 2 }),
  serviceName,
  quantity,
  fc.constantFrom(
    undefined,
    null,
    '',
    '***',
    [],
    {},
    [{}],
    [{ path: '/' }],
    { variables: ['x'] },
    { a: { endpoint: 'nope' } },
  ),
  fc.array(storageIo, { minLength: 1, maxLength: 2 }),
  fc.record({ members: fc.array(replica, { maxLength: 2 }) }),
  stringMapish,
);

/**
 * Service-shaped objects: a valid service with 0–3 fields corrupted and a few unknown
 * fields added, so both the accepting and every refusing path are reached.
 */
const serviceLike = fc
  .tuple(
    validService,
    fc.array(fc.tuple(fc.constantFrom(...FIELDS), badValue), { maxLength: 3 }),
    fc.dictionary(
      fc.string({ maxLength: 10 }).filter((k) => k !== '__proto__'),
      fc.anything({ maxDepth: 2 }),
      { maxKeys: 3 },
    ),
  )
  .map(([valid, corruptions, unknown]) => {
    const out: Record<string, unknown> = { ...unknown, ...valid };
    for (const [field, value] of corruptions) {
      if (value === undefined) delete out[field];
      else out[field] = value;
    }
    return out;
  });

/** Anything at all, including exotic values (Map, Set, Date, bigint, boxed, sparse, null-prototype). */
const exotic = fc.anything({
  maxDepth: 4,
  withBigInt: true,
  withBoxedValues: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withNullPrototype: true,
  withObjectString: true,
  withSparseArray: true,
  withTypedArray: true,
  withUnicodeString: true,
});

const YAML_TOKENS = [
  'functions:',
  'oscar:',
  'storage_providers:',
  'clusters:',
  '- ',
  '  ',
  '    ',
  '\n',
  '\n',
  ': ',
  ':',
  ',',
  '{',
  '}',
  '[',
  ']',
  '&a ',
  '*a',
  '&b ',
  '*b',
  '<<: *a',
  '!!binary ',
  '!!str ',
  '!!map ',
  '!!seq ',
  '!custom ',
  '"',
  "'",
  '#',
  '|',
  '>-',
  '? ',
  '~',
  'null',
  'true',
  '1e400',
  '0x1F',
  '.inf',
  '\t',
  '%YAML 1.2\n',
  '---\n',
  '...\n',
  'name: svc',
  'script: run.sh',
  'cpu: 500m',
  'c1:',
  'name:',
  '\\u0000',
  '\u0000',
  '\ud800',
  '\ufeff',
  'script: [a]',
  'input: x',
];
const yamlish = fc.oneof(
  fc.array(fc.constantFrom(...YAML_TOKENS), { maxLength: 40 }).map((t) => t.join('')),
  fc.string({ unit: 'binary', maxLength: 200 }),
  // Well-formed FDL skeletons around random content, sometimes cut short.
  fc
    .tuple(
      fc.array(
        fc.oneof(
          fc.dictionary(fc.string({ maxLength: 6 }), serviceLike, { minKeys: 1, maxKeys: 2 }),
          serviceLike,
          fc.jsonValue(),
        ),
        {
          maxLength: 3,
        },
      ),
      fc.option(fc.jsonValue({ maxDepth: 3 })),
      fc.option(fc.jsonValue({ maxDepth: 3 })),
      fc.nat(),
      fc.boolean(),
    )
    .map(([oscar, providers, clusters, cut, truncate]) => {
      const doc: Record<string, unknown> = { functions: { oscar } };
      if (providers !== null) doc.storage_providers = providers;
      if (clusters !== null) doc.clusters = clusters;
      let text: string;
      try {
        text = toYaml(doc, { aliasDuplicateObjects: false });
      } catch {
        text = JSON.stringify(doc) ?? '';
      }
      return truncate ? text.slice(0, cut % (text.length + 1)) : text;
    }),
);

// ---------------------------------------------------------------- pure properties

describe('parseFdl never crashes', () => {
  it('on thousands of YAML-ish documents: entries or a FlotillaError', () => {
    let parsed = 0;
    fc.assert(
      fc.property(yamlish, (text) => {
        const out = onlyFlotillaErrors(() => parseFdl(text));
        if (out instanceof FlotillaError) {
          expect(['INVALID_YAML', 'VALIDATION_FAILED']).toContain(out.code);
          return;
        }
        parsed++;
        expect(out.entries.length).toBeGreaterThan(0);
        for (const e of out.entries) {
          expect(e.service).toBeTypeOf('object');
          expect(e.scriptPath === undefined || typeof e.scriptPath === 'string').toBe(true);
          expect(e.clusterId === undefined || typeof e.clusterId === 'string').toBe(true);
          // What the file yields goes on to the validator (the CLI does this): still no crash.
          onlyFlotillaErrors(() => parseServiceInput({ ...e.service, script: e.scriptPath ?? 'echo' }));
        }
      }),
      { numRuns: 2000 },
    );
    // The generator must reach the success path too, or the property proves little.
    expect(parsed).toBeGreaterThan(50);
  });

  it('on arbitrary unicode text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 300 }), (text) => {
        onlyFlotillaErrors(() => parseFdl(text));
      }),
      { numRuns: 1000 },
    );
  });
});

describe('parseServiceInput never crashes', () => {
  it('on arbitrary values, exotic ones included', () => {
    fc.assert(
      fc.property(exotic, (value) => {
        onlyFlotillaErrors(() => parseServiceInput(value));
      }),
      { numRuns: 3000 },
    );
  });

  it('on arbitrary objects carrying a valid name and script', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ maxLength: 12 }), exotic, { maxKeys: 6 }), (extra) => {
        onlyFlotillaErrors(() => parseServiceInput({ ...extra, name: 'fuzz', script: 'echo' }));
      }),
      { numRuns: 1500 },
    );
  });

  it('on service-shaped objects; what it accepts is a well-formed service', () => {
    let accepted = 0;
    fc.assert(
      fc.property(serviceLike, (raw) => {
        const out = onlyFlotillaErrors(() => parseServiceInput(raw));
        if (out instanceof FlotillaError) {
          expect(['INVALID_NAME', 'VALIDATION_FAILED']).toContain(out.code);
          return;
        }
        accepted++;
        expect(out.name).toMatch(SERVICE_NAME_RE);
        expect(out.image.length).toBeGreaterThan(0);
        for (const io of [...(out.input ?? []), ...(out.output ?? [])])
          expect(io.storage_provider).toMatch(/^(minio|s3|onedata|webdav|rucio)\.[^.]/);
        expect(out.name.length).toBeLessThanOrEqual(39);
        expect(typeof out.script).toBe('string');
        if (out.cpu !== undefined) expect(parseCpuMillis(out.cpu)).toBeGreaterThan(0);
        if (out.memory !== undefined) expect(parseMemoryBytes(out.memory)).toBeGreaterThan(0);
        // The rest of the pipeline a create runs must hold up too.
        const stored = applyDefaults(
          restoreMaskedSecrets(out as Record<string, any>, undefined) as typeof out,
          {
            token: 'f'.repeat(64),
            owner: 'fuzz',
          },
        );
        const shown = redactService(stored);
        // Every non-empty secret is masked; nothing else in the block survives in clear.
        for (const v of Object.values(shown.environment.secrets)) expect(['', MASK]).toContain(v);
        expect(() => JSON.stringify(shown)).not.toThrow();
      }),
      { numRuns: 2000 },
    );
    expect(accepted).toBeGreaterThan(30);
  });

  it('quantity parsers answer a finite number or undefined for any text', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), quantity.map(String)), (text) => {
        for (const v of [parseCpuMillis(text), parseMemoryBytes(text)]) {
          expect(v === undefined || Number.isFinite(v)).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

// ---------------------------------------------------------------- Go's decoder

/** A seeded PRNG, so a generated spelling can be replayed from its seed. */
const rng = (seed: number) => {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
};

/** Another spelling of a key that Go's fold still matches: any case, "ſ" for s, Kelvin for k. */
const respell = (key: string, next: () => number): string =>
  [...key]
    .map((ch) => {
      const r = next();
      if (ch === 's' && r < 0.1) return 'ſ';
      if (ch === 'k' && r < 0.1) return '\u212a';
      return r < 0.5 ? ch.toUpperCase() : ch;
    })
    .join('');

// Struct fields by where they sit (map keys, like variable names and cluster ids, are data
// and keep their spelling).
const STRUCT_CHILDREN: Record<string, string[]> = {
  '': ['environment', 'input', 'output', 'clusters', 'storage_providers', 'federation'],
  federation: ['members'],
};
const LIST_OF_STRUCTS = new Set(['input', 'output', 'members']);
const MAP_OF_STRUCTS = new Set(['clusters']);

const isPlainObject = (v: unknown): v is object => v !== null && typeof v === 'object' && !Array.isArray(v);
const entriesOf = (v: unknown): Array<[string, unknown]> => (isPlainObject(v) ? Object.entries(v) : []);

/** The service with every struct key respelled (top level, nested structs, list items). */
const respellKeys = (value: unknown, next: () => number, at = ''): unknown => {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    let child = v;
    if ((STRUCT_CHILDREN[at] ?? []).includes(k) || at === 'struct') {
      if (LIST_OF_STRUCTS.has(k) && Array.isArray(v)) child = v.map((e) => respellKeys(e, next, 'struct'));
      else if (MAP_OF_STRUCTS.has(k) && isPlainObject(v))
        child = Object.fromEntries(entriesOf(v).map(([id, e]) => [id, respellKeys(e, next, 'struct')]));
      else if (k === 'storage_providers' && isPlainObject(v))
        child = Object.fromEntries(
          entriesOf(v).map(([kind, ids]) => [
            respell(kind, next),
            isPlainObject(ids)
              ? Object.fromEntries(entriesOf(ids).map(([id, e]) => [id, respellKeys(e, next, 'struct')]))
              : ids,
          ]),
        );
      else if (k === 'federation' || k === 'environment')
        child = respellKeys(v, next, k === 'federation' ? k : 'struct');
    }
    out[respell(k, next)] = child;
  }
  return out;
};

const STRING_FIELDS = ['name', 'image', 'script', 'cpu', 'memory', 'log_level', 'vo', 'visibility'] as const;

describe("parseServiceInput reads keys and types as OSCAR's Go decoder", () => {
  it('matches known keys case-insensitively: a respelled service parses to the same service', () => {
    fc.assert(
      fc.property(validService, fc.integer(), (valid, seed) => {
        const canonical = onlyFlotillaErrors(() => parseServiceInput(valid));
        const respelled = respellKeys(valid, rng(seed)) as Record<string, unknown>;
        const again = onlyFlotillaErrors(() => parseServiceInput(respelled));
        if (canonical instanceof FlotillaError) {
          expect(again).toBeInstanceOf(FlotillaError);
          expect((again as FlotillaError).code).toBe(canonical.code);
          return;
        }
        expect(again).toEqual(canonical);
      }),
      { numRuns: 1500 },
    );
  });

  it('keeps map keys as written (variables differing only in case are two variables)', () => {
    fc.assert(
      // Upper-cased, a key may be a refused name (ld_ -> LD_): that is the hijack list's property.
      fc.property(
        fc.stringMatching(/^[a-z][a-z_]{0,8}$/).filter((k) => !isHijackVariable(k.toUpperCase())),
        fc.string(),
        fc.string(),
        (k, a, b) => {
          const out = parseServiceInput({
            name: 'maps',
            image: 'i',
            script: 's',
            Environment: { VARIABLES: { [k]: a, [k.toUpperCase()]: b } },
          });
          expect(out.environment?.variables).toEqual({ [k]: a, [k.toUpperCase()]: b });
        },
      ),
      { numRuns: 200 },
    );
  });

  it('refuses a value of the wrong JSON type for a string field, naming the field', () => {
    const notAString = fc.oneof(
      fc.integer(),
      fc.double({ noNaN: true }),
      fc.boolean(),
      fc.array(fc.string(), { maxLength: 2 }),
      fc.dictionary(fc.string({ maxLength: 3 }), fc.string(), { maxKeys: 2 }),
    );
    fc.assert(
      fc.property(
        validService,
        fc.constantFrom(...STRING_FIELDS),
        notAString,
        fc.integer(),
        (valid, field, bad, seed) => {
          const raw: Record<string, unknown> = { ...valid };
          delete raw[field];
          raw[respell(field, rng(seed))] = bad;
          const err = onlyFlotillaErrors(() => parseServiceInput(raw));
          expect(err).toBeInstanceOf(FlotillaError);
          expect((err as FlotillaError).message).toContain(`${field}: must be a string`);
          expect((err as FlotillaError).details?.fields).toContain(field);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('lets null leave a field as it is, as Go does', () => {
    fc.assert(
      fc.property(
        validService,
        fc.constantFrom('cpu', 'memory', 'vo', 'labels', 'environment', 'input'),
        (valid, field) => {
          const withNull = onlyFlotillaErrors(() => parseServiceInput({ ...valid, [field]: null }));
          const without = { ...valid } as Record<string, unknown>;
          delete without[field];
          expect(withNull).toEqual(onlyFlotillaErrors(() => parseServiceInput(without)));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('reads YAML scalars where OSCAR has a string as strings (oscar-cli decodes YAML so)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), fc.integer(), fc.boolean(), (cpu, n, flag) => {
        const text = `functions:\n  oscar:\n  - c1:\n      NAME: y\n      Image: img\n      script: s.sh\n      cpu: ${cpu}\n      environment:\n        Variables:\n          N: ${n}\n          F: ${flag}\n`;
        const [entry] = parseFdl(text).entries;
        const out = parseServiceInput({ ...entry.service, script: 'echo' });
        expect(out).toMatchObject({
          name: 'y',
          image: 'img',
          cpu: String(cpu),
          environment: { variables: { N: String(n), F: String(flag) } },
        });
      }),
      { numRuns: 200 },
    );
  });
});

// ---------------------------------------------------------------- over HTTP

describe('the services API never answers 5xx to random bodies', () => {
  let tm: TestManager;
  const statuses = new Map<number, number>();

  beforeAll(async () => {
    tm = await startInProcess({ bodyLimit: '256Ki' });
    // One service to PUT against, so updates reach validation and storage too.
    const res = await tm.manager.http.inject({
      method: 'POST',
      url: '/system/services',
      headers: { authorization: basic() },
      payload: { name: 'fuzz-target', image: 'alpine', script: 'echo' },
    });
    expect(res.statusCode).toBe(201);
  });
  afterAll(async () => {
    console.info(`[fdl-fuzz] HTTP statuses: ${JSON.stringify(Object.fromEntries(statuses))}`);
    await tm?.close();
  });

  const body = fc.oneof(
    { weight: 4, arbitrary: serviceLike.map((s) => ({ type: 'application/json', payload: safeJson(s) })) },
    {
      weight: 2,
      // As OSCAR's clients send it: no Content-Type (oscar-cli, oscar_python) or text/json
      // (OSCAR's test suite), keys in any case.
      arbitrary: fc
        .tuple(serviceLike, fc.integer(), fc.constantFrom('', 'text/json'))
        .map(([s, seed, type]) => ({ type, payload: safeJson(respellKeys(s, rng(seed))) })),
    },
    {
      weight: 2,
      arbitrary: serviceLike.map((s) => ({
        type: 'application/json',
        payload: safeJson({ ...s, name: 'fuzz-target' }),
      })),
    },
    {
      weight: 2,
      arbitrary: fc.jsonValue().map((v) => ({ type: 'application/json', payload: JSON.stringify(v) ?? '' })),
    },
    { weight: 2, arbitrary: yamlish.map((t) => ({ type: 'application/yaml', payload: t })) },
    {
      weight: 1,
      arbitrary: fc.record({
        type: fc.constantFrom(
          'application/json',
          'application/yaml',
          'text/plain',
          'text/json',
          'application/octet-stream',
          'x/y',
          '',
        ),
        payload: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
      }),
    },
  );

  it('POST and PUT /system/services with a few hundred random bodies', async () => {
    await fc.assert(
      fc.asyncProperty(body, fc.constantFrom('POST', 'PUT'), async ({ type, payload }, method) => {
        const headers: Record<string, string> = { authorization: basic() };
        if (type) headers['content-type'] = type;
        const res = await tm.manager.http.inject({
          method: method as 'POST' | 'PUT',
          url: '/system/services',
          headers,
          payload,
        });
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
        expect(res.statusCode, res.body).toBeLessThan(500);
        if (res.statusCode >= 400) {
          const err = res.json();
          expect(err.statusCode).toBe(res.statusCode);
          expect(err.code).toMatch(/^[A-Z_]+$/);
          expect(err.message.length).toBeGreaterThan(0);
        } else {
          expect([201, 204]).toContain(res.statusCode);
        }
      }),
      { numRuns: 400 },
    );
    // Both failure and success paths were exercised.
    expect([...statuses.keys()].some((s) => s >= 400)).toBe(true);
    expect([...statuses.keys()].some((s) => s < 300)).toBe(true);
  });

  it('the manager still lists, reads and serves afterwards', async () => {
    const res = await tm.manager.http.inject({
      method: 'GET',
      url: '/system/services',
      headers: { authorization: basic() },
    });
    expect(res.statusCode).toBe(200);
    const names = (res.json() as Array<{ name: string }>).map((s) => s.name);
    expect(names).toContain('fuzz-target');
    for (const name of names) {
      const one = await tm.manager.http.inject({
        method: 'GET',
        url: `/system/services/${encodeURIComponent(name)}`,
        headers: { authorization: basic() },
      });
      expect(one.statusCode, name).toBe(200);
    }
  });
});

/** JSON text of a generated value (bigint-free by construction; undefined → "null"). */
function safeJson(v: unknown): string {
  return JSON.stringify(v) ?? 'null';
}
