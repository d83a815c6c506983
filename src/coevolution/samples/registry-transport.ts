import type { ContentTarget } from '../../registry/content.ts';
import { sha256Digest, type Descriptor } from '../../registry/manifest.ts';
import { MEDIA_TYPE, ANNOTATION } from '../../registry/media-types.ts';
import { EdgevolveError } from '../../errors/index.ts';
import type { BatchTransport, SampleBatch } from './upload.ts';

/** Media types of a hard-sample batch artifact (ours; the containers are standard OCI). */
export const SAMPLE_MEDIA_TYPE = {
  artifact: 'application/vnd.edgevolve.samples.v1',
  /** JSON: batch id, device, and per sample its id, model, version, time and criterion values. */
  config: 'application/vnd.edgevolve.samples.config.v1+json',
  /** One NPY file; the title annotation says `<sample id>.input.npy` or `<sample id>.output.npy`. */
  npy: 'application/vnd.edgevolve.samples.layer.v1.npy',
} as const;

/** The tag a batch is pushed under: `samples-<device>-<batch id>`, reduced to the OCI tag alphabet. */
export function sampleBatchTag(device: string, batchId: string): string {
  return `samples-${device}-${batchId}`.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 128);
}

/**
 * Pushes each batch as an OCI artifact (one layer per NPY file, a JSON config) through the
 * registry's push path, tagged with `sampleBatchTag`. The registry storing the manifest is
 * the confirmation; pushing the same batch again writes the same digests (idempotent).
 */
export function registryTransport(target: ContentTarget): BatchTransport {
  return {
    async send(batch: SampleBatch) {
      const layers: Descriptor[] = [];
      for (const sample of batch.samples) {
        for (const [role, bytes] of [['input', sample.input], ['output', sample.output]] as const) {
          const descriptor: Descriptor = {
            mediaType: SAMPLE_MEDIA_TYPE.npy,
            digest: sha256Digest(bytes),
            size: bytes.byteLength,
            annotations: { [ANNOTATION.title]: `${sample.id}.${role}.npy` },
          };
          await target.pushBlob(descriptor, { bytes });
          layers.push(descriptor);
        }
      }
      const configBytes = Buffer.from(JSON.stringify({
        batch: batch.id,
        device: batch.device,
        samples: batch.samples.map((s) => ({ id: s.id, model: s.model, version: s.version, createdAt: s.createdAt, scores: s.scores })),
      }));
      const config: Descriptor = { mediaType: SAMPLE_MEDIA_TYPE.config, digest: sha256Digest(configBytes), size: configBytes.byteLength };
      await target.pushBlob(config, { bytes: configBytes });
      const manifest = Buffer.from(JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPE.ociManifest,
        artifactType: SAMPLE_MEDIA_TYPE.artifact,
        config,
        layers,
        annotations: { 'dev.edgevolve.samples.batch': batch.id, 'dev.edgevolve.samples.device': batch.device },
      }));
      const digest = await target.pushManifest(manifest, MEDIA_TYPE.ociManifest, sampleBatchTag(batch.device, batch.id));
      if (digest !== sha256Digest(manifest)) throw new EdgevolveError('E_COEVO_UPLOAD', `registry stored ${digest} for batch ${batch.id}`);
    },
  };
}
