// Zod schemas serve validation and the OpenAPI document. Some route schemas are only for
// the document (the use case validates with richer messages): mark them with docsOnly.
import type { FastifySchemaCompiler } from 'fastify';
import { validatorCompiler } from 'fastify-type-provider-zod';
import type { ZodType } from 'zod';

const docsOnlySchemas = new WeakSet<object>();

export const docsOnly = <T extends ZodType>(schema: T): T => {
  docsOnlySchemas.add(schema);
  return schema;
};

export const flotillaValidatorCompiler: FastifySchemaCompiler<ZodType> = (route) => {
  if (docsOnlySchemas.has(route.schema)) return (data: unknown) => ({ value: data });
  return validatorCompiler(route);
};
