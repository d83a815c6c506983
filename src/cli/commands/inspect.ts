import type { Command } from 'commander';
import { runAction, printJson } from '../output.ts';

export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description('Show a model: opsets, inputs/outputs, op histogram, parameters, validation findings.')
    .argument('<model>', 'path to an .onnx file')
    .option('--json', 'print one JSON document')
    .action(async (model: string, opts: { json?: boolean }) => {
      await runAction(Boolean(opts.json), () => {
        // Placeholder until src/onnx/inspect.ts lands (issue 2).
        printJson({ model });
      });
    });
}
