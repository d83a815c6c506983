import type { Command } from 'commander';
import { loadConfig } from '../../config/index.ts';
import { MicroBenchCache, profileDevice } from '../../hardware/index.ts';
import { systemCommands } from '../../host/commands.ts';
import { nodeFiles } from '../../host/files.ts';
import { systemHost } from '../../host/index.ts';
import { systemInfo } from '../../host/system-info.ts';
import { createLogger } from '../../log/index.ts';
import { openEndpoint, pullModel, selectionProfile, storePullDeps, type SelectionProfile, type VariantInfo } from '../../registry/index.ts';
import { openStore, type StateDatabase } from '../../store/index.ts';
import { printJson, runAction, usageError } from '../output.ts';

interface PullFlags {
  variant?: string;
  maxMemory?: string;
  minAccuracy?: string;
  calibration: boolean;
  activate: boolean;
  plainHttp?: boolean;
  insecure?: boolean;
  config?: string;
  stateDir?: string;
  json?: boolean;
}

export function registerPull(program: Command): void {
  program
    .command('pull')
    .description('Pull the variant of a model that fits this device, verify it (digests, signature, no downgrade) and make it the active version.')
    .argument('<ref>', 'host[:port]/repo:tag, host/repo@sha256:..., or oci-layout:<dir>:tag')
    .option('--variant <name>', 'pull this variant instead of choosing one')
    .option('--max-memory <MB>', 'memory budget for the model, MB')
    .option('--min-accuracy <0..1>', 'skip variants whose build-time accuracy is below this')
    .option('--no-calibration', 'do not fetch the calibration layers')
    .option('--no-activate', 'store the version without making it active')
    .option('--plain-http', 'talk http:// to the registry (loopback test registries)')
    .option('--insecure', 'do not verify the registry TLS certificate')
    .option('--config <file>', 'configuration file')
    .option('--state-dir <dir>', 'state directory (overrides the configuration)')
    .option('--json', 'print one JSON document')
    .action(async (refText: string, opts: PullFlags) => {
      await runAction(Boolean(opts.json), async () => {
        const config = loadConfig({ ...(opts.config === undefined ? {} : { file: opts.config }), env: process.env });
        const maxMemoryMb = opts.maxMemory === undefined ? undefined : Number(opts.maxMemory);
        if (maxMemoryMb !== undefined && !(maxMemoryMb > 0)) throw usageError(`--max-memory ${opts.maxMemory} is not a positive number of MB`);
        const minAccuracy = opts.minAccuracy === undefined ? undefined : Number(opts.minAccuracy);
        if (minAccuracy !== undefined && !(minAccuracy >= 0 && minAccuracy <= 1)) throw usageError(`--min-accuracy ${opts.minAccuracy} is not a number between 0 and 1`);
        const host = systemHost();
        const logger = createLogger({ level: config.log.level }).child({ module: 'registry' });
        const stateDir = opts.stateDir ?? config.stateDir;
        const store = await openStore(stateDir, config.store, host);
        const endpoint = await openEndpoint(refText, config.registry, host, { plainHttp: Boolean(opts.plainHttp), insecure: Boolean(opts.insecure) }, logger);
        try {
          const result = await pullModel(
            await storePullDeps(store, config.registry, host, (variants) => deviceProfile(store.db, stateDir, variants, config.registry.preferPrecisions), logger),
            {
              source: endpoint.content,
              reference: endpoint.ref.reference,
              fallbackName: endpoint.defaultName,
              activate: opts.activate,
              withCalibration: opts.calibration,
              budgets: {
                ...(opts.variant === undefined ? {} : { variant: opts.variant }),
                ...(maxMemoryMb === undefined ? {} : { maxMemoryBytes: maxMemoryMb * 1024 * 1024 }),
                ...(minAccuracy === undefined ? {} : { minAccuracy }),
              },
            },
          );
          // Retention: drop versions beyond the rollback window, then their unreferenced blobs.
          const referenced = store.repository.prune(config.store.keepPrevious);
          await store.blobs.gc(referenced, { partialMaxAgeMs: 7 * 24 * 3600 * 1000 });
          if (opts.json) printJson({ ok: true, ...result });
          else {
            process.stdout.write(`${result.activated ? 'activated' : 'stored'} ${result.name} ${result.version} (variant ${result.variant}${result.signed ? ', signed' : ''})\n`);
            process.stdout.write(`  model ${result.modelDigest} ${result.modelBytes} bytes\n  path  ${result.modelPath}\n`);
            process.stdout.write(`  why   ${result.selection.reason}\n`);
            for (const r of result.rejectedVariants) process.stdout.write(`  not ${r.name}: ${r.reason}\n`);
            for (const l of result.layers) process.stdout.write(`  layer ${l.title} ${l.digest}\n`);
            if (result.previous !== undefined) process.stdout.write(`  previous ${result.previous}\n`);
          }
        } finally {
          await endpoint.close();
          store.close();
        }
      });
    });
}

/**
 * The device as the hardware module sees it (ISA, memory, accelerators, the int8
 * speed-up cached by `edgevolve profile`), without measuring. onnxruntime's execution
 * providers are probed (a child process each) only when a variant needs an accelerator.
 */
async function deviceProfile(db: StateDatabase, stateDir: string, variants: readonly VariantInfo[], preferPrecisions: readonly string[] | undefined): Promise<SelectionProfile> {
  const probeProviders = variants.some((v) => v.accelerators.length > 0);
  const hardware = await profileDevice(
    { host: { ...systemHost(), ...nodeFiles(), ...systemCommands, ...systemInfo }, cache: new MicroBenchCache(db) },
    { stateDir, arch: process.arch, measure: false, probeProviders },
  );
  return selectionProfile(hardware, { preferPrecisions });
}
