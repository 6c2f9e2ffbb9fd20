// `node --import test/support/module-log.mjs …` with FLOTILLA_MODULE_LOG=FILE: appends the
// URL of every module the ESM loader loads to FILE, one a line. Packages imported from ESM
// (and the entry of each CommonJS package) show up; what CommonJS code require()s inside a
// package does not, which is enough to tell which packages a process loaded.
import { register } from 'node:module';

if (process.env.FLOTILLA_MODULE_LOG) {
  register('./module-log-hooks.mjs', import.meta.url, { data: { file: process.env.FLOTILLA_MODULE_LOG } });
}
