import { randomUUID } from 'node:crypto';
import { request } from 'undici';
import { EdgevolveError, isEdgevolveError } from '../../errors/index.ts';
import type { PendingBatch, SampleStore, StoredSample } from './store.ts';

/** One sample as it travels to the cloud. */
export interface UploadedSample {
  readonly id: number;
  readonly model: string;
  readonly version: string;
  readonly createdAt: number;
  readonly scores: Readonly<Record<string, number>>;
  readonly input: Uint8Array;
  readonly output: Uint8Array;
}

export interface SampleBatch {
  readonly id: string;
  readonly device: string;
  readonly samples: readonly UploadedSample[];
}

/**
 * Where batches go: an HTTP endpoint, or an OCI registry as an artifact. `send` resolves only
 * when the cloud has durably accepted the batch; any rejection leaves the samples on the
 * device. Sending the same batch id twice must be harmless (resumed uploads do).
 */
export interface BatchTransport {
  send(batch: SampleBatch): Promise<void>;
}

export interface UploadReport {
  readonly batches: number;
  readonly samples: number;
  readonly bytes: number;
}

/**
 * Sends every stored sample in batches of `batchSize`, oldest first; each batch is deleted
 * from the device only after the transport confirmed it. Stops at the first failure (the
 * batch stays open and is resent with the same id next time) and rethrows it as
 * E_COEVO_UPLOAD.
 */
export async function uploadPending(store: SampleStore, transport: BatchTransport, device: string, batchSize: number, now: () => number): Promise<UploadReport> {
  let batches = 0;
  let samples = 0;
  let bytes = 0;
  for (;;) {
    const pending = store.nextBatch(batchSize, randomUUID, now());
    if (pending === undefined) return { batches, samples, bytes };
    const batch = await readBatch(store, pending, device);
    try {
      await transport.send(batch);
    } catch (err) {
      if (isEdgevolveError(err) && err.code === 'E_COEVO_UPLOAD') throw err;
      throw new EdgevolveError('E_COEVO_UPLOAD', `batch ${pending.id} (${pending.samples.length} samples, attempt ${pending.attempts}): ${(err as Error).message}`, {
        cause: err,
        context: { batch: pending.id, attempts: pending.attempts },
      });
    }
    samples += await store.confirm(pending.id);
    bytes += pending.samples.reduce((sum, s) => sum + s.bytes, 0);
    batches++;
  }
}

async function readBatch(store: SampleStore, pending: PendingBatch, device: string): Promise<SampleBatch> {
  const samples: UploadedSample[] = [];
  for (const sample of pending.samples) samples.push(await withFiles(store, sample));
  return { id: pending.id, device, samples };
}

async function withFiles(store: SampleStore, sample: StoredSample): Promise<UploadedSample> {
  const { input, output } = await store.readFiles(sample.id);
  return { id: sample.id, model: sample.model, version: sample.version, createdAt: sample.createdAt, scores: sample.scores as Record<string, number>, input, output };
}

/** The JSON document of one batch on the wire (NPY files base64-encoded). */
export interface BatchDocument {
  readonly batch: string;
  readonly device: string;
  readonly samples: readonly {
    readonly id: number;
    readonly model: string;
    readonly version: string;
    readonly createdAt: number;
    readonly scores: Readonly<Record<string, number>>;
    readonly input: string;
    readonly output: string;
  }[];
}

export function encodeBatch(batch: SampleBatch): string {
  const doc: BatchDocument = {
    batch: batch.id,
    device: batch.device,
    samples: batch.samples.map((s) => ({
      id: s.id, model: s.model, version: s.version, createdAt: s.createdAt, scores: s.scores,
      input: Buffer.from(s.input).toString('base64'),
      output: Buffer.from(s.output).toString('base64'),
    })),
  };
  return JSON.stringify(doc);
}

/**
 * POSTs each batch as JSON to `url`; the cloud confirms with 200/201 and a body naming the
 * batch id (`{"batch": "<id>"}`), so a proxy's 200 is not mistaken for a confirmation.
 */
export function httpTransport(url: string, options: { readonly token?: string | undefined; readonly timeoutMs: number }): BatchTransport {
  return {
    async send(batch) {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
      let res;
      try {
        res = await request(url, { method: 'POST', headers, body: encodeBatch(batch), signal: AbortSignal.timeout(options.timeoutMs) });
      } catch (err) {
        throw new EdgevolveError('E_COEVO_UPLOAD', `POST ${url}: ${(err as Error).message}`, { cause: err });
      }
      const text = await res.body.text();
      if (res.statusCode !== 200 && res.statusCode !== 201) throw new EdgevolveError('E_COEVO_UPLOAD', `POST ${url}: HTTP ${res.statusCode} ${text.slice(0, 200)}`);
      let confirmed: unknown;
      try {
        confirmed = (JSON.parse(text) as { batch?: unknown }).batch;
      } catch {
        confirmed = undefined;
      }
      if (confirmed !== batch.id) throw new EdgevolveError('E_COEVO_UPLOAD', `POST ${url}: the answer does not confirm batch ${batch.id}`);
    },
  };
}
