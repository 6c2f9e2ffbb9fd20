// Request bodies: JSON as usual, YAML for service definitions, and raw bytes for
// invocation routes (the event is whatever the client sends).
import type { FastifyInstance } from 'fastify';
import { parse as parseYaml } from 'yaml';
import { FlotillaError } from '../core/errors.ts';

export const YAML_TYPES = ['application/yaml', 'application/x-yaml', 'text/yaml', 'text/x-yaml'];

export const addYamlParser = (app: FastifyInstance): void => {
  app.addContentTypeParser(YAML_TYPES, { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, parseYaml(body as string, { maxAliasCount: 100 }));
    } catch (e) {
      done(
        new FlotillaError('INVALID_YAML', `malformed YAML body: ${(e as Error).message.split('\n')[0]}`),
        undefined,
      );
    }
  });
};

/** Inside an encapsulated plugin: every content type arrives as a Buffer. */
export const useRawBodies = (app: FastifyInstance): void => {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
};
