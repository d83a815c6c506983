/**
 * Bundles the daemon for installation (README "Installing on a board"): the installed
 * service runs `node dist/edgevolve.mjs`, one ES module instead of ~300 TypeScript files
 * compiled by tsx at every start (scripts/bench-daemon.ts measures the difference).
 *
 *   npx tsx scripts/build.ts [--outdir dist]      (npm run build)
 *
 * Writes into the output directory:
 *   edgevolve.mjs (+ .map)    the CLI, `edgevolve run` included
 *   bench-child.mjs (+ .map)  the isolated benchmark's child (src/runtime/bench/parent.ts forks it)
 *   chunk-<hash>.mjs (+ .map) the modules behind dynamic imports, loaded on first use
 *   fixtures/                 the MNIST models and test digits the embedded default seeds
 *                             (src/daemon/seed.ts looks for them beside the bundle)
 * npm packages stay external: the bundle imports them from node_modules (native addons
 * such as onnxruntime-node and better-sqlite3 cannot be bundled), so run it from a
 * directory whose node_modules holds the production dependencies (/opt/edgevolve).
 * The output depends only on the sources and the output directory: no timestamps.
 */
import { build, type BuildOptions } from 'esbuild';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** What the embedded default needs at run time, relative to the checkout; copied to <outdir>/fixtures. */
export const FIXTURE_FILES = ['models/mnist-cnn.onnx', 'models/mnist-mlp.onnx', 'data/mnist-test/input.npy', 'data/mnist-test/labels.npy'] as const;

async function bundleOptions(outdir: string): Promise<BuildOptions> {
  const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string; license: string };
  return {
    absWorkingDir: ROOT,
    entryPoints: { edgevolve: 'src/cli/index.ts', 'bench-child': 'src/runtime/bench/child.ts' },
    outdir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    // Each dynamic import() becomes a chunk that is read only when it runs: the CLI loads one
    // command's modules (src/cli/index.ts), the daemon its MQTT client only when a broker is
    // configured. Without splitting esbuild would inline them and hoist their npm imports to
    // the top of edgevolve.mjs, loading every package at start. The chunks sit beside the
    // entries (chunk-<hash>.mjs): seed.ts and the bench parent resolve files relative to
    // import.meta.url and find them there either way.
    splitting: true,
    chunkNames: 'chunk-[hash]',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    sourcemap: 'linked',
    // The sources are not installed: keep them in the map so stack traces can be read.
    sourcesContent: true,
    banner: { js: `#!/usr/bin/env node\n// ${pkg.name} ${pkg.version} (${pkg.license}), bundled by scripts/build.ts from src/; see dist/*.mjs.map` },
    // `edgevolve --version` reads npm's variable, which only `npm start` sets; the service has the version built in.
    define: { 'process.env.npm_package_version': JSON.stringify(pkg.version) },
    legalComments: 'none',
    // See asciiOnly(): esbuild escapes strings, not comments or regular expressions.
    charset: 'ascii',
    logLevel: 'warning',
  };
}

/**
 * V8 keeps each module's source in the heap (functions are compiled lazily from it), and one
 * character outside Latin-1 (a → in a comment) makes it a two-byte string: 2 MB of idle heap
 * instead of 1 for the daemon's bundle. A \uXXXX escape means the same character in a
 * regular expression and an identifier, and nothing in a comment; esbuild's charset option
 * already escapes string and template literals, which leaves only those three.
 */
export function asciiOnly(code: string): string {
  return code.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Builds into `outdir` (emptied first); returns the files written, relative to it. */
export async function buildDist(outdir: string): Promise<string[]> {
  const out = path.resolve(ROOT, outdir);
  await rm(out, { recursive: true, force: true });
  await mkdir(out, { recursive: true });
  const result = await build({ ...(await bundleOptions(out)), write: false });
  const written: string[] = [];
  for (const file of result.outputFiles) {
    const name = path.relative(out, file.path);
    // Executable, so /opt/edgevolve/dist/edgevolve.mjs works as a command (the banner has the shebang).
    await writeFile(file.path, name.endsWith('.mjs') ? asciiOnly(file.text) : file.contents, { mode: name === 'edgevolve.mjs' ? 0o755 : 0o644 });
    written.push(name);
  }
  for (const file of FIXTURE_FILES) {
    const target = path.join(out, 'fixtures', file);
    await mkdir(path.dirname(target), { recursive: true });
    await copyFile(path.join(ROOT, 'test', 'fixtures', file), target);
    written.push(path.join('fixtures', file));
  }
  return written.sort();
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--outdir');
  const outdir = i >= 0 ? (process.argv[i + 1] ?? 'dist') : 'dist';
  const files = await buildDist(outdir);
  console.log(`built ${path.resolve(ROOT, outdir)}:\n  ${files.join('\n  ')}`);
}
