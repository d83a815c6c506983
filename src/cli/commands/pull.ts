import type { Command } from 'commander';
import { loadConfig } from '../../config/index.ts';
import { systemHost } from '../../host/index.ts';
import { createLogger } from '../../log/index.ts';
import { basicDeviceProfile, loadTrustPolicy, openEndpoint, pullModel } from '../../registry/index.ts';
import { openStore } from '../../store/index.ts';
import { printJson, runAction, usageError } from '../output.ts';

interface PullFlags {
  variant?: string;
  maxMemory?: string;
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
        const host = systemHost();
        const logger = createLogger({ level: config.log.level }).child({ module: 'registry' });
        const policy = await loadTrustPolicy(config.registry.trust);
        const store = await openStore(opts.stateDir ?? config.stateDir, config.store, host);
        const endpoint = await openEndpoint(refText, config.registry, host, { plainHttp: Boolean(opts.plainHttp), insecure: Boolean(opts.insecure) }, logger);
        try {
          const result = await pullModel(
            {
              blobs: store.blobs,
              repository: store.repository,
              policy,
              profile: basicDeviceProfile(config.registry),
              clock: host,
              random: host,
              logger,
              retry: { attempts: config.registry.retryAttempts, baseDelayMs: 250, maxDelayMs: 15_000 },
            },
            {
              source: endpoint.content,
              reference: endpoint.ref.reference,
              fallbackName: endpoint.defaultName,
              activate: opts.activate,
              budgets: {
                ...(opts.variant === undefined ? {} : { variant: opts.variant }),
                ...(maxMemoryMb === undefined ? {} : { maxMemoryBytes: maxMemoryMb * 1024 * 1024 }),
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
            if (result.previous !== undefined) process.stdout.write(`  previous ${result.previous}\n`);
          }
        } finally {
          await endpoint.close();
          store.close();
        }
      });
    });
}
