// Process-wide V8 settings for a long-lived manager (`flotilla up`), set before the manager
// is loaded. Each was measured on and off (docs/benchmarks.md, footprint). A flag given on
// node's own command line (`node --max-opt=4 bin/flotilla.mjs up`) wins over these.
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';

export const SMALL_FOOTPRINT_FLAGS = [
  // PGlite is 9 MB of WASM. V8 recompiles its hot functions with TurboFan in background
  // threads: ~40 MB more RSS, and no faster for a manager's short queries. Read when a
  // module is compiled, so it must be set before PGlite loads.
  '--liftoff-only',
  // The young generation doubles up to 2 × 16 MB under allocation bursts (module loading,
  // a burst of jobs) and keeps it: held at its first size it costs ~25 MB less resident.
  '--semi-space-growth-factor=1',
  // After a full GC, V8 lets the old generation grow to up to 4 × what survived before the
  // next one, and gives nothing back while idle: a burst of jobs left 100+ MB of garbage
  // resident where 35 MB were live. Growing by 25 % keeps it within ~10 MB of the live set.
  '--heap-growing-percent=25',
  // JavaScript stops at the baseline compiler (Sparkplug), no TurboFan: what optimised code
  // and its metadata hold grew the manager by ~18 MB over its first thousand jobs and never
  // shrank. Costs ~20 % CPU on a listing of 300 services, nothing measurable per job.
  '--max-opt=1',
];

/** The flags above that node's command line does not already set (either way). */
export const footprintFlagsFor = (execArgv: readonly string[]): string[] => {
  const name = (flag: string) =>
    flag
      .split('=')[0]
      .replace(/^--no-/, '--')
      .replaceAll('_', '-');
  const given = new Set(execArgv.map(name));
  return SMALL_FOOTPRINT_FLAGS.filter((flag) => !given.has(name(flag)));
};

export const tuneForSmallFootprint = (): void => {
  for (const flag of footprintFlagsFor(process.execArgv)) v8.setFlagsFromString(flag);
};

/**
 * One full garbage collection, once the manager is up: start-up leaves garbage that V8
 * collects only under pressure (the WASM file PGlite read, module sources), ~10 MB resident
 * for as long as the manager then idles.
 */
export const collectStartupGarbage = (): void => {
  // gc() exists only with --expose-gc, and the flag takes effect for contexts made after it.
  v8.setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
};
