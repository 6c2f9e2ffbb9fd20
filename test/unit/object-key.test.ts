// The one object-key normaliser (DESIGN §3.2): keys with "." or ".." segments, a leading
// "/", NUL or a backslash are refused with a 400 naming the key; every key it accepts stays
// inside its bucket however a filesystem store joins it.
import { posix, win32 } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isFlotillaError } from '../../src/core/errors.ts';
import { normaliseObjectKey, objectKeyProblem } from '../../src/core/storage/object-key.ts';

const ROOT = '/data/s3';

/** Where a filesystem store puts the key: s3rver joins the bucket and the key's segments. */
const landing = (bucket: string, key: string) => posix.join(ROOT, bucket, ...key.split('/'));
const winLanding = (bucket: string, key: string) => win32.join('C:\\data\\s3', bucket, ...key.split('/'));

// Segments built from the characters that matter, so ".." and friends come up often.
const segment = fc.oneof(
  fc.constantFrom('.', '..', '...', '', 'a', 'b.txt', '..a', 'a..', '%2e%2e', '\\', '..\\..', '\u0000', ' '),
  fc.string({ maxLength: 6 }),
);
const key = fc.oneof(
  fc.array(segment, { minLength: 1, maxLength: 8 }).map((s) => s.join('/')),
  fc.string({ maxLength: 40 }),
);

describe('object keys', () => {
  it('no accepted key escapes its bucket (posix or windows joining)', () => {
    fc.assert(
      fc.property(key, (k) => {
        if (objectKeyProblem(k) !== undefined) return;
        expect(landing('bucket', k).startsWith(`${ROOT}/bucket/`)).toBe(true);
        expect(winLanding('bucket', k).startsWith('C:\\data\\s3\\bucket\\')).toBe(true);
        expect(normaliseObjectKey(k)).toBe(k);
      }),
      { numRuns: 5000 },
    );
  });

  it('refuses every key with a "." or ".." segment, a leading "/", NUL or backslash', () => {
    fc.assert(
      fc.property(key, (k) => {
        const segments = k.split('/');
        const bad =
          k.length === 0 ||
          k.startsWith('/') ||
          k.includes('\u0000') ||
          k.includes('\\') ||
          segments.some((s) => s === '.' || s === '..');
        if (bad) expect(objectKeyProblem(k)).toEqual(expect.any(String));
      }),
      { numRuns: 5000 },
    );
  });

  it.each(['../victim/key', 'a/../../b', './a', 'a/.', '/abs', 'a\\b', 'nul\u0000', '', '..'])(
    'refuses %j with VALIDATION_FAILED naming the key',
    (k) => {
      let caught: unknown;
      try {
        normaliseObjectKey(k);
      } catch (e) {
        caught = e;
      }
      expect(isFlotillaError(caught) && caught.code).toBe('VALIDATION_FAILED');
      expect((caught as Error).message).toContain('object_key');
      expect((caught as Error).message).toContain(JSON.stringify(k));
    },
  );

  it('keeps ordinary keys as they are: dots inside names, folders, trailing slashes, unicode', () => {
    for (const k of ['a.txt', 'dir/..hidden', 'dir/file..', 'in/', 'x/y/z.tar.gz', 'ñandú/ü.png', 'a//b']) {
      expect(normaliseObjectKey(k)).toBe(k);
    }
  });

  it('names the field it was given and refuses non-strings and keys over 1024 bytes', () => {
    expect(() => normaliseObjectKey(42, 'Key')).toThrow(/Key/);
    expect(() => normaliseObjectKey('é'.repeat(513))).toThrow(/1024/);
  });
});
