import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/index.ts';

function tempFile(content: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'edgevolve-config-'));
  const file = path.join(dir, 'config.yaml');
  writeFileSync(file, content);
  return file;
}

describe('loadConfig', () => {
  it('fills defaults and freezes the result', () => {
    const config = loadConfig();
    expect(config.onnx.limits.maxGraphDepth).toBe(32);
    expect(Object.isFrozen(config.onnx.limits)).toBe(true);
  });

  it('reports every invalid key with its path and the file', () => {
    const file = tempFile('log:\n  level: loud\nonnx:\n  limits:\n    maxDims: -1\nbogus: 1\n');
    expect(() => loadConfig({ file })).toThrowError(/log\.level[\s\S]*onnx\.limits\.maxDims|onnx\.limits\.maxDims[\s\S]*log\.level/);
    try {
      loadConfig({ file });
    } catch (err) {
      expect((err as Error).message).toContain(file);
      expect((err as Error).message).toMatch(/bogus/);
    }
  });

  it('applies EDGEVOLVE_ environment overrides on top of the file', () => {
    const file = tempFile('log:\n  level: warn\n');
    const config = loadConfig({ file, env: { EDGEVOLVE_LOG__LEVEL: 'debug', EDGEVOLVE_STATE_DIR: '/tmp/x' } });
    expect(config.log.level).toBe('debug');
    expect(config.stateDir).toBe('/tmp/x');
  });

  it('names the environment variable behind an invalid or unknown key, and not for keys from the file', () => {
    const file = tempFile('log:\n  level: loud\n');
    const env = { EDGEVOLVE_SERVER__PORT: '-5', EDGEVOLVE_SERVER__BOGUS_KEY: '1', EDGEVOLVE_STATE_DIR: '/tmp/x' };
    let message = '';
    try {
      loadConfig({ file, env });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain(`invalid configuration in ${file}`);
    expect(message).toMatch(/^ {2}server\.port: .* \(set by EDGEVOLVE_SERVER__PORT\)$/m);
    expect(message).toMatch(/^ {2}server: Unrecognized key: "bogusKey" \(set by EDGEVOLVE_SERVER__BOGUS_KEY\)$/m);
    expect(message).toMatch(/^ {2}log\.level: [^(]*$/m);
  });

  it('names a file that is not YAML', () => {
    const file = tempFile('a: [1, 2\n');
    expect(() => loadConfig({ file })).toThrowError(/not valid YAML/);
  });
});
