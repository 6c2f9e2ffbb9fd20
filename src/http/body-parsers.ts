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

/** Where a node sits: its key and its parent's place (the path is spelled out only when found). */
type Place = { key: string; up: Place | undefined };

const pathOf = (place: Place | undefined, last: string): string => {
  const keys = [last];
  for (let p = place; p; p = p.up) keys.push(p.key);
  return keys.reverse().join('.');
};

/** The path of the first key that could pollute a prototype, or undefined. Iterative: no stack
 * limit; only objects are visited, and no path is built unless one is found. */
export const findForbiddenKey = (value: unknown): string | undefined => {
  if (value === null || typeof value !== 'object') return undefined;
  const nodes: object[] = [value];
  const places: Array<Place | undefined> = [undefined];
  while (nodes.length > 0) {
    const node = nodes.pop() as Record<string, unknown>;
    const place = places.pop();
    for (const k of Object.keys(node)) {
      const v = node[k];
      if (k === '__proto__') return pathOf(place, k);
      if (v === null || typeof v !== 'object') continue;
      if (k === 'constructor' && Object.hasOwn(v, 'prototype')) return `${pathOf(place, k)}.prototype`;
      nodes.push(v);
      places.push({ key: k, up: place });
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
