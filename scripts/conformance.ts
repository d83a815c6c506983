/**
 * `npm run conformance [-- --filter <substring>] [--json] [--root <dir>]`
 *
 * Runs the IR round trip over ONNX's backend test corpus (Debian libonnx-testdata)
 * in onnxruntime and reports, per model, passed / failed / skipped / ort-mismatch
 * (see src/runtime/conformance.ts for the rules). Human output ends with the line
 * `N passed, N failed, N skipped`; ort-mismatch models are counted as skipped there
 * (onnxruntime does not reproduce the expected outputs, so the round trip can only be
 * checked against the original's outputs) and listed on their own.
 * Exit code 1 when any model failed or the corpus is missing.
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { DEFAULT_CORPUS_ROOT, listCases, runConformance, summarize, type CaseResult } from '../src/runtime/conformance.ts';

const { values } = parseArgs({
  options: {
    filter: { type: 'string' },
    json: { type: 'boolean', default: false },
    root: { type: 'string', default: DEFAULT_CORPUS_ROOT },
    verbose: { type: 'boolean', short: 'v', default: false },
  },
});

const root = values.root;
if (!fs.existsSync(root)) {
  console.error(`conformance: ${root} not found; install the Debian package libonnx-testdata (apt-get install -y libonnx-testdata)`);
  process.exit(1);
}

const { cases, ignored } = listCases(root, values.filter);
const started = performance.now();
let done = 0;
const results = await runConformance(cases, { threads: 1 }, (r) => {
  done++;
  if (values.verbose || r.status === 'failed') console.error(`[${done}/${cases.length}] ${r.status.padEnd(12)} ${r.name}${r.reason ? `: ${r.reason}` : ''}`);
});
const seconds = (performance.now() - started) / 1000;
const summary = summarize(results);

if (values.json) {
  process.stdout.write(`${JSON.stringify({ root, filter: values.filter ?? null, seconds, ignoredDirectories: ignored, summary, results }, null, 2)}\n`);
} else {
  const byStatus = (s: CaseResult['status']): CaseResult[] => results.filter((r) => r.status === s);
  printList('FAILED (the original passes, our round trip does not)', byStatus('failed'));
  printList('ort-mismatch (onnxruntime disagrees with the expected outputs; round trip checked against the original instead)', byStatus('ort-mismatch'));
  printList('skipped (onnxruntime-node cannot run the original)', byStatus('skipped'));
  console.log(
    `${cases.length} models in ${root} (${ignored} directories without model.onnx and test data ignored), ${seconds.toFixed(1)} s; ` +
      `${summary.byteIdentical} of ${summary.reencoded} re-encoded byte for byte; ${summary.ortMismatch} ort-mismatch counted as skipped`,
  );
  console.log(`${summary.passed} passed, ${summary.failed} failed, ${summary.skipped + summary.ortMismatch} skipped`);
}
process.exitCode = summary.failed > 0 || cases.length === 0 ? 1 : 0;

function printList(title: string, rows: readonly CaseResult[]): void {
  if (rows.length === 0) return;
  const width = Math.max(...rows.map((r) => r.name.length));
  console.log(`${title}: ${rows.length}`);
  for (const r of rows) console.log(`  ${r.name.padEnd(width)}  ${r.reason ?? ''}`);
  console.log('');
}
