import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { BuildInfo } from '../app/system.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

let cached: BuildInfo | undefined;

/** Version from package.json and the commit of the checkout, read once per process. */
export const readBuildInfo = (): BuildInfo => {
  if (cached) return cached;
  const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { version: string };
  let gitCommit = 'unknown';
  try {
    gitCommit = execFileSync('git', ['rev-parse', 'HEAD'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 2000,
    })
      .toString()
      .trim();
  } catch {
    // Not a git checkout (e.g. an installed package): leave "unknown".
  }
  cached = { version: pkg.version, gitCommit };
  return cached;
};
