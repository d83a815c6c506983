import { createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { parseNpy } from '../../data/npy.ts';
import { writeFileAtomic } from '../../host/index.ts';
import { EdgevolveError } from '../../errors/index.ts';
import type { UnlabelledSet } from './distil.ts';

const SAFE_NAME = /^[A-Za-z0-9_.-]{1,128}$/;
const batchSchema = z.object({
  batch: z.string().regex(SAFE_NAME),
  device: z.string().regex(SAFE_NAME),
  samples: z.array(z.object({
    id: z.number().int().nonnegative(),
    model: z.string().max(256),
    version: z.string().max(128),
    createdAt: z.number(),
    scores: z.record(z.string(), z.number()),
    input: z.string(),
    output: z.string(),
  })).max(10_000),
});

export interface SampleReceiverOptions {
  readonly dir: string;
  readonly host: string;
  readonly port: number;
  readonly maxBodyBytes: number;
  readonly token?: string | undefined;
}

export interface SampleReceiver {
  readonly url: string;
  /** Batches accepted so far (resent batches count once). */
  readonly accepted: () => number;
  close(): Promise<void>;
}

/**
 * The cloud end of the HTTP upload: `POST /v1/samples` with a batch document. Each valid
 * batch is written atomically as `<dir>/<device>/<batch>.json` and only then confirmed with
 * `{"batch": id}`. A batch already stored is confirmed again without rewriting (resumed uploads).
 */
export async function startSampleReceiver(options: SampleReceiverOptions): Promise<SampleReceiver> {
  let accepted = 0;
  const server: Server = createServer((req, res) => {
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'POST' || req.url !== '/v1/samples') return reply(404, { error: 'POST /v1/samples' });
    if (options.token !== undefined && req.headers.authorization !== `Bearer ${options.token}`) return reply(401, { error: 'unauthorized' });
    readBody(req, options.maxBodyBytes)
      .then(async (text) => {
        const parsed = batchSchema.safeParse(JSON.parse(text));
        if (!parsed.success) return reply(400, { error: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') });
        const doc = parsed.data;
        const file = path.join(options.dir, doc.device, `${doc.batch}.json`);
        const complete = await stat(file).then(() => true, () => false);
        if (!complete) {
          for (const sample of doc.samples) parseNpy(Buffer.from(sample.input, 'base64')); // refuse what is not NPY before storing
          await mkdir(path.dirname(file), { recursive: true });
          // One atomic file per batch: a single fsync, and its presence means the batch is complete.
          await writeFileAtomic(file, text);
          accepted++;
        }
        reply(200, { batch: doc.batch, samples: doc.samples.length });
      })
      .catch((err: unknown) => {
        const status = err instanceof EdgevolveError && err.code === 'E_COEVO_INVALID' ? 413 : 400;
        reply(status, { error: (err as Error).message });
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://${options.host}:${address.port}/v1/samples`,
    accepted: () => accepted,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function readBody(req: IncomingMessage, maxBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        reject(new EdgevolveError('E_COEVO_INVALID', `batch larger than ${maxBytes} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Every batch stored under `dir` as one unlabelled set (inputs must share one shape). */
export async function readReceivedSamples(dir: string): Promise<UnlabelledSet & { readonly batches: number }> {
  const inputs: Float32Array[] = [];
  let sampleShape: readonly number[] | undefined;
  let batches = 0;
  const devices = await readdir(dir).catch(() => [] as string[]);
  for (const device of devices.sort()) {
    for (const name of (await readdir(path.join(dir, device))).sort()) {
      if (!name.endsWith('.json')) continue; // temp files of an interrupted write
      const file = path.join(dir, device, name);
      const parsed = batchSchema.safeParse(JSON.parse(await readFile(file, 'utf8')));
      if (!parsed.success) throw new EdgevolveError('E_COEVO_INVALID', `${file} is not a sample batch`);
      batches++;
      for (const sample of parsed.data.samples) {
        const npy = parseNpy(Buffer.from(sample.input, 'base64'));
        const shape = npy.shape.slice(1);
        if (npy.dtype !== 'float32') throw new EdgevolveError('E_COEVO_INVALID', `${file} sample ${sample.id}: input is ${npy.dtype}, not float32`);
        if (sampleShape === undefined) sampleShape = shape;
        else if (shape.join(',') !== sampleShape.join(',')) throw new EdgevolveError('E_COEVO_INVALID', `${file} sample ${sample.id}: shape [${shape.join(',')}], others [${sampleShape.join(',')}]`);
        inputs.push(npy.data as Float32Array);
      }
    }
  }
  const size = sampleShape?.reduce((a, b) => a * b, 1) ?? 0;
  const all = new Float32Array(inputs.length * size);
  inputs.forEach((x, i) => all.set(x, i * size));
  return { inputs: all, count: inputs.length, sampleShape: sampleShape ?? [], batches };
}
