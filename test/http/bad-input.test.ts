// Bad input on the services API: every case answers a 4xx JSON error {code, message,
// statusCode} that names the problem, nothing is stored, and no response is ever a 5xx.
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TokenVerifier } from '../../src/core/ports.ts';
import { scrubForLog } from '../../src/http/error-handler.ts';
import { basic, startInProcess, type TestManager } from '../support/in-process.ts';

let tm: TestManager;
const responses: Array<{ label: string; res: LightMyRequestResponse }> = [];

/** Bearer tokens "token-<sub>" stand for users; the OIDC flow itself is tested in oidc-auth.test.ts. */
const stubVerifier: TokenVerifier = {
  issuers: ['https://issuer.test'],
  async verify(token) {
    const m = /^token-([a-z]+)$/.exec(token);
    return m ? { sub: `${m[1]}@example.org`, issuer: 'https://issuer.test', claims: {} } : undefined;
  },
};

const ADMIN = { authorization: basic() };
const JSON_CT = { ...ADMIN, 'content-type': 'application/json' };
const YAML_CT = { ...ADMIN, 'content-type': 'application/yaml' };
const svc = (extra: Record<string, unknown>) =>
  JSON.stringify({ name: 'bad-input', image: 'alpine', script: 'echo', ...extra });

const send = async (label: string, opts: InjectOptions): Promise<LightMyRequestResponse> => {
  const res = await tm.manager.http.inject(opts);
  responses.push({ label, res });
  return res;
};

interface BadCase {
  label: string;
  req: InjectOptions;
  status: number;
  code: string;
  /** What the message must say about the problem. */
  message: RegExp;
}

const post = (payload: string | Buffer, headers: Record<string, string> = JSON_CT): InjectOptions => ({
  method: 'POST',
  url: '/system/services',
  headers,
  payload,
});

const deeplyNested = (depth: number) =>
  `{"name":"deep","script":"s","x":${'['.repeat(depth)}${']'.repeat(depth)}}`;

const CASES: BadCase[] = [
  // ---- body syntax
  {
    label: 'malformed JSON',
    req: post('{"name": "x",'),
    status: 400,
    code: 'INVALID_JSON',
    message: /malformed JSON/,
  },
  {
    label: 'JSON with trailing garbage',
    req: post('{"name":"x"} trailing'),
    status: 400,
    code: 'INVALID_JSON',
    message: /malformed JSON/,
  },
  {
    label: 'malformed YAML',
    req: post('name: [unclosed\n  : :', YAML_CT),
    status: 400,
    code: 'INVALID_YAML',
    message: /malformed YAML.*line \d+/,
  },
  {
    label: 'YAML with a tab indent error',
    req: post('name: x\n\tscript: y', YAML_CT),
    status: 400,
    code: 'INVALID_YAML',
    message: /malformed YAML/,
  },
  {
    label: 'YAML alias bomb (billion laughs)',
    req: post(
      [
        'a: &a [x, x, x, x, x, x, x, x, x]',
        'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]',
        'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]',
        'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]',
        'e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]',
      ].join('\n'),
      YAML_CT,
    ),
    status: 400,
    code: 'INVALID_YAML',
    message: /alias/i,
  },
  // An empty body is no body (DESIGN §3.1): a create without one names what is missing.
  {
    label: 'empty JSON body',
    req: post(''),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /must be a JSON object, got (an empty body|null)/,
  },
  {
    label: 'whitespace JSON body',
    req: post('  \n '),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /must be a JSON object, got (an empty body|null)/,
  },
  {
    label: 'no body at all',
    req: { method: 'POST', url: '/system/services', headers: ADMIN },
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /must be a JSON object/,
  },
  {
    label: 'array body',
    req: post('[{"name":"x","script":"s"}]'),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /JSON object, got an array/,
  },
  {
    label: 'null body',
    req: post('null'),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /JSON object, got null/,
  },
  {
    label: 'number body',
    req: post('42'),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /JSON object, got a number/,
  },
  {
    label: 'string body',
    req: post('"svc"'),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /JSON object, got a string/,
  },
  {
    label: 'YAML list body',
    req: post('- a\n- b\n', YAML_CT),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /got an array/,
  },
  {
    label: 'empty YAML body',
    req: post('', YAML_CT),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /must be a JSON object/,
  },
  {
    label: 'invalid UTF-8 in JSON',
    req: post(
      Buffer.concat([
        Buffer.from('{"name":"utf","script":"'),
        Buffer.from([0xff, 0xfe, 0xc3]),
        Buffer.from('"}'),
      ]),
    ),
    status: 400,
    code: 'INVALID_JSON',
    message: /UTF-8/,
  },
  {
    label: 'invalid UTF-8 in YAML',
    req: post(Buffer.concat([Buffer.from('name: utf\nscript: '), Buffer.from([0xc0, 0xaf])]), YAML_CT),
    status: 400,
    code: 'INVALID_YAML',
    message: /UTF-8/,
  },
  // ---- prototype pollution
  {
    label: '__proto__ at the top',
    req: post('{"name":"proto","script":"s","__proto__":{"polluted":true}}'),
    status: 400,
    code: 'INVALID_JSON',
    message: /"__proto__"/,
  },
  {
    label: '__proto__ nested',
    req: post('{"name":"proto","script":"s","environment":{"variables":{"__proto__":{"polluted":"yes"}}}}'),
    status: 400,
    code: 'INVALID_JSON',
    message: /environment\.variables\.__proto__/,
  },
  {
    label: 'constructor.prototype',
    req: post('{"name":"proto","script":"s","constructor":{"prototype":{"polluted":true}}}'),
    status: 400,
    code: 'INVALID_JSON',
    message: /constructor\.prototype/,
  },
  {
    label: '__proto__ in YAML',
    req: post('name: proto\nscript: s\n__proto__:\n  polluted: true\n', YAML_CT),
    status: 400,
    code: 'INVALID_YAML',
    message: /"__proto__"/,
  },
  // ---- nesting and text that cannot be stored
  {
    label: 'deeply nested JSON (5000)',
    req: post(deeplyNested(5000)),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /x\[0\]\[0\]\[0\].*nested more than 64 levels/,
  },
  {
    label: 'very deeply nested JSON (30000)',
    req: post(deeplyNested(30_000)),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /nested more than/,
  },
  {
    label: 'deeply nested YAML',
    req: post(`name: deep\nscript: s\nx: ${'['.repeat(20_000)}${']'.repeat(20_000)}\n`, YAML_CT),
    status: 400,
    code: 'INVALID_YAML',
    message: /malformed YAML/,
  },
  {
    label: 'NUL in a string',
    req: post(svc({ script: 'a\u0000b' })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /script: must not contain NUL/,
  },
  {
    label: 'NUL in a key',
    req: post(svc({ labels: { 'a\u0000b': 'x' } })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /labels: a key contains NUL/,
  },
  {
    label: 'lone surrogate',
    req: post('{"name":"surr","script":"\\ud800"}'),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /script: .*invalid Unicode/,
  },
  // ---- missing fields and wrong types
  {
    label: 'missing name',
    req: post('{"script":"s"}'),
    status: 400,
    code: 'INVALID_NAME',
    message: /name: is required/,
  },
  {
    label: 'missing script',
    req: post('{"name":"no-script"}'),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /script: is required/,
  },
  {
    label: 'empty script',
    req: post(svc({ script: '' })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /script/,
  },
  {
    label: 'name is a number',
    req: post(svc({ name: 42 })),
    status: 400,
    code: 'INVALID_NAME',
    message: /name: must be a string, got a number/,
  },
  {
    label: 'script is a number',
    req: post(svc({ script: 42 })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /script: must be a string, got a number/,
  },
  {
    label: 'image is a number',
    req: post(svc({ image: 7 })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /image: must be a string, got a number/,
  },
  {
    label: 'image is an object',
    req: post(svc({ image: { repo: 'x' } })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /image: must be a string, got an object/,
  },
  {
    label: 'vo is a boolean',
    req: post(svc({ vo: true })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /vo: must be a string, got a boolean/,
  },
  {
    label: 'allowed_users is a string',
    req: post(svc({ allowed_users: 'bob' })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /allowed_users: must be a list, got a string/,
  },
  {
    label: 'allowed_users of numbers',
    req: post(svc({ allowed_users: [1, 2] })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /allowed_users\[0\]/,
  },
  {
    label: 'timeout negative',
    req: post(svc({ timeout: -4 })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /timeout: must be positive/,
  },
  // ---- names
  {
    label: 'empty name',
    req: post(svc({ name: '' })),
    status: 400,
    code: 'INVALID_NAME',
    message: /name: must be 1 to 39/,
  },
  {
    label: 'name of 40 chars',
    req: post(svc({ name: 'a'.repeat(40) })),
    status: 400,
    code: 'INVALID_NAME',
    message: /name: must be 1 to 39/,
  },
  {
    label: 'huge name (100k chars)',
    req: post(svc({ name: 'a'.repeat(100_000) })),
    status: 413,
    code: 'PAYLOAD_TOO_LARGE',
    message: /larger than the limit/,
  },
  {
    label: 'huge name (10k chars)',
    req: post(svc({ name: 'n'.repeat(10_000) })),
    status: 400,
    code: 'INVALID_NAME',
    message: /1 to 39/,
  },
  {
    label: 'upper-case name',
    req: post(svc({ name: 'MyService' })),
    status: 400,
    code: 'INVALID_NAME',
    message: /DNS label/,
  },
  {
    label: 'name with underscore',
    req: post(svc({ name: 'my_service' })),
    status: 400,
    code: 'INVALID_NAME',
    message: /DNS label/,
  },
  {
    label: 'name starting with -',
    req: post(svc({ name: '-svc' })),
    status: 400,
    code: 'INVALID_NAME',
    message: /DNS label/,
  },
  {
    label: 'name ending with -',
    req: post(svc({ name: 'svc-' })),
    status: 400,
    code: 'INVALID_NAME',
    message: /DNS label/,
  },
  {
    label: 'name with a slash',
    req: post(svc({ name: 'a/b' })),
    status: 400,
    code: 'INVALID_NAME',
    message: /DNS label/,
  },
  {
    label: 'name with a dot',
    req: post(svc({ name: 'a.b' })),
    status: 400,
    code: 'INVALID_NAME',
    message: /DNS label/,
  },
  {
    label: 'name with unicode',
    req: post(svc({ name: 'sérvice' })),
    status: 400,
    code: 'INVALID_NAME',
    message: /DNS label/,
  },
  // ---- quantities
  {
    label: 'negative cpu',
    req: post(svc({ cpu: '-1' })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /cpu: must be a positive number of cores/,
  },
  {
    label: 'zero cpu',
    req: post(svc({ cpu: '0' })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /cpu: must be a positive/,
  },
  {
    label: 'negative cpu number',
    req: post(svc({ cpu: -0.5 })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /cpu: must be a string, got a number/,
  },
  {
    label: 'cpu "lots"',
    req: post(svc({ cpu: 'lots' })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /cpu: .*"500m"/,
  },
  {
    label: 'cpu "1e400"',
    req: post(svc({ cpu: '1e400' })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /cpu/,
  },
  {
    label: 'cpu of 400 digits',
    req: post(svc({ cpu: '9'.repeat(400) })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /cpu/,
  },
  {
    label: 'cpu is an object',
    req: post(svc({ cpu: { cores: 1 } })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /cpu: must be a string, got an object/,
  },
  {
    label: 'cpu "500mi"',
    req: post(svc({ cpu: '500mi' })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /cpu/,
  },
  {
    label: 'memory "lots"',
    req: post(svc({ memory: 'lots' })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /memory: must be a positive quantity/,
  },
  {
    label: 'memory "-1Gi"',
    req: post(svc({ memory: '-1Gi' })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /memory/,
  },
  {
    label: 'memory "1Xi"',
    req: post(svc({ memory: '1Xi' })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /memory/,
  },
  {
    label: 'memory is an array',
    req: post(svc({ memory: ['1Gi'] })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /memory/,
  },
  // ---- enumerations
  {
    label: 'invalid visibility',
    req: post(svc({ visibility: 'secret' })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /visibility: must be one of private, public, restricted/,
  },
  {
    label: 'visibility is a number',
    req: post(svc({ visibility: 1 })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /visibility/,
  },
  {
    label: 'invalid log_level',
    req: post(svc({ log_level: 'LOUD' })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /log_level: must be one of/,
  },
  {
    label: 'log_level is a number',
    req: post(svc({ log_level: 3 })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /log_level: must be a string, got a number/,
  },
  // ---- storage
  {
    label: 'input without path',
    req: post(svc({ input: [{ storage_provider: 'minio.default' }] })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /input\[0\]\.path: is required/,
  },
  {
    label: 'input path "/"',
    req: post(svc({ input: [{ path: '/' }] })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /input\[0\]\.path: must start with a bucket name/,
  },
  {
    label: 'input bucket of one letter',
    req: post(svc({ input: [{ path: 'b/in' }] })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /input\[0\]\.path: must start with a bucket name/,
  },
  {
    label: 'input is an object',
    req: post(svc({ input: { path: 'bucket' } })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /input: must be a list, got an object/,
  },
  {
    label: 'input entry is a string',
    req: post(svc({ input: ['bucket/in'] })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /input\[0\]/,
  },
  {
    label: 'invalid storage_provider',
    req: post(svc({ input: [{ storage_provider: 'ftp.server', path: 'bucket' }] })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /input\[0\]\.storage_provider: must be "<provider>\.<id>"/,
  },
  {
    // A bare kind ("minio") is OSCAR's "minio.default"; an unknown kind is refused.
    label: 'storage_provider of an unknown kind',
    req: post(svc({ output: [{ storage_provider: 'ftp', path: 'bucket' }] })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /output\[0\]\.storage_provider/,
  },
  {
    label: 'prefix not a list',
    req: post(svc({ input: [{ path: 'bucket', prefix: 'x' }] })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /input\[0\]\.prefix/,
  },
  {
    label: 'storage_providers is a string',
    req: post(svc({ storage_providers: { s3: 'x' } })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /storage_providers\.s3/,
  },
  {
    label: 'cluster endpoint not a URL',
    req: post(svc({ clusters: { b: { endpoint: 'not a url' } } })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /clusters\.b\.endpoint: must be a URL/,
  },
  {
    label: 'cluster ssl_verify a string',
    req: post(svc({ clusters: { b: { endpoint: 'https://b.example', ssl_verify: 'yes' } } })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /clusters\.b\.ssl_verify/,
  },
  // ---- environment
  {
    label: 'environment is a string',
    req: post(svc({ environment: 'A=1' })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /environment: must be an object, got a string/,
  },
  {
    label: 'environment is an array',
    req: post(svc({ environment: ['A=1'] })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /environment: must be an object, got a list/,
  },
  {
    label: 'variables is a list',
    req: post(svc({ environment: { variables: ['A'] } })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /environment\.variables/,
  },
  {
    label: 'variable is an object',
    req: post(svc({ environment: { variables: { A: { b: 1 } } } })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /environment\.variables\.A: must be a string, got an object/,
  },
  {
    // (A null secret is an empty one, as Go reads a null map value.)
    label: 'secret is a number',
    req: post(svc({ environment: { secrets: { S: 7 } } })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /environment\.secrets\.S/,
  },
  {
    label: 'annotations is a list',
    req: post(svc({ annotations: ['a'] })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /annotations/,
  },
  // ---- federation block
  {
    label: 'federation members a string',
    req: post(svc({ federation: { members: 'b' } })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /federation\.members/,
  },
  {
    label: 'federation member priority -1',
    req: post(svc({ federation: { members: [{ cluster_id: 'b', priority: -1 }] } })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /federation\.members\[0\]\.priority/,
  },
  {
    label: 'federation member bad type',
    req: post(svc({ federation: { members: [{ type: 'ftp' }] } })),
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /federation\.members\[0\]\.type/,
  },
  // ---- transport
  {
    label: 'body over the limit (JSON)',
    req: post(svc({ script: 'x'.repeat(70 * 1024) })),
    status: 413,
    code: 'PAYLOAD_TOO_LARGE',
    message: /larger than the limit/,
  },
  {
    label: 'body over the limit (YAML)',
    req: post(`name: big\nscript: ${'x'.repeat(70 * 1024)}\n`, YAML_CT),
    status: 413,
    code: 'PAYLOAD_TOO_LARGE',
    message: /larger than the limit/,
  },
  {
    label: 'Content-Length larger than the body',
    req: post('{"name":"cl","script":"s"}', { ...JSON_CT, 'content-length': '5' }),
    status: 400,
    code: 'BAD_REQUEST',
    message: /Content-Length/,
  },
  // JSON routes read JSON whatever the Content-Type says (DESIGN §3.1; OSCAR's clients send
  // none, text/json or octet-stream): what is not JSON is malformed JSON, not a 415.
  {
    label: 'form-encoded body',
    req: post('name=x&script=y', { ...ADMIN, 'content-type': 'application/x-www-form-urlencoded' }),
    status: 400,
    code: 'INVALID_JSON',
    message: /malformed JSON body/,
  },
  {
    label: 'octet-stream body',
    req: post('{}', { ...ADMIN, 'content-type': 'application/octet-stream' }),
    status: 400,
    code: 'INVALID_NAME',
    message: /name: is required/,
  },
  {
    label: 'text/plain that is not JSON',
    req: post('name: tp', { ...ADMIN, 'content-type': 'text/plain' }),
    status: 400,
    code: 'INVALID_JSON',
    message: /malformed JSON body/,
  },
  // ---- routes
  {
    label: 'unknown route',
    req: { method: 'GET', url: '/system/nothing-here', headers: ADMIN },
    status: 404,
    code: 'NOT_FOUND',
    message: /no route GET \/system\/nothing-here/,
  },
  {
    label: 'wrong method on the collection',
    req: { method: 'PATCH', url: '/system/services', headers: JSON_CT, payload: '{}' },
    status: 404,
    code: 'NOT_FOUND',
    message: /no route PATCH \/system\/services/,
  },
  {
    label: 'DELETE on the collection',
    req: { method: 'DELETE', url: '/system/services', headers: ADMIN },
    status: 404,
    code: 'NOT_FOUND',
    message: /no route DELETE/,
  },
  {
    label: 'POST to a service URL',
    req: { method: 'POST', url: '/system/services/abc', headers: JSON_CT, payload: svc({}) },
    status: 404,
    code: 'NOT_FOUND',
    message: /no route POST/,
  },
  {
    label: 'malformed percent-encoding in the path',
    req: { method: 'GET', url: '/system/services/%E0%A4%A', headers: ADMIN },
    status: 400,
    code: 'BAD_REQUEST',
    message: /not a valid url component/,
  },
  {
    label: 'path parameter over the router limit',
    req: { method: 'GET', url: `/system/services/${'a'.repeat(600)}`, headers: ADMIN },
    status: 400,
    code: 'BAD_REQUEST',
    message: /max param length/,
  },
  {
    label: 'unknown service',
    req: { method: 'GET', url: '/system/services/ghost', headers: ADMIN },
    status: 404,
    code: 'SERVICE_NOT_FOUND',
    message: /service "ghost" not found/,
  },
  {
    label: 'delete of an unknown service',
    req: { method: 'DELETE', url: '/system/services/ghost', headers: ADMIN },
    status: 404,
    code: 'SERVICE_NOT_FOUND',
    message: /"ghost"/,
  },
  {
    label: 'update of an unknown service',
    req: { method: 'PUT', url: '/system/services', headers: JSON_CT, payload: svc({ name: 'ghost' }) },
    status: 404,
    code: 'SERVICE_NOT_FOUND',
    message: /"ghost"/,
  },
  {
    label: 'path traversal in the name',
    req: { method: 'GET', url: '/system/services/..%2F..%2Fetc%2Fpasswd', headers: ADMIN },
    status: 404,
    code: 'SERVICE_NOT_FOUND',
    message: /not found/,
  },
  {
    label: 'invalid cascade query',
    req: { method: 'DELETE', url: '/system/services/existing?cascade=maybe', headers: ADMIN },
    status: 400,
    code: 'VALIDATION_FAILED',
    message: /cascade/,
  },
  // ---- credentials
  {
    label: 'no credentials',
    req: { method: 'GET', url: '/system/services' },
    status: 401,
    code: 'UNAUTHORIZED',
    message: /missing Authorization/,
  },
  {
    label: 'wrong admin password',
    req: { method: 'GET', url: '/system/services', headers: { authorization: basic('wrong-password') } },
    status: 401,
    code: 'UNAUTHORIZED',
    message: /invalid username or password/,
  },
  {
    label: 'wrong admin user',
    req: { method: 'GET', url: '/system/services', headers: { authorization: basic(undefined, 'root') } },
    status: 401,
    code: 'UNAUTHORIZED',
    message: /invalid username or password/,
  },
  {
    label: 'Basic with garbage',
    req: { method: 'GET', url: '/system/services', headers: { authorization: 'Basic %%%not-base64' } },
    status: 401,
    code: 'UNAUTHORIZED',
    message: /invalid username or password/,
  },
  {
    label: 'unsupported scheme',
    req: { method: 'GET', url: '/system/services', headers: { authorization: 'Digest username="oscar"' } },
    status: 401,
    code: 'UNAUTHORIZED',
    message: /unsupported Authorization scheme/,
  },
  {
    label: 'empty bearer',
    req: { method: 'GET', url: '/system/services', headers: { authorization: 'Bearer ' } },
    status: 401,
    code: 'UNAUTHORIZED',
    message: /Authorization/,
  },
  {
    label: 'unknown bearer token',
    req: { method: 'GET', url: '/system/services', headers: { authorization: 'Bearer not-a-jwt' } },
    status: 401,
    code: 'UNAUTHORIZED',
    message: /invalid or expired token/,
  },
  {
    label: 'wrong credentials on a create',
    req: post(svc({ name: 'sneaky' }), { authorization: basic('nope'), 'content-type': 'application/json' }),
    status: 401,
    code: 'UNAUTHORIZED',
    message: /invalid username or password/,
  },
  // ---- ownership
  {
    label: "another user's private service",
    req: {
      method: 'GET',
      url: '/system/services/existing',
      headers: { authorization: 'Bearer token-mallory' },
    },
    status: 403,
    code: 'FORBIDDEN',
    message: /may not access service "existing"/,
  },
  {
    // OSCAR's words, which its test suite reads (delete-not-own-service.robot).
    label: "deleting another user's service",
    req: {
      method: 'DELETE',
      url: '/system/services/existing',
      headers: { authorization: 'Bearer token-mallory' },
    },
    status: 403,
    code: 'FORBIDDEN',
    message: /^You do not have permission to delete this service$/,
  },
  {
    label: "updating another user's service",
    req: {
      method: 'PUT',
      url: '/system/services',
      headers: { authorization: 'Bearer token-mallory', 'content-type': 'application/json' },
      payload: svc({ name: 'existing' }),
    },
    status: 403,
    code: 'FORBIDDEN',
    message: /"existing"/,
  },
  {
    label: 'duplicate create',
    req: post(svc({ name: 'existing' })),
    status: 409,
    code: 'SERVICE_EXISTS',
    message: /service "existing" already exists/,
  },
];

beforeAll(async () => {
  tm = await startInProcess({ bodyLimit: '64Ki' }, { verifier: stubVerifier });
  const res = await tm.manager.http.inject(
    post(JSON.stringify({ name: 'existing', image: 'alpine', script: 'echo' })),
  );
  expect(res.statusCode, res.body).toBe(201);
});

afterAll(async () => {
  await tm?.close();
});

describe('bad input answers a 4xx JSON error naming the problem', () => {
  it.each(CASES)('$label → $status $code', async ({ label, req, status, code, message }) => {
    const res = await send(label, req);
    expect(res.statusCode, res.body).toBe(status);
    expect(res.headers['content-type']).toMatch(/application\/json/);
    const body = res.json();
    expect(body).toMatchObject({ code, statusCode: status });
    expect(typeof body.message).toBe('string');
    expect(body.message).toMatch(message);
  });
});

describe('after all that', () => {
  it('stored nothing but the one valid service, and "existing" is unchanged', async () => {
    const list = await tm.manager.http.inject({ method: 'GET', url: '/system/services', headers: ADMIN });
    expect(list.statusCode).toBe(200);
    expect((list.json() as Array<{ name: string }>).map((s) => s.name)).toEqual(['existing']);
    const existing = await tm.store.getService('existing');
    expect(existing).toMatchObject({ image: 'alpine', script: 'echo', owner: 'cluster_admin' });
  });

  it('polluted no prototype', () => {
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
  });

  it('never answered a 5xx', () => {
    expect(responses.length).toBe(CASES.length);
    const fivexx = responses.filter((r) => r.res.statusCode >= 500).map((r) => `${r.label}: ${r.res.body}`);
    expect(fivexx).toEqual([]);
  });

  it('a 401 carries WWW-Authenticate', () => {
    const unauthorized = responses.filter((r) => r.res.statusCode === 401);
    expect(unauthorized.length).toBeGreaterThan(0);
    for (const r of unauthorized) expect(r.res.headers['www-authenticate'], r.label).toMatch(/Basic/);
  });

  it('a 5xx would be logged without the query parameters a database error quotes (tokens, secrets)', () => {
    const err = new Error(
      'Failed query: insert into "services" values ($1, $2)\nparams: svc,{"token":"abc","secrets":{"K":"v"}}',
    );
    const stack = `Error: ${err.message}\n    at PglitePreparedQuery.queryWithCache (session.ts:73:11)`;
    expect(scrubForLog(err.message)).toBe(
      'Failed query: insert into "services" values ($1, $2)\nparams: [redacted]',
    );
    expect(scrubForLog(stack)).not.toContain('"token"');
    expect(scrubForLog(stack)).toContain('at PglitePreparedQuery');
    expect(scrubForLog('plain message')).toBe('plain message');
  });

  it('still accepts a valid service after the abuse', async () => {
    const res = await tm.manager.http.inject(
      post(JSON.stringify({ name: 'still-fine', image: 'alpine', script: 's' })),
    );
    expect(res.statusCode, res.body).toBe(201);
  });
});
