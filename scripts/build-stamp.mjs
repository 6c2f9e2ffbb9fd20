// What dist/ is built from, and whether dist/ was built from exactly the files here now.
// Shared by scripts/build.mjs (writes the stamp) and bin/flotilla.mjs (checks it at every
// start, so a run never uses a build older than its sources). Plain JavaScript: it runs
// before anything can transpile TypeScript.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Every file under these directories is an input (code, SQL migrations, dashboard files). */
export const INPUT_DIRS = ['src', 'client', 'web'];
export const INPUT_FILES = [
  'package.json',
  'tsconfig.json',
  'tsconfig.build.json',
  'scripts/build.mjs',
  'scripts/build-stamp.mjs',
];
export const STAMP_FILE = 'build-stamp.json';

const walk = (root, dir, out) => {
  let entries;
  try {
    entries = readdirSync(join(root, dir), { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) walk(root, rel, out);
    else out.push(rel);
  }
};

/** SHA-256 over the sorted paths and contents of every input: content, not mtimes, decides. */
export const inputsHash = (root) => {
  const files = [...INPUT_FILES];
  for (const d of INPUT_DIRS) walk(root, d, files);
  files.sort();
  const h = createHash('sha256');
  for (const f of files) {
    h.update(`${f}\0`);
    try {
      h.update(readFileSync(join(root, f)));
    } catch {
      h.update('\0missing');
    }
    h.update('\0');
  }
  return h.digest('hex');
};

/** 'fresh' (built from exactly the current inputs), 'stale', or 'missing' (no finished build). */
export const distState = (root, distDir = join(root, 'dist')) => {
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(join(distDir, STAMP_FILE), 'utf8'));
  } catch {
    return 'missing';
  }
  return stamp?.inputs === inputsHash(root) ? 'fresh' : 'stale';
};
