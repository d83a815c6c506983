import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { KeyObject } from 'node:crypto';
import { compressModel } from '../../compress/index.ts';
import { decodeModel } from '../../onnx/index.ts';
import { writeFileAtomic } from '../../host/index.ts';
import { pushArtifact, signArtifact, type VariantSpec } from '../../registry/index.ts';
import type { ContentTarget } from '../../registry/content.ts';

export interface PublishRequest {
  /** The distilled student (ONNX bytes) that passed the gate. */
  readonly model: Uint8Array;
  readonly name: string;
  readonly version: string;
  /** Compressed variants pushed beside fp32 (src/compress methods without calibration data). */
  readonly compress: readonly ('int8-dynamic' | 'fp16')[];
  /** Held-out top-1 of the fp32 model, recorded in the variant metadata. */
  readonly accuracy: number;
  /** Where the variant files are written before the push. */
  readonly workDir: string;
  readonly target: ContentTarget;
  /** `host:port/repo`, what the signatures name. */
  readonly dockerReference: string;
  readonly tag: string;
  /** Signs the index and every variant (cosign convention) when given. */
  readonly key: KeyObject | undefined;
}

export interface Published {
  readonly ref: string;
  readonly indexDigest: string;
  readonly variants: readonly { name: string; bytes: number }[];
  readonly signed: boolean;
}

/** Pushes the new student as a model version: fp32 plus compressed variants, signed. */
export async function publishStudent(request: PublishRequest): Promise<Published> {
  await mkdir(request.workDir, { recursive: true });
  const fp32Path = path.join(request.workDir, `${request.name}-${request.version}-fp32.onnx`);
  await writeFileAtomic(fp32Path, request.model);
  const variants: VariantSpec[] = [{ name: 'fp32', modelPath: fp32Path, precision: 'fp32', accuracy: request.accuracy }];
  const sizes = [{ name: 'fp32', bytes: request.model.byteLength }];
  for (const method of request.compress) {
    const result = await compressModel(decodeModel(request.model), method, {}, {}, request.model.byteLength);
    const file = path.join(request.workDir, `${request.name}-${request.version}-${method}.onnx`);
    await writeFileAtomic(file, result.bytes);
    const precision = method === 'fp16' ? 'fp16' : 'int8';
    variants.push({ name: precision, modelPath: file, precision });
    sizes.push({ name: precision, bytes: result.bytes.byteLength });
  }
  const pushed = await pushArtifact(request.target, { name: request.name, version: request.version, variants, task: 'classification' }, request.tag);
  if (request.key !== undefined) await signArtifact(request.target, request.dockerReference, pushed, request.key);
  return { ref: `${request.dockerReference}:${request.tag}`, indexDigest: pushed.indexDigest, variants: sizes, signed: request.key !== undefined };
}
