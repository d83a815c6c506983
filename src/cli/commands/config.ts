import type { Command } from 'commander';
import { loadConfig } from '../../config/index.ts';
import { resolveConfigFile } from '../../daemon/config-file.ts';
import { runAction, usageError } from '../output.ts';

interface ConfigFlags {
  config?: string;
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
    .action(async (key: string, opts: ConfigFlags) => {
      await runAction(false, () => {
        const file = resolveConfigFile(opts.config);
        const loaded = loadConfig({ ...(file === undefined ? {} : { file }), env: process.env });
        const value = lookup(loaded, key.split('.'));
        if (value === undefined) return;
        process.stdout.write(`${typeof value === 'string' ? value : JSON.stringify(value)}\n`);
      });
    });
}

function lookup(root: unknown, path: readonly string[]): unknown {
  let node = root;
  for (const [i, part] of path.entries()) {
    if (typeof node !== 'object' || node === null || Array.isArray(node)) throw usageError(`${path.slice(0, i).join('.')} has no key ${part}`);
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}
