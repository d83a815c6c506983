import type { Command } from 'commander';
import { startDaemon } from '../../main.ts';
import { runAction } from '../output.ts';

interface RunFlags {
  config?: string;
}

/**
 * How to call `status` from where this process was started: a checkout runs the CLI
 * through npx (package.json's bin), an installed board has `edgevolve` on PATH
 * (scripts/install.sh links the bundle into /usr/local/bin).
 */
function statusCommand(): string {
  const entry = process.argv[1] ?? '';
  return entry.endsWith('.mjs') ? 'edgevolve status' : 'npx edgevolve status';
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('Run the daemon: serve the configured models, deploy new versions on trial with automatic rollback, report over MQTT.')
    .option('--config <file>', 'configuration file (default: /etc/edgevolve/config.yaml when present, else built-in defaults)')
    .action(async (opts: RunFlags) => {
      await runAction(false, async () => {
        const handle = await startDaemon({ ...(opts.config === undefined ? {} : { configFile: opts.config }) });
        const { url, served } = handle.daemon.runtimeStatus();
        process.stdout.write(`edgevolve is ready: ${handle.daemon.statusLine()}\n`);
        const first = served[0];
        if (url !== null && url.startsWith('http') && first !== undefined) {
          process.stdout.write(`  model:  curl -s ${url}/v2/models/${first.name}\n`);
          if (handle.sampleRequest !== undefined) {
            process.stdout.write(`  infer:  curl -s -X POST ${url}/v2/models/${first.name}/infer -H 'content-type: application/json' -d @${handle.sampleRequest}\n`);
          }
        }
        process.stdout.write(`  status: ${statusCommand()}${handle.configFile === undefined ? '' : ` --config ${handle.configFile}`}\n`);
        process.exitCode = await handle.exited;
      });
    });
}
