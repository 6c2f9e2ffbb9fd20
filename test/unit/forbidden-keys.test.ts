// findForbiddenKey (src/http/body-parsers.ts): the first key that could pollute a prototype,
// named by its full path, wherever it sits (objects, arrays, deep nesting); nothing for a
// clean body however large.
import { describe, expect, it } from 'vitest';
import { findForbiddenKey } from '../../src/http/body-parsers.ts';

describe('findForbiddenKey', () => {
  it('names the path of __proto__ through objects and arrays', () => {
    const body = JSON.parse('{"a":{"list":[1,{"ok":true},{"deep":{"__proto__":{"x":1}}}]}}');
    expect(findForbiddenKey(body)).toBe('a.list.2.deep.__proto__');
    expect(findForbiddenKey(JSON.parse('{"__proto__":1}'))).toBe('__proto__');
  });

  it('names constructor.prototype, but not a constructor without one', () => {
    expect(findForbiddenKey(JSON.parse('{"x":[{"constructor":{"prototype":{}}}]}'))).toBe(
      'x.0.constructor.prototype',
    );
    expect(
      findForbiddenKey({ constructor: { name: 'fine' }, other: { constructor: 'text' } }),
    ).toBeUndefined();
  });

  it('finds nothing in a clean body, scalars, or 100,000 levels of nesting (no stack limit)', () => {
    expect(findForbiddenKey(null)).toBeUndefined();
    expect(findForbiddenKey('__proto__')).toBeUndefined();
    expect(findForbiddenKey({ a: [1, 2, { b: 'c' }], d: { e: null } })).toBeUndefined();
    let deep: Record<string, unknown> = {};
    const top = deep;
    for (let i = 0; i < 100_000; i++) {
      const next = {};
      deep.n = next;
      deep = next;
    }
    expect(findForbiddenKey(top)).toBeUndefined();
    Object.defineProperty(deep, '__proto__', { value: 1, enumerable: true });
    expect(findForbiddenKey(top)?.endsWith('n.n.__proto__')).toBe(true);
  });
});
