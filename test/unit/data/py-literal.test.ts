import { describe, expect, it } from 'vitest';
import { parsePyLiteral } from '../../../src/data/py-literal.ts';

describe('parsePyLiteral', () => {
  it('parses the header dict NumPy writes', () => {
    const value = parsePyLiteral("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }");
    expect(value).toEqual(new Map<string, unknown>([['descr', '<f4'], ['fortran_order', false], ['shape', [3, 4]]]));
  });

  it('parses structured descr lists, nested tuples, None, double quotes and escapes', () => {
    expect(parsePyLiteral(`[('x', '<f4'), ("y\\"z", '<i4', (2,))]`)).toEqual([['x', '<f4'], ['y"z', '<i4', [2]]]);
    expect(parsePyLiteral('None')).toBeNull();
    expect(parsePyLiteral('()')).toEqual([]);
  });

  it('reads a one-element tuple only with its trailing comma, like Python', () => {
    expect(parsePyLiteral('(7,)')).toEqual([7]);
    expect(() => parsePyLiteral('(7)')).toThrow(/trailing comma/);
  });

  for (const [text, reason] of [
    ["{'a': 1, 'a': 2}", /duplicate key 'a'/],
    ['{1: 2}', /keys must be strings/],
    ["{'a': 1.5}", /only integers/],
    ['{"a": 1e3}', /only integers/],
    ["{'a': 1", /expected ","/],
    ["'abc", /unterminated string/],
    ["{'a': 1} extra", /after the literal/],
    ['Truee', /unexpected character/],
    ["{'a': os.system('x')}", /unexpected character/],
    ['99999999999999999999', /too large/],
    ["'\\x41'", /unsupported escape/],
  ] as const) {
    it(`rejects ${text} (${String(reason)})`, () => {
      expect(() => parsePyLiteral(text)).toThrow(reason);
    });
  }
});
