// bin/flotilla.mjs runs the compiled dist/ only when it was built from exactly the current
// sources, else the TypeScript sources: tests, benchmarks and users never run a stale build.
// Checked on a throwaway checkout with the real launcher, build script and compiler.
import { spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { distState, inputsHash } from '../../scripts/build-stamp.mjs';
import { REPO_ROOT } from '../support/cluster-harness.ts';

let root: string;

const put = (rel: string, text: string) => {
  mkdirSync(dirname(join(root, rel)), { recursive: true });
  writeFileSync(join(root, rel), text);
};

// Says which tree it runs from and which edit of the source it is.
const mainTs = (edit: number) =>
  `const edit: number = ${edit};\n` +
  "const tree = import.meta.url.includes('/dist/') ? 'dist' : 'src';\n" +
  "console.log('ran ' + tree + ' edit ' + edit);\n";

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'flotilla-launcher-'));
  for (const f of ['bin/flotilla.mjs', 'scripts/build.mjs', 'scripts/build-stamp.mjs', 'tsconfig.json']) {
    mkdirSync(dirname(join(root, f)), { recursive: true });
    cpSync(join(REPO_ROOT, f), join(root, f));
  }
  put('package.json', '{ "name": "mini", "version": "1.2.3", "type": "module" }\n');
  put('tsconfig.build.json', readFileSync(join(REPO_ROOT, 'tsconfig.build.json'), 'utf8'));
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(root, 'node_modules'));
  put('src/cli/main.ts', mainTs(1));
  put('src/store/migrations/0000.sql', 'select 1;\n');
  put('client/api.ts', 'export const api = 1;\n');
  put('web/index.html', '<p>ui</p>\n');
});

afterEach(() => rmSync(root, { recursive: true, force: true }));

const launch = (env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [join(root, 'bin/flotilla.mjs'), 'up'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/', ...env },
    encoding: 'utf8',
  });

const build = () =>
  spawnSync(process.execPath, [join(root, 'scripts/build.mjs')], { cwd: root, encoding: 'utf8' });

describe('the build', () => {
  it('compiles, copies what the code opens by path, and stamps dist/ with its inputs', () => {
    const r = build();
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(join(root, 'dist/src/cli/main.js'), 'utf8')).toContain('const edit = 1;');
    expect(readFileSync(join(root, 'dist/src/store/migrations/0000.sql'), 'utf8')).toBe('select 1;\n');
    expect(existsSync(join(root, 'dist/web/index.html'))).toBe(true);
    expect(JSON.parse(readFileSync(join(root, 'dist/package.json'), 'utf8')).version).toBe('1.2.3');
    expect(JSON.parse(readFileSync(join(root, 'dist/build-stamp.json'), 'utf8')).inputs).toBe(
      inputsHash(root),
    );
    expect(distState(root)).toBe('fresh');
  });

  it('goes stale on any change of content in src, client or web, and on a new file', () => {
    expect(build().status).toBe(0);
    for (const [rel, text] of [
      ['src/cli/main.ts', mainTs(2)],
      ['client/api.ts', 'export const api = 2;\n'],
      ['web/index.html', '<p>new ui</p>\n'],
      ['src/store/migrations/0001.sql', 'select 2;\n'],
    ]) {
      const before = existsSync(join(root, rel)) ? readFileSync(join(root, rel), 'utf8') : undefined;
      put(rel, text);
      expect(distState(root), rel).toBe('stale');
      if (before === undefined) rmSync(join(root, rel));
      else put(rel, before);
      expect(distState(root), rel).toBe('fresh');
    }
  });
});

describe('bin/flotilla.mjs', () => {
  it('runs dist/ when it is fresh, silently', () => {
    expect(build().status).toBe(0);
    const r = launch();
    expect(r.stdout).toBe('ran dist edit 1\n');
    expect(r.stderr).toBe('');
  });

  it('runs the sources, and says so, when a source changed after the build', () => {
    expect(build().status).toBe(0);
    put('src/cli/main.ts', mainTs(2));
    const r = launch();
    expect(r.stdout).toBe('ran src edit 2\n');
    expect(r.stderr).toContain('dist/ is stale, running the TypeScript sources');
  });

  it('runs the sources when there is no finished build', () => {
    expect(launch().stdout).toBe('ran src edit 1\n');
    // A build that died before writing its stamp: the output is there, the stamp is not.
    put('dist/src/cli/main.js', "console.log('ran dist');\n");
    const r = launch();
    expect(r.stdout).toBe('ran src edit 1\n');
    expect(r.stderr).toContain('dist/ is missing');
  });

  it('FLOTILLA_RUN=dist refuses a stale build; FLOTILLA_RUN=src skips a fresh one', () => {
    expect(build().status).toBe(0);
    put('src/cli/main.ts', mainTs(2));
    const refused = launch({ FLOTILLA_RUN: 'dist' });
    expect(refused.status).toBe(2);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toContain('dist/ is stale: run npm run build');
    expect(build().status).toBe(0);
    expect(launch({ FLOTILLA_RUN: 'dist' }).stdout).toBe('ran dist edit 2\n');
    const forced = launch({ FLOTILLA_RUN: 'src' });
    expect(forced.stdout).toBe('ran src edit 2\n');
    expect(forced.stderr).toBe('');
  });
});
