/**
 * Renders the configuration schema as the two files under config/: the JSON Schema
 * (for editors and validators) and default.yaml (every key with its default and
 * description). scripts/gen-config.ts writes them; a test fails when the committed
 * files fall behind the schema, so the documentation cannot drift from the code.
 */
import { stringify } from 'yaml';
import { z } from 'zod';
import { configSchema } from './schema.ts';

export function renderJsonSchema(): string {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' });
  return `${JSON.stringify({ title: 'edgevolve configuration', ...schema }, null, 2)}\n`;
}

interface JsonSchemaNode {
  description?: string;
  properties?: Record<string, JsonSchemaNode>;
  default?: unknown;
  type?: string;
  enum?: unknown[];
  items?: JsonSchemaNode;
  minLength?: number;
}

export function renderDefaultYaml(): string {
  const defaults = configSchema.parse({}) as Record<string, unknown>;
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchemaNode;
  const lines = [
    '# edgevolve configuration: every key with its default value.',
    '# Generated from src/config/schema.ts by `npx tsx scripts/gen-config.ts`; do not edit by hand.',
    '# Override keys in /etc/edgevolve/config.yaml (or --config FILE), or with environment',
    '# variables: EDGEVOLVE_LOG__LEVEL=debug sets log.level (double underscore between keys).',
    '',
  ];
  renderObject(defaults, schema, 0, lines);
  return `${lines.join('\n')}\n`;
}

function renderObject(value: Record<string, unknown>, schema: JsonSchemaNode | undefined, depth: number, lines: string[]): void {
  const indent = '  '.repeat(depth);
  for (const [key, child] of Object.entries(value)) {
    const childSchema = schema?.properties?.[key];
    if (childSchema?.description) {
      for (const line of childSchema.description.split('\n')) lines.push(`${indent}# ${line}`);
    }
    if (child !== null && typeof child === 'object' && !Array.isArray(child) && Object.keys(child).length > 0) {
      lines.push(`${indent}${key}:`);
      renderObject(child as Record<string, unknown>, childSchema, depth + 1, lines);
    } else {
      const rendered = stringify({ [key]: child }).trimEnd().split('\n');
      for (const line of rendered) lines.push(`${indent}${line}`);
      // An empty object by default (control.timeoutSeconds) still has keys an operator may set.
      if (child !== null && typeof child === 'object' && !Array.isArray(child)) renderUnset(child as Record<string, unknown>, childSchema, depth + 1, lines);
    }
  }
  renderUnset(value, schema, depth, lines);
}

/**
 * Keys without a default (a token, a socket path, service.memoryMax) are absent from the
 * defaults, so they are listed commented out, each with its description and the kind of value
 * it takes: default.yaml documents every key, and stays the defaults when read as YAML.
 */
function renderUnset(value: Record<string, unknown>, schema: JsonSchemaNode | undefined, depth: number, lines: string[]): void {
  const indent = '  '.repeat(depth);
  for (const [key, childSchema] of Object.entries(schema?.properties ?? {})) {
    if (key in value) continue;
    if (childSchema.description) {
      for (const line of childSchema.description.split('\n')) lines.push(`${indent}# ${line}`);
    }
    lines.push(`${indent}# ${key}: ${valueHint(childSchema)}  (unset by default)`);
  }
}

function valueHint(schema: JsonSchemaNode): string {
  if (schema.enum !== undefined) return schema.enum.map(String).join(' | ');
  if (schema.type === 'array') return `[${schema.items === undefined ? '...' : valueHint(schema.items)}, ...]`;
  if (schema.type === 'string' && schema.minLength !== undefined && schema.minLength > 1) return `<string, at least ${schema.minLength} characters>`;
  return schema.type === undefined ? '<see config/schema.json>' : `<${schema.type}>`;
}
