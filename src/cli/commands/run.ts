import type { Command } from 'commander';
import { startDaemon } from '../../main.ts';
import { runAction } from '../output.ts';

interface RunFlags {
  config?: string;
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('Run the daemon: serve the configured models, deploy new versions on trial with automatic rollback, report over MQTT.')
    .option('--config <file>', 'configuration file (default: /etc/edgevolve/config.yaml when present, else built-in defaults)')
    .action(async (opts: RunFlags) => {
      await runAction(false, async () => {
        const handle = await startDaemon({ ...(opts.config === undefined ? {} : { configFile: opts.config }) });
        const url = handle.daemon.runtimeStatus().url;
        const served = handle.daemon.runtimeStatus().served;
        const first = served[0];
        process.stdout.write(`edgevolve is ready: ${handle.daemon.statusLine()}\n`);
        if (url !== null && first !== undefined) {
          const shape = '{"inputs":[{"name":"input","shape":[1,1,28,28],"datatype":"FP32","data":[' + Array.from({ length: 4 }, () => '0').join(',') + ',...]}]}';
          process.stdout.write(`  try: curl -s ${url}/v2/models/${first.name}\n  infer: curl -s -X POST ${url}/v2/models/${first.name}/infer -H 'content-type: application/json' -d '${shape}'\n`);
        }
        process.stdout.write(`  status: edgevolve status${handle.configFile === undefined ? '' : ` --config ${handle.configFile}`}\n`);
        process.exitCode = await handle.exited;
      });
    });
}
