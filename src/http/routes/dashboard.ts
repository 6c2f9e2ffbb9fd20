// GET /ui: the dashboard, three static files from web/. The page calls the public API with
// the caller's own credentials; it holds no data and no secret itself.
import { readFile } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';

const WEB_DIR = new URL('../../../web/', import.meta.url);
const FILES: Record<string, { file: string; type: string }> = {
  '/ui': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/ui/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/ui/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};
// Only this origin's own files and API: no inline script, no third party, no framing.
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

export const dashboardRoutes = async (app: FastifyInstance): Promise<void> => {
  for (const [path, { file, type }] of Object.entries(FILES)) {
    const body = await readFile(new URL(file, WEB_DIR));
    app.get(path, { schema: { tags: ['dashboard'], summary: `Dashboard: ${file}` } }, async (_req, reply) => {
      reply
        .type(type)
        .header('content-security-policy', CSP)
        .header('x-content-type-options', 'nosniff')
        .header('referrer-policy', 'no-referrer')
        .header('cache-control', 'no-cache')
        .send(body);
    });
  }
};
