import { afterEach, describe, expect, it, vi } from 'vitest';
import { requireTool } from '../../helpers/require-tool.ts';

const absent = { name: 'the thing', check: () => false, debianPackage: 'thing-pkg' };

describe('requireTool', () => {
  const ci = process.env.CI;
  afterEach(() => {
    if (ci === undefined) delete process.env.CI;
    else process.env.CI = ci;
    vi.restoreAllMocks();
  });

  it('runs the test when the tool is present', () => {
    expect(requireTool({ ...absent, check: () => true })).toBe(true);
  });

  it('skips outside CI with a message naming the Debian package', () => {
    delete process.env.CI;
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    expect(requireTool(absent)).toBe(false);
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('apt-get install -y thing-pkg'));
  });

  it('treats a check that throws as absent', () => {
    delete process.env.CI;
    vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    expect(requireTool({ ...absent, check: () => { throw new Error('ENOENT'); } })).toBe(false);
  });

  it('fails instead of skipping under CI=true', () => {
    process.env.CI = 'true';
    expect(() => requireTool(absent)).toThrow(/thing-pkg.*CI=true requires it/);
  });
});
