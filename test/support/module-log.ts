// Reading what test/support/module-log.mjs recorded: which npm packages a process loaded.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT } from './cluster-harness.ts';

/** Give to `node` before the script: records loaded modules into FLOTILLA_MODULE_LOG. */
export const MODULE_LOG_ARGS = ['--import', join(REPO_ROOT, 'test', 'support', 'module-log.mjs')];

/** The npm packages (e.g. "@aws-sdk/client-s3", "pg") among the URLs in the log file. */
export const loadedPackages = async (logFile: string): Promise<Set<string>> => {
  const text = await readFile(logFile, 'utf8').catch(() => '');
  const packages = new Set<string>();
  for (const url of text.split('\n')) {
    const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
    if (m) packages.add(m[1]);
  }
  return packages;
};
