// Request bodies, read as OSCAR's clients send them (DESIGN §3.1): JSON whatever the
// Content-Type says, or when there is none (oscar-cli and oscar_python send none, OSCAR's
// test suite sends text/json); YAML only when the type says YAML; raw bytes on the
// invocation routes (the event is whatever the client sends). An empty body (a body-less
// DELETE or POST with `Content-Length: 0`) is no body, whatever its type.
// JSON and YAML bodies must be valid UTF-8 (bytes are never silently replaced by U+FFFD)
// and must not carry "__proto__" or "constructor.prototype" keys (prototype pollution).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { parse as parseYaml } from 'yaml';
import { FlotillaError } from '../core/errors.ts';

export const YAML_TYPES = ['application/yaml', 'application/x-yaml', 'text/yaml', 'text/x-yaml'];

const utf8 = new TextDecoder('utf-8', { fatal: true });

const decodeUtf8 = (body: Buffer, code: 'INVALID_JSON' | 'INVALID_YAML'): string => {
  try {
    return utf8.decode(body);
  } catch {
    throw new FlotillaError(code, 'request body is not valid UTF-8');
  }
};

/** The path of the first key that could pollute a prototype, or undefined. Iterative: no stack limit. */
export const findForbiddenKey = (value: unknown): string | undefined => {
  const stack: Array<{ node: unknown; path: string }> = [{ node: value, path: '' }];
  while (stack.length > 0) {
    const { node, path } = stack.pop()!;
    if (node === null || typeof node !== 'object') continue;
    for (const [k, v] of Object.entries(node)) {
      const where = path ? `${path}.${k}` : k;
      if (k === '__proto__') return where;
      if (k === 'constructor' && v !== null && typeof v === 'object' && Object.hasOwn(v, 'prototype')) {
        return `${where}.prototype`;
      }
      stack.push({ node: v, path: where });
    }
  }
  return undefined;
};

const refuseForbiddenKeys = (value: unknown, code: 'INVALID_JSON' | 'INVALID_YAML'): unknown => {
  const key = findForbiddenKey(value);
  if (key !== undefined) throw new FlotillaError(code, `request body must not contain the key "${key}"`);
  return value;
};

/** A JSON body; undefined when there is none (zero bytes or only white space). */
export const parseJsonBody = (body: Buffer): unknown => {
  const text = decodeUtf8(body, 'INVALID_JSON');
  if (text.trim() === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new FlotillaError('INVALID_JSON', `malformed JSON body: ${(e as Error).message}`);
  }
  return refuseForbiddenKeys(parsed, 'INVALID_JSON');
};

/** A YAML body; undefined when there is none. */
export const parseYamlBody = (body: Buffer): unknown => {
  const text = decodeUtf8(body, 'INVALID_YAML');
  if (text.trim() === '') return undefined;
  let parsed: unknown;
  try {
    // logLevel 'error': a client's body must not write YAML warnings to the manager's stderr.
    parsed = parseYaml(text, { maxAliasCount: 100, logLevel: 'error' });
  } catch (e) {
    throw new FlotillaError('INVALID_YAML', `malformed YAML body: ${(e as Error).message.split('\n')[0]}`);
  }
  return refuseForbiddenKeys(parsed, 'INVALID_YAML');
};

/** Whether the request said its body is YAML (and so was read as YAML, not JSON). */
export const isYamlRequest = (req: FastifyRequest): boolean => {
  const type = String(req.headers['content-type'] ?? '')
    .split(';')[0]
    .trim()
    .toLowerCase();
  return YAML_TYPES.includes(type);
};

const parser =
  (parse: (body: Buffer) => unknown) =>
  (_req: FastifyRequest, body: Buffer | string, done: (err: Error | null, value?: unknown) => void) => {
    try {
      done(null, parse(body as Buffer));
    } catch (e) {
      done(e as Error, undefined);
    }
  };

/** JSON for every type but YAML's, including none at all. */
export const addBodyParsers = (app: FastifyInstance): void => {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(YAML_TYPES, { parseAs: 'buffer' }, parser(parseYamlBody));
  // '*' also stands for a request without a Content-Type.
  app.addContentTypeParser('*', { parseAs: 'buffer' }, parser(parseJsonBody));
};

/** Inside an encapsulated plugin: every content type arrives as a Buffer. */
export const useRawBodies = (app: FastifyInstance): void => {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
};
