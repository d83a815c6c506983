import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { configSchema } from '../../../src/config/index.ts';

interface Node {
  description?: string;
  properties?: Record<string, Node>;
}

/** Every key reachable through object properties (what config/default.yaml lays out), with its depth. */
function keys(node: Node, path: string[] = []): { path: string[]; node: Node }[] {
  return Object.entries(node.properties ?? {}).flatMap(([k, child]) => [{ path: [...path, k], node: child }, ...keys(child, [...path, k])]);
}

describe('config/default.yaml documents every key', () => {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Node;
  const all = keys(schema);

  it('every key of the schema, sections included, has a description', () => {
    expect(all.length).toBeGreaterThan(150);
    expect(all.filter((k) => !k.node.description?.trim()).map((k) => k.path.join('.'))).toEqual([]);
  });

  it('every key is in the file, under a comment: set ones with their default, unset ones (a token, a socket path) commented out', () => {
    const lines = readFileSync('config/default.yaml', 'utf8').split('\n');
    const missing: string[] = [];
    for (const { path } of all) {
      const indent = '  '.repeat(path.length - 1);
      const key = path.at(-1)!;
      const at = lines.findIndex((l) => l.startsWith(`${indent}${key}:`) || (l.startsWith(`${indent}# ${key}: `) && l.endsWith('(unset by default)')));
      if (at < 1 || !lines[at - 1]!.trimStart().startsWith('#')) missing.push(path.join('.'));
    }
    expect(missing).toEqual([]);
    expect(lines).toContain('  # token: <string, at least 16 characters>  (unset by default)');
    expect(lines).toContain('  # memoryMax: <string>  (unset by default)');
  });
});
