import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../../config/index.ts';
import { systemHost } from '../../host/index.ts';
import { createLogger } from '../../log/index.ts';
import { loadPrivateKey, openEndpoint, pushArtifact, readModelInfo, signArtifact, type VariantSpec } from '../../registry/index.ts';
import { parseVersion } from '../../store/index.ts';
import { printJson, runAction, usageError } from '../output.ts';

interface PushFlags {
  variant: string[];
  name?: string;
  modelVersion?: string;
  sign?: string;
  arch?: string;
  downgrade?: boolean;
  calibration?: string;
  plainHttp?: boolean;
  insecure?: boolean;
  config?: string;
  json?: boolean;
}

export function registerPush(program: Command): void {
  program
    .command('push')
    .description('Publish a model version as an OCI artifact (an image index of variants) to a registry or an OCI layout.')
    .argument('<model>', 'an .onnx file (its variant is named after its precision; external-data files it names are pushed as layers) or a directory of .onnx files (one variant each)')
    .argument('<ref>', 'host[:port]/repo:tag or oci-layout:<dir>:tag')
    .option('--variant <name=file>', 'another variant: name=path/to/model.onnx (repeatable)', (v: string, all: string[]) => [...all, v], [])
    .option('--name <name>', 'model name (default: the last repository component)')
    .option('--model-version <version>', 'model version, dot-separated numbers (default: the tag, when it is one)')
    .option('--arch <arch>', 'target architecture annotation for all variants (amd64, arm64; default any)')
    .option('--calibration <dir>', 'attach a calibration set: a directory of .npy files (one layer per file)')
    .option('--downgrade', 'mark this release as a deliberate downgrade (needs --sign to be accepted)')
    .option('--sign <key.pem>', 'sign the index with this PEM ECDSA P-256 private key (cosign-compatible)')
    .option('--plain-http', 'talk http:// to the registry (loopback test registries)')
    .option('--insecure', 'do not verify the registry TLS certificate')
    .option('--config <file>', 'configuration file')
    .option('--json', 'print one JSON document')
    .action(async (model: string, refText: string, opts: PushFlags) => {
      await runAction(Boolean(opts.json), async () => {
        const config = loadConfig({ ...(opts.config === undefined ? {} : { file: opts.config }), env: process.env });
        const host = systemHost();
        const logger = createLogger({ level: config.log.level }).child({ module: 'registry' });
        const variants = await collectVariants(model, opts.variant, opts.arch);
        const endpoint = await openEndpoint(refText, config.registry, host, { plainHttp: Boolean(opts.plainHttp), insecure: Boolean(opts.insecure), create: true }, logger);
        try {
          const tag = endpoint.ref.reference;
          if (tag.startsWith('sha256:')) throw usageError('push needs a tag, not a digest');
          const version = opts.modelVersion ?? tag.replace(/^v/, '');
          try {
            parseVersion(version);
          } catch {
            throw usageError(`the tag ${tag} is not a version; pass --model-version 1.2.3`);
          }
          const key = opts.sign === undefined ? undefined : await loadPrivateKey(opts.sign);
          const pushed = await pushArtifact(endpoint.content, { name: opts.name ?? endpoint.defaultName, version, variants, downgrade: Boolean(opts.downgrade), ...(opts.calibration === undefined ? {} : { calibrationDir: opts.calibration }) }, tag);
          const signatures = key === undefined ? undefined : await signArtifact(endpoint.content, endpoint.dockerReference, pushed, key);
          const signature = signatures?.index;
          const result = { ok: true, ref: refText, digest: pushed.indexDigest, version, variants: pushed.variants, signature: signature ?? null, variantSignatures: signatures?.variants ?? [] };
          if (opts.json) printJson(result);
          else {
            process.stdout.write(`pushed ${refText}@${pushed.indexDigest} (version ${version})\n`);
            for (const v of pushed.variants) {
              process.stdout.write(`  ${v.name.padEnd(12)} ${v.manifestDigest}  ${v.size} bytes\n`);
              for (const l of v.layers) process.stdout.write(`    + ${l.title} ${l.digest}  ${l.size} bytes\n`);
            }
            if (signature !== undefined) process.stdout.write(`  signed: ${signature}\n`);
          }
        } finally {
          await endpoint.close();
        }
      });
    });
}

async function collectVariants(model: string, extra: readonly string[], arch: string | undefined): Promise<VariantSpec[]> {
  const variants: VariantSpec[] = [];
  const add = (name: string, modelPath: string): void => {
    if (variants.some((v) => v.name === name)) throw usageError(`variant ${name} is given twice`);
    variants.push({ name, modelPath, ...(arch === undefined ? {} : { arch }) });
  };
  const info = await stat(model).catch(() => undefined);
  if (info === undefined) throw usageError(`${model} does not exist`);
  if (info.isDirectory()) {
    const files = (await readdir(model)).filter((f) => f.endsWith('.onnx')).sort();
    if (files.length === 0) throw usageError(`${model} holds no .onnx files`);
    for (const f of files) add(basename(f, '.onnx').toLowerCase().replace(/[^a-z0-9._-]/g, '-'), join(model, f));
  } else {
    add(readModelInfo(await readFile(model)).precision, model);
  }
  for (const spec of extra) {
    const eq = spec.indexOf('=');
    if (eq <= 0) throw usageError(`--variant ${spec}: expected name=file`);
    add(spec.slice(0, eq), spec.slice(eq + 1));
  }
  return variants;
}
