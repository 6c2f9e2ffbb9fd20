// GET /ui: the dashboard, static files from web/. The page calls the public API with the
// caller's own credentials; it holds no data and no secret itself. POST /ui/fdl reads an
// FDL for the page (it has no YAML parser): the same reading as `flotilla apply`.
import { readFile } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import { fail } from '../../core/errors.ts';
import { parseFdl, parseYamlText } from '../../core/fdl/fdl-file.ts';
import { yamlAsGo } from '../../core/fdl/go-decode.ts';
import { MAX_ROWS_LIMIT, RESOURCES, VERBS } from '../../core/trust/scope.ts';
import { type HttpContext, principalOf } from '../context.ts';

const WEB_DIR = new URL('../../../web/', import.meta.url);
const FILES: Record<string, { file: string; type: string }> = {
  '/ui': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/ui/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/ui/graph.js': { file: 'graph.js', type: 'text/javascript; charset=utf-8' },
  '/ui/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};
// Only this origin's own files and API: no inline script, no third party, no framing.
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' blob:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
// The grant scope editor's closed lists, from the scope's own definition (never a copy).
const SCOPE_JS = `// Generated from src/core/trust/scope.ts.
export const RESOURCES = ${JSON.stringify(RESOURCES)};
export const VERBS = ${JSON.stringify(VERBS)};
export const MAX_ROWS_LIMIT = ${MAX_ROWS_LIMIT};
`;
const FDL_MAX_BYTES = 1024 * 1024;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** An FDL (`functions: {oscar: [...]}`) or one service's YAML, as the services to create. */
export const readFdlForPage = (text: string) => {
  const doc = parseYamlText(text);
  const isFdl = !!doc && typeof doc === 'object' && !Array.isArray(doc) && 'functions' in doc;
  if (isFdl) {
    return parseFdl(text).entries.map((e) => ({
      cluster_id: e.clusterId ?? null,
      script_path: e.scriptPath ?? null,
      service: e.service,
    }));
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) {
    fail('VALIDATION_FAILED', 'FDL must be a map: "functions: {oscar: [...]}" or one service');
  }
  const service = yamlAsGo(doc) as Record<string, unknown>;
  return [{ cluster_id: null, script_path: null, service }];
};

export const dashboardRoutes = async (app: FastifyInstance, ctx: HttpContext): Promise<void> => {
  const bodies: Array<[string, string, Buffer | string]> = [
    ['/ui/scope.js', 'text/javascript; charset=utf-8', SCOPE_JS],
  ];
  for (const [path, { file, type }] of Object.entries(FILES)) {
    bodies.push([path, type, await readFile(new URL(file, WEB_DIR))]);
  }
  for (const [path, type, body] of bodies) {
    app.get(path, { schema: { tags: ['dashboard'], summary: `Dashboard: ${path}` } }, async (_req, reply) => {
      reply
        .type(type)
        .header('content-security-policy', CSP)
        .header('x-content-type-options', 'nosniff')
        .header('referrer-policy', 'no-referrer')
        .header('cache-control', 'no-cache')
        .send(body);
    });
  }
  await app.register(async (scoped) => {
    scoped.removeAllContentTypeParsers();
    scoped.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
    scoped.post(
      '/ui/fdl',
      {
        bodyLimit: FDL_MAX_BYTES,
        schema: { tags: ['dashboard'], summary: 'Read an FDL into the services it defines (for the page)' },
      },
      async (req) => {
        // Only for signed-in callers: the page's own helper, not an open YAML parser.
        await principalOf(ctx, req);
        const raw = req.body instanceof Uint8Array ? req.body : new Uint8Array(0);
        let text: string;
        try {
          text = utf8.decode(raw);
        } catch {
          return fail('INVALID_YAML', 'FDL is not valid UTF-8');
        }
        if (text.trim() === '') fail('VALIDATION_FAILED', 'FDL: the file is empty');
        return { services: readFdlForPage(text) };
      },
    );
  });
};
