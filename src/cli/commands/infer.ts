import type { Command } from 'commander';
import { dataTypeName } from '../../onnx/index.ts';
import { KserveClient, loadInputs, parseInputArgument, topK, type ModelMetadataInputs } from '../../server/index.ts';
import { printJson, runAction, usageError } from '../output.ts';

interface InferFlags {
  input: string[];
  url?: string;
  socket?: string;
  token?: string;
  modelVersion?: string;
  binary?: boolean;
  top: string;
  json?: boolean;
}

export function registerInfer(program: Command): void {
  program
    .command('infer')
    .description('Send one inference request to a running edgevolve (KServe v2 API) and print the outputs.')
    .argument('<model-name>', 'the model name the server serves it under')
    .option('--input <[name=]file.npy>', 'an input tensor from a .npy file; the name may be left out when the model has one input (repeatable)', (v: string, acc: string[]) => [...acc, v], [])
    .option('--url <url>', 'server URL', process.env.EDGEVOLVE_URL ?? 'http://127.0.0.1:8080')
    .option('--socket <path>', 'unix socket of the server (instead of --url)')
    .option('--token <token>', 'bearer token (default: $EDGEVOLVE_TOKEN)')
    .option('--model-version <v>', 'require this model version')
    .option('--binary', 'send and receive tensors with the binary-data extension instead of JSON')
    .option('--top <k>', 'classes shown per row for class-score outputs', '5')
    .option('--json', 'print one JSON document')
    .action(async (model: string, opts: InferFlags) => {
      await runAction(Boolean(opts.json), async () => {
        const k = Number(opts.top);
        if (!Number.isSafeInteger(k) || k < 1) throw usageError(`--top ${opts.top}: expected a positive integer`);
        if (opts.socket === undefined && !isHttpUrl(opts.url!)) throw usageError(`--url ${opts.url!}: expected an http:// or https:// URL (or --socket PATH)`);
        const token = opts.token ?? process.env.EDGEVOLVE_TOKEN;
        const client = new KserveClient({
          ...(opts.socket !== undefined ? { socketPath: opts.socket } : { url: opts.url! }),
          ...(token !== undefined && token.length > 0 ? { token } : {}),
          connections: 1,
        });
        try {
          const inputs = await loadInputs(opts.input.map(parseInputArgument), async () => (await client.getJson(`/v2/models/${encodeURIComponent(model)}`)) as ModelMetadataInputs);
          const response = await client.infer(model, inputs, { binary: Boolean(opts.binary), ...(opts.modelVersion !== undefined ? { version: opts.modelVersion } : {}) });
          if (opts.json) {
            printJson({
              ok: true,
              model: response.modelName,
              version: response.modelVersion,
              answeredBy: response.parameters.answered_by,
              outputs: Object.fromEntries(
                Object.entries(response.outputs).map(([name, v]) => [name, { datatype: dataTypeName(v.dataType), shape: v.dims, data: Array.from(v.data as ArrayLike<unknown>) }]),
              ),
            });
            return;
          }
          const answeredBy = typeof response.parameters.answered_by === 'string' ? response.parameters.answered_by : 'local';
          let text = `model ${response.modelName} version ${response.modelVersion ?? '?'} (answered by ${answeredBy})\n`;
          for (const [name, value] of Object.entries(response.outputs)) {
            text += `${name}  ${dataTypeName(value.dataType)} [${value.dims.join(', ')}]\n`;
            const best = topK(value, k);
            if (best !== undefined) {
              best.rows.forEach((row, r) => {
                text += `  row ${r}: ${row.map((c) => `${c.index} (${c.score.toPrecision(4)})`).join('  ')}\n`;
              });
            } else {
              const data = Array.from(value.data as ArrayLike<unknown>);
              text += `  ${data.slice(0, 16).map(String).join(', ')}${data.length > 16 ? `, … (${data.length} values)` : ''}\n`;
            }
          }
          process.stdout.write(text);
        } finally {
          await client.close();
        }
      });
    });
}

function isHttpUrl(text: string): boolean {
  try {
    const { protocol } = new URL(text);
    return protocol === 'http:' || protocol === 'https:';
  } catch {
    return false;
  }
}
