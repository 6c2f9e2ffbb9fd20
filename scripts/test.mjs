#!/usr/bin/env node
// `npm test`: type-check, lint, build dist/ (so the end-to-end tests start the compiled CLI
// as users do; bin/flotilla.mjs runs the sources instead when dist/ is stale), then the whole
// vitest suite. Ends with one plain line "N passed, N failed" read from vitest's JSON report.
// A run with no test fails.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';

const REPORT = '.test-report.json';
const bin = (name) => `node_modules/.bin/${name}`;
const step = (title, cmd, args) => {
  process.stdout.write(`\n== ${title}\n`);
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  return r.status === 0;
};

let ok = step('type-check (tsc)', bin('tsc'), ['-p', 'tsconfig.json', '--noEmit']);
ok = step('lint (biome)', bin('biome'), ['check', '.']) && ok;
ok = step('build (dist/)', process.execPath, ['scripts/build.mjs']) && ok;
rmSync(REPORT, { force: true });
const testsOk = step('tests (vitest)', bin('vitest'), [
  'run',
  '--reporter=default',
  '--reporter=json',
  `--outputFile.json=${REPORT}`,
  ...process.argv.slice(2),
]);

let passed = 0;
let failed = 0;
if (existsSync(REPORT)) {
  const report = JSON.parse(readFileSync(REPORT, 'utf8'));
  passed = report.numPassedTests ?? 0;
  failed = report.numFailedTests ?? 0;
  // A file that failed to load counts as a failure even when no test in it ran.
  const brokenFiles = (report.testResults ?? []).filter(
    (f) => f.status === 'failed' && f.assertionResults.length === 0,
  ).length;
  failed += brokenFiles;
}
if (!ok) failed += 1; // type errors, lint findings or a failed build count as one failure
const total = passed + failed;
process.stdout.write(`\n${passed} passed, ${failed} failed\n`);
process.exit(ok && testsOk && failed === 0 && total > 0 ? 0 : 1);
