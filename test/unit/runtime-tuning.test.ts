// `flotilla up` sets its footprint flags unless node's own command line already chose.
import { describe, expect, it } from 'vitest';
import { footprintFlagsFor, SMALL_FOOTPRINT_FLAGS } from '../../src/main/runtime-tuning.ts';

describe('footprintFlagsFor', () => {
  it('sets every flag when node was started without V8 flags', () => {
    expect(footprintFlagsFor([])).toEqual(SMALL_FOOTPRINT_FLAGS);
    expect(footprintFlagsFor(['--import', './x.mjs'])).toEqual(SMALL_FOOTPRINT_FLAGS);
  });

  it('leaves alone a flag given on the command line, in any spelling', () => {
    const left = (argv: string[]) =>
      SMALL_FOOTPRINT_FLAGS.filter((f) => !footprintFlagsFor(argv).includes(f));
    expect(left(['--max-opt=4'])).toEqual(['--max-opt=1']);
    expect(left(['--no-liftoff-only'])).toEqual(['--liftoff-only']);
    expect(left(['--heap_growing_percent=100', '--semi-space-growth-factor=2'])).toEqual([
      '--semi-space-growth-factor=1',
      '--heap-growing-percent=25',
    ]);
  });
});
