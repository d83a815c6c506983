import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { withErrorTable } from '../../../src/errors/catalogue.ts';
import { ERROR_CODES } from '../../../src/errors/index.ts';

describe('the README error catalogue', () => {
  it('lists every code exactly as src/errors/codes.ts says (run `npx tsx scripts/gen-error-table.ts`)', () => {
    const readme = readFileSync('README.md', 'utf8');
    expect(withErrorTable(readme)).toBe(readme);
    for (const code of Object.keys(ERROR_CODES)) expect(readme).toContain(`\`${code}\``);
  });
});
