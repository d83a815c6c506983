import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { renderDefaultYaml, renderJsonSchema } from '../../../src/config/generate.ts';
import { validateConfig } from '../../../src/config/index.ts';

describe('config/ files generated from the schema', () => {
  it('config/schema.json is up to date (run `npx tsx scripts/gen-config.ts`)', () => {
    expect(readFileSync('config/schema.json', 'utf8')).toBe(renderJsonSchema());
  });

  it('config/default.yaml is up to date and is itself a valid configuration', () => {
    const text = readFileSync('config/default.yaml', 'utf8');
    expect(text).toBe(renderDefaultYaml());
    const config = validateConfig(parse(text), 'config/default.yaml');
    expect(config.onnx.limits.maxGraphDepth).toBe(32);
  });
});
