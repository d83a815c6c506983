import type { Command } from 'commander';
import { z } from 'zod';
import { configSchema, loadConfig } from '../../config/index.ts';
import { resolveConfigFile } from '../../daemon/config-file.ts';
import { printJson, runAction, usageError } from '../output.ts';

interface ConfigFlags {
  config?: string;
  json?: boolean;
}

/**
 * `edgevolve config get <key>`: one key of the configuration `edgevolve run` would use (the
 * file and EDGEVOLVE_* variables, validated by the same schema). scripts/install.sh reads
 * service.memoryMax with it, so an invalid file fails the install with the daemon's own message.
 */
export function registerConfig(program: Command): void {
  const config = program.command('config').description('Read the validated configuration.');
  config
    .command('get <key>')
    .description('Print one key (dotted path, e.g. service.memoryMax): strings as they are, anything else as JSON, nothing when unset.')
    .option('--config <file>', 'configuration file (default: /etc/edgevolve/config.yaml when present)')
    .option('--json', 'print one JSON document: { ok, key, value } (value null when unset)')
    .action(async (key: string, opts: ConfigFlags) => {
      await runAction(Boolean(opts.json), () => {
        const file = resolveConfigFile(opts.config);
        const loaded = loadConfig({ ...(file === undefined ? {} : { file }), env: process.env });
        const path = key.split('.');
        const value = lookup(loaded, path);
        if (value === undefined) {
          // Unset optional keys print nothing; a key the schema does not have is a typo, not "unset".
          const unknown = firstUnknownKey(path);
          if (unknown !== undefined) throw usageError(`unknown configuration key ${key}: ${unknown === 0 ? 'the configuration' : path.slice(0, unknown).join('.')} has no key ${path[unknown]!} (config/default.yaml lists every key)`);
        }
        if (opts.json) {
          printJson({ ok: true, key, value: value ?? null });
          return;
        }
        if (value === undefined) return;
        process.stdout.write(`${typeof value === 'string' ? value : JSON.stringify(value)}\n`);
      });
    });
}

function lookup(root: unknown, path: readonly string[]): unknown {
  let node = root;
  for (const [i, part] of path.entries()) {
    if (node === undefined) return undefined;
    if (typeof node !== 'object' || node === null || Array.isArray(node)) throw usageError(`${path.slice(0, i).join('.')} has no key ${part}`);
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

interface JsonSchemaNode {
  properties?: Record<string, JsonSchemaNode>;
  additionalProperties?: JsonSchemaNode | boolean;
}

/** Index of the first part of `path` the configuration schema does not define, or undefined when it defines them all. */
function firstUnknownKey(path: readonly string[]): number | undefined {
  let node: JsonSchemaNode | undefined = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchemaNode;
  for (const [i, part] of path.entries()) {
    const next: JsonSchemaNode | undefined = node?.properties?.[part] ?? (typeof node?.additionalProperties === 'object' ? node.additionalProperties : undefined);
    if (next === undefined) return i;
    node = next;
  }
  return undefined;
}
