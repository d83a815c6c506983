import type { Command } from 'commander';
import { loadConfig, type Config } from '../../config/index.ts';
import { resolveConfigFile } from '../../daemon/config-file.ts';
import { dataTypeName } from '../../onnx/index.ts';
import { KserveClient, loadInputs, parseInputArgument, topK, type ModelMetadataInputs } from '../../server/index.ts';
import { printJson, runAction, usageError } from '../output.ts';

interface InferFlags {
  input: string[];
  url?: string;
  socket?: string;
  token?: string;
  config?: string;
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
    .option('--url <url>', 'server URL (default: $EDGEVOLVE_URL, else where the configuration says the daemon listens)')
    .option('--socket <path>', 'unix socket of the server (instead of --url)')
    .option('--token <token>', 'bearer token (default: $EDGEVOLVE_TOKEN, else server.token of the configuration when the address came from it)')
    .option('--config <file>', 'without --url or --socket: the configuration whose server section (socketPath, or host and port, and token) the daemon listens with (default: /etc/edgevolve/config.yaml when present, else 127.0.0.1:8080)')
    .option('--model-version <v>', 'require this model version')
    .option('--binary', 'send and receive tensors with the binary-data extension instead of JSON')
    .option('--top <k>', 'classes shown per row for class-score outputs', '5')
    .option('--json', 'print one JSON document')
    .action(async (model: string, opts: InferFlags) => {
      await runAction(Boolean(opts.json), async () => {
        const k = Number(opts.top);
        if (!Number.isSafeInteger(k) || k < 1) throw usageError(`--top ${opts.top}: expected a positive integer`);
        const target = resolveTarget(opts);
        const token = opts.token ?? process.env.EDGEVOLVE_TOKEN ?? target.token;
        const client = new KserveClient({
          ...('socketPath' in target ? { socketPath: target.socketPath } : { url: target.url }),
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

type Target = ({ readonly socketPath: string } | { readonly url: string }) & { readonly token?: string };

/**
 * Where to send the request: --socket, --url, $EDGEVOLVE_URL, else the address the daemon's own
 * configuration listens on (its token too: the same operator reads both), so that `edgevolve
 * infer` reaches a daemon started with another port, a socket or a token without flags.
 */
function resolveTarget(opts: InferFlags): Target {
  if (opts.socket !== undefined) return { socketPath: opts.socket };
  const given = opts.url ?? process.env.EDGEVOLVE_URL;
  if (given !== undefined) {
    const flag = opts.url !== undefined ? '--url' : '$EDGEVOLVE_URL';
    if (!isHttpUrl(given)) throw usageError(`${flag} ${given}: expected an http:// or https:// URL (or --socket PATH)`);
    return { url: given };
  }
  const file = resolveConfigFile(opts.config);
  const server: Config['server'] = loadConfig({ ...(file === undefined ? {} : { file }), env: process.env }).server;
  const token = server.token === undefined ? {} : { token: server.token };
  if (server.socketPath !== undefined) return { socketPath: server.socketPath, ...token };
  return { url: `http://${connectHost(server.host)}:${server.port}`, ...token };
}

/** A daemon listening on every address is reached on loopback. */
function connectHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

function isHttpUrl(text: string): boolean {
  try {
    const { protocol } = new URL(text);
    return protocol === 'http:' || protocol === 'https:';
  } catch {
    return false;
  }
}
