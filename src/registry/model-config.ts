import { EdgevolveError } from '../errors/index.ts';
import type { ModelConfig } from './artifact.ts';

/** Parses a variant's config blob (untrusted JSON) far enough to rely on its shape. */
export function parseModelConfig(bytes: Buffer, digest: string): ModelConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new EdgevolveError('E_REGISTRY_MANIFEST_INVALID', `config blob ${digest} is not valid JSON`, { cause: err });
  }
  const c = doc as Partial<ModelConfig> | null;
  if (c === null || typeof c !== 'object' || c.schemaVersion !== 1 || !Array.isArray(c.inputs) || !Array.isArray(c.outputs)) {
    throw new EdgevolveError('E_REGISTRY_MANIFEST_INVALID', `config blob ${digest} is not an edgevolve model config (schemaVersion 1 with inputs and outputs)`);
  }
  return c as ModelConfig;
}
