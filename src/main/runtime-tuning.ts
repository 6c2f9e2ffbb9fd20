// Process-wide V8 settings for a long-lived manager (`flotilla up`), set before the manager
// is loaded. Each was measured on and off (docs/benchmarks.md, footprint).
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';

export const tuneForSmallFootprint = (): void => {
  // PGlite is 9 MB of WASM. V8 recompiles its hot functions with TurboFan in background
  // threads: ~40 MB more RSS, and no faster for a manager's short queries. Read when a
  // module is compiled, so it must be set before PGlite loads.
  v8.setFlagsFromString('--liftoff-only');
  // The young generation doubles up to 2 × 16 MB under allocation bursts (module loading,
  // a burst of jobs) and keeps it: held at its first size it costs ~25 MB less resident.
  v8.setFlagsFromString('--semi-space-growth-factor=1');
  // After a full GC, V8 lets the old generation grow to up to 4 × what survived before the
  // next one, and gives nothing back while idle: a burst of jobs left 100+ MB of garbage
  // resident where 35 MB were live. Growing by 25 % keeps it within ~10 MB of the live set.
  v8.setFlagsFromString('--heap-growing-percent=25');
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
