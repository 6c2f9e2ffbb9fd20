// Request bodies: JSON as usual, YAML for service definitions, and raw bytes for
// invocation routes (the event is whatever the client sends).
// JSON and YAML bodies must be valid UTF-8 (bytes are never silently replaced by U+FFFD)
// and must not carry "__proto__" or "constructor.prototype" keys (prototype pollution).
import type { FastifyInstance } from 'fastify';
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

export const addJsonParser = (app: FastifyInstance): void => {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => {
    try {
      const text = decodeUtf8(body as Buffer, 'INVALID_JSON');
      if (text.trim() === '')
        throw new FlotillaError('INVALID_JSON', 'request body is empty; send a JSON document');
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (e) {
        throw new FlotillaError('INVALID_JSON', `malformed JSON body: ${(e as Error).message}`);
      }
      done(null, refuseForbiddenKeys(parsed, 'INVALID_JSON'));
    } catch (e) {
      done(e as Error, undefined);
    }
  });
};

export const addYamlParser = (app: FastifyInstance): void => {
  app.addContentTypeParser(YAML_TYPES, { parseAs: 'buffer' }, (_req, body, done) => {
    try {
      const text = decodeUtf8(body as Buffer, 'INVALID_YAML');
      let parsed: unknown;
      try {
        // logLevel 'error': a client's body must not write YAML warnings to the manager's stderr.
        parsed = parseYaml(text, { maxAliasCount: 100, logLevel: 'error' });
      } catch (e) {
        throw new FlotillaError(
          'INVALID_YAML',
          `malformed YAML body: ${(e as Error).message.split('\n')[0]}`,
        );
      }
      done(null, refuseForbiddenKeys(parsed, 'INVALID_YAML'));
    } catch (e) {
      done(e as Error, undefined);
    }
  });
};

/** Inside an encapsulated plugin: every content type arrives as a Buffer. */
export const useRawBodies = (app: FastifyInstance): void => {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
};
