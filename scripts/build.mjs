#!/usr/bin/env node
// `npm run build`, and the `prepare` step of `npm ci`: compiles src/ and client/ to dist/
// (tsc, no type check: that is `npm run typecheck`'s job), puts next to the output what the
// compiled code reads relative to itself, and writes the stamp bin/flotilla.mjs checks.
// The new tree is built aside and swapped in, so dist/ is never half-written: a reader sees
// the old build, no build (it falls back to the sources), or the new one.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inputsHash, STAMP_FILE } from './build-stamp.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');
// In npm ci, a failed build must not fail the install: flotilla then runs the sources.
const lenient = process.env.npm_lifecycle_event === 'prepare';
const fail = (msg) => {
  process.stderr.write(`build: ${msg}${lenient ? ' (flotilla will run the TypeScript sources)' : ''}\n`);
  process.exit(lenient ? 0 : 1);
};

const tscBin = join(root, 'node_modules', '.bin', 'tsc');
if (!existsSync(tscBin)) fail('typescript is not installed (devDependencies omitted?)');

// Hashed before compiling: a source edited during the build leaves the stamp stale, not wrong.
const inputs = inputsHash(root);
const tmp = join(root, `.dist-build-${process.pid}`);
rmSync(tmp, { recursive: true, force: true });
const tsc = spawnSync(tscBin, ['-p', 'tsconfig.build.json', '--noCheck', '--outDir', tmp], {
  cwd: root,
  stdio: 'inherit',
});
if (tsc.status !== 0) {
  rmSync(tmp, { recursive: true, force: true });
  fail(`tsc exited with ${tsc.status ?? tsc.signal}`);
}

// Files beside the sources that the code opens by path (SQL migrations, the spawner and
// PGlite helper scripts): copied to the same place in the output.
const copyAssets = (dir) => {
  for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) copyAssets(rel);
    else if (!e.name.endsWith('.ts')) {
      mkdirSync(dirname(join(tmp, rel)), { recursive: true });
      cpSync(join(root, rel), join(tmp, rel));
    }
  }
};
copyAssets('src');
copyAssets('client');
// The code reaches three things outside src/ by relative path; dist/ sits one level deeper
// than the repository root, so they are provided there: the dashboard files, package.json
// (the version), and bin/flotilla.mjs (the demo starts managers through it).
cpSync(join(root, 'web'), join(tmp, 'web'), { recursive: true });
cpSync(join(root, 'package.json'), join(tmp, 'package.json'));
mkdirSync(join(tmp, 'bin'));
writeFileSync(
  join(tmp, 'bin', 'flotilla.mjs'),
  "// Forwards to the launcher.\nimport '../../bin/flotilla.mjs';\n",
);
writeFileSync(join(tmp, STAMP_FILE), `${JSON.stringify({ inputs, builtAt: new Date().toISOString() })}\n`);

const old = join(root, `.dist-old-${process.pid}`);
if (existsSync(dist)) renameSync(dist, old);
renameSync(tmp, dist);
rmSync(old, { recursive: true, force: true });
process.stdout.write(`build: dist/ is up to date (inputs ${inputs.slice(0, 12)})\n`);
