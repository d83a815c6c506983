import { describe, expect, it } from 'vitest';
import { EdgevolveError, ERROR_CODES, isEdgevolveError, isRetryable, toEdgevolveError } from '../../../src/errors/index.ts';

describe('EdgevolveError', () => {
  it('carries a stable code, context and cause', () => {
    const cause = new Error('low level');
    const err = new EdgevolveError('E_IO', 'cannot write', { cause, context: { path: '/x' } });
    expect(err.code).toBe('E_IO');
    expect(err.cause).toBe(cause);
    expect(err.context).toEqual({ path: '/x' });
    expect(isEdgevolveError(err, 'E_IO')).toBe(true);
    expect(isEdgevolveError(err, 'E_USAGE')).toBe(false);
    expect(isRetryable(err)).toBe(true);
    expect(JSON.parse(JSON.stringify(err))).toEqual({ code: 'E_IO', message: 'cannot write', context: { path: '/x' } });
  });

  it('wraps foreign errors without losing them', () => {
    const wrapped = toEdgevolveError(new TypeError('boom'));
    expect(wrapped.code).toBe('E_INTERNAL');
    expect(wrapped.cause).toBeInstanceOf(TypeError);
  });

  it('has help text for every code', () => {
    for (const [code, entry] of Object.entries(ERROR_CODES)) {
      expect(code).toMatch(/^E_[A-Z0-9_]+$/);
      expect(entry.help.length).toBeGreaterThan(10);
    }
  });
});
