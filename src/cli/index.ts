/**
 * The `edgevolve` command. Each sub-command lives in `commands/<name>.ts` and only
 * parses arguments, calls the modules, and prints; it holds no logic of its own.
 *
 * Commands are imported on demand: `edgevolve run` loads the daemon's modules and not,
 * say, the cloud loop's MQTT client or the compression passes (an idle daemon keeps the
 * source of every module it imported in its heap; README "The daemon", start-up and
 * footprint). `--help`, no command or an unknown one loads them all, so commander can
 * list them and suggest the nearest name.
 */
import { Command, CommanderError } from 'commander';
import { EXIT_USAGE } from './output.ts';

type Register = (program: Command) => void;

/** Command name to a loader of its `register` function, in the order `--help` lists them. */
const COMMANDS: Readonly<Record<string, () => Promise<Register>>> = {
  inspect: async () => (await import('./commands/inspect.ts')).registerInspect,
  eval: async () => (await import('./commands/eval.ts')).registerEval,
  profile: async () => (await import('./commands/profile.ts')).registerProfile,
  bench: async () => (await import('./commands/bench.ts')).registerBench,
  compress: async () => (await import('./commands/compress.ts')).registerCompress,
  push: async () => (await import('./commands/push.ts')).registerPush,
  pull: async () => (await import('./commands/pull.ts')).registerPull,
  command: async () => (await import('./commands/command.ts')).registerCommand,
  run: async () => (await import('./commands/run.ts')).registerRun,
  status: async () => (await import('./commands/status.ts')).registerStatus,
  config: async () => (await import('./commands/config.ts')).registerConfig,
  optimize: async () => (await import('./commands/optimize.ts')).registerOptimize,
  infer: async () => (await import('./commands/infer.ts')).registerInfer,
  cloud: async () => (await import('./commands/cloud.ts')).registerCloud,
};

/**
 * The program with the commands `argv` needs: only the one it names; none for a bare
 * `--version`; every command when it names none that exists (help, usage errors). Program
 * options come before the command name, so the first argument that is not an option is the name.
 */
async function buildProgram(argv: readonly string[]): Promise<Command> {
  const program = new Command('edgevolve')
    .description('Edge-AI deployment agent: profile, compress, serve and co-evolve ONNX models on the device.')
    .version(process.env.npm_package_version ?? '0.1.0')
    .showHelpAfterError()
    .exitOverride();
  const args = argv.slice(2);
  const named = args.find((a) => !a.startsWith('-'));
  const versionOnly = named === undefined && args.length > 0 && args.every((a) => a === '-V' || a === '--version');
  const wanted = named !== undefined && Object.hasOwn(COMMANDS, named) ? [named] : versionOnly ? [] : Object.keys(COMMANDS);
  for (const register of await Promise.all(wanted.map((name) => COMMANDS[name]!()))) register(program);
  return program;
}

async function main(argv: string[]): Promise<void> {
  const program = await buildProgram(argv);
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
