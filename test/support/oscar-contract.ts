// OSCAR's published API (Swagger 2.0) as a response validator. The spec is read from
// FLOTILLA_OSCAR_SPEC (when set, only there) or from ../shared/contract/ next to the repository; it is never
// copied into the repository. When it is absent, `loadOscarContract()` answers undefined
// with the reason, and the contract test reports itself skipped.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { parse as parseYaml } from 'yaml';

export const SPEC_FILE_NAME = 'oscar-swagger-v4.1.2.yaml';
const SPEC_ID = 'oscar-spec';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Where the spec is looked for: FLOTILLA_OSCAR_SPEC alone when set, else next to the repository. */
export const specCandidates = (env: NodeJS.ProcessEnv = process.env): string[] =>
  env.FLOTILLA_OSCAR_SPEC
    ? [resolve(env.FLOTILLA_OSCAR_SPEC)]
    : [resolve(repoRoot, '..', 'shared', 'contract', SPEC_FILE_NAME)];

type HttpMethod = 'get' | 'post' | 'put' | 'delete' | 'patch' | 'head' | 'options';

interface SwaggerResponse {
  description?: string;
  schema?: Record<string, unknown>;
}

interface SwaggerOperation {
  responses?: Record<string, SwaggerResponse>;
  produces?: string[];
}

interface SwaggerSpec {
  swagger?: string;
  paths: Record<string, Partial<Record<HttpMethod, SwaggerOperation>>>;
  definitions?: Record<string, unknown>;
}

export interface ContractResult {
  ok: boolean;
  errors: string[];
}

export interface OscarContract {
  /** The file the spec was read from. */
  readonly source: string;
  /** Path templates the spec declares, e.g. "/system/services/{serviceName}". */
  readonly paths: readonly string[];
  /** Whether OSCAR declares this method on this path. */
  hasOperation(method: string, pathTemplate: string): boolean;
  /** Validates a response body against the schema OSCAR declares for that status. */
  validateOscarResponse(method: string, pathTemplate: string, status: number, body: unknown): ContractResult;
}

export type ContractLoad =
  | { contract: OscarContract; reason?: undefined }
  | { contract?: undefined; reason: string };

/**
 * Swagger 2.0 schemas are a near subset of JSON Schema draft-04/07; the differences that
 * matter for validation are vendor keys (x-*) and `discriminator`, which strict: false
 * lets Ajv ignore. The whole spec is registered under SPEC_ID so every
 * `$ref: '#/definitions/X'` inside it resolves against the spec's own definitions.
 */
const buildContract = (spec: SwaggerSpec, source: string): OscarContract => {
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  // Only `definitions` matter for $ref resolution; the paths section is not schema-shaped.
  ajv.addSchema({ $id: SPEC_ID, definitions: spec.definitions ?? {} });
  const compiled = new Map<string, ValidateFunction>();

  const operation = (method: string, pathTemplate: string): SwaggerOperation | undefined =>
    spec.paths[pathTemplate]?.[method.toLowerCase() as HttpMethod];

  const validatorFor = (key: string, schema: Record<string, unknown>): ValidateFunction => {
    let fn = compiled.get(key);
    if (!fn) {
      fn = ajv.compile(rebase(schema));
      compiled.set(key, fn);
    }
    return fn;
  };

  return {
    source,
    paths: Object.keys(spec.paths),
    hasOperation: (method, pathTemplate) => operation(method, pathTemplate) !== undefined,
    validateOscarResponse(method, pathTemplate, status, body) {
      const op = operation(method, pathTemplate);
      if (!op) return { ok: false, errors: [`OSCAR declares no ${method.toUpperCase()} ${pathTemplate}`] };
      const response = op.responses?.[String(status)];
      if (!response) {
        const declared = Object.keys(op.responses ?? {}).join(', ');
        return {
          ok: false,
          errors: [
            `OSCAR declares no ${status} for ${method.toUpperCase()} ${pathTemplate} (declared: ${declared})`,
          ],
        };
      }
      const schema = response.schema;
      if (!schema) {
        // No schema: OSCAR promises nothing about the body, so only an empty one conforms.
        return isEmpty(body)
          ? { ok: true, errors: [] }
          : { ok: false, errors: ['OSCAR declares no body here'] };
      }
      // An empty body stands for "" only where OSCAR documents a plain string (201/204 etc.).
      if (isEmpty(body)) {
        return schema.type === 'string'
          ? { ok: true, errors: [] }
          : { ok: false, errors: [`empty body, but OSCAR declares ${describeSchema(schema)}`] };
      }
      const validate = validatorFor(`${method.toLowerCase()} ${pathTemplate} ${status}`, schema);
      if (validate(body)) return { ok: true, errors: [] };
      return { ok: false, errors: (validate.errors ?? []).map(formatAjvError) };
    },
  };
};

/** Points the spec's local refs ('#/definitions/X') at the registered spec ('oscar-spec#/definitions/X'). */
const rebase = (schema: unknown): Record<string, unknown> =>
  JSON.parse(
    JSON.stringify(schema, (key, value) =>
      key === '$ref' && typeof value === 'string' && value.startsWith('#/') ? `${SPEC_ID}${value}` : value,
    ),
  );

const isEmpty = (body: unknown): boolean => body === undefined || body === null || body === '';

const describeSchema = (schema: Record<string, unknown>): string =>
  typeof schema.$ref === 'string'
    ? String(schema.$ref).replace('#/definitions/', '')
    : String(schema.type ?? 'a schema');

const formatAjvError = (e: ErrorObject): string => `${e.instancePath || '(body)'} ${e.message ?? e.keyword}`;

/** Reads the spec; `reason` explains why there is none. */
export const loadOscarContract = (env: NodeJS.ProcessEnv = process.env): ContractLoad => {
  const candidates = specCandidates(env);
  const file = candidates.find((p) => existsSync(p));
  if (!file) {
    return { reason: `OSCAR spec not found (looked at ${candidates.join(', ')}; set FLOTILLA_OSCAR_SPEC)` };
  }
  const spec = parseYaml(readFileSync(file, 'utf8')) as SwaggerSpec;
  if (!spec || typeof spec !== 'object' || !spec.paths) {
    return { reason: `${file} is not a Swagger document (no "paths")` };
  }
  return { contract: buildContract(spec, file) };
};

let shared: ContractLoad | undefined;

/** Validates against the spec found from process.env (loaded once); throws when it is absent. */
export const validateOscarResponse = (
  method: string,
  pathTemplate: string,
  status: number,
  body: unknown,
): ContractResult => {
  shared ??= loadOscarContract();
  if (!shared.contract) throw new Error(shared.reason);
  return shared.contract.validateOscarResponse(method, pathTemplate, status, body);
};
