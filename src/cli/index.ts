/**
 * The `edgevolve` command. Each sub-command lives in `commands/<name>.ts` and only
 * parses arguments, calls the modules, and prints; it holds no logic of its own.
 */
import { Command, CommanderError } from 'commander';
import { EXIT_USAGE } from './output.ts';
import { registerInspect } from './commands/inspect.ts';
import { registerEval } from './commands/eval.ts';
import { registerProfile } from './commands/profile.ts';
import { registerBench } from './commands/bench.ts';
import { registerCompress } from './commands/compress.ts';
import { registerPush } from './commands/push.ts';
import { registerPull } from './commands/pull.ts';
import { registerCommand } from './commands/command.ts';
import { registerRun } from './commands/run.ts';
import { registerStatus } from './commands/status.ts';
import { registerOptimize } from './commands/optimize.ts';
import { registerInfer } from './commands/infer.ts';
import { registerCloud } from './commands/cloud.ts';

export function buildProgram(): Command {
  const program = new Command('edgevolve')
    .description('Edge-AI deployment agent: profile, compress, serve and co-evolve ONNX models on the device.')
    .version(process.env.npm_package_version ?? '0.1.0')
    .showHelpAfterError()
    .exitOverride();
  registerInspect(program);
  registerEval(program);
  registerProfile(program);
  registerBench(program);
  registerCompress(program);
  registerPush(program);
  registerPull(program);
  registerCommand(program);
  registerRun(program);
  registerStatus(program);
  registerOptimize(program);
  registerInfer(program);
  registerCloud(program);
  return program;
}

async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit 0; everything else commander rejects is bad usage.
      process.exitCode = err.exitCode === 0 ? 0 : EXIT_USAGE;
      return;
    }
    throw err;
  }
}

await main(process.argv);
