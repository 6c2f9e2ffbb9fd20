#!/usr/bin/env node
// The `flotilla` command. Runs the compiled CLI in dist/ when it was built from exactly the
// files in this checkout (npm ci builds it, as `prepare`), else the TypeScript sources
// through tsx: no run, test or benchmark can use a stale build. FLOTILLA_RUN=dist insists
// on the build (exit 2 when it is stale), FLOTILLA_RUN=src on the sources.
import { fileURLToPath } from 'node:url';
import { distState } from '../scripts/build-stamp.mjs';

// The AWS SDK warns on every start that future releases need Node 22; the pinned one works.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const want = process.env.FLOTILLA_RUN ?? 'auto';
const state = want === 'src' ? 'not used' : distState(fileURLToPath(new URL('..', import.meta.url)));
if (want === 'dist' && state !== 'fresh') {
  process.stderr.write(`flotilla: FLOTILLA_RUN=dist, but dist/ is ${state}: run npm run build\n`);
  process.exit(2);
}
if (state === 'fresh') {
  await import('../dist/src/cli/main.js');
} else {
  if (want === 'auto' && process.argv[2] === 'up') {
    process.stderr.write(
      `flotilla: dist/ is ${state}, running the TypeScript sources (slower start, more memory; npm run build)\n`,
    );
  }
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
