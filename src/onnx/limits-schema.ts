import { z } from 'zod';

/**
 * The caps every model is checked against, as a config section. It lives here, not
 * in config/, because onnx/ imports nothing outside itself but the error class;
 * config/schema.ts composes it into the daemon's configuration.
 */
export const onnxLimitsSchema = z
  .object({
    maxModelBytes: z.number().int().positive().default(2 * 1024 ** 3).describe('Largest .onnx file accepted, in bytes (protobuf caps a model at 2 GiB).'),
    maxTensorBytes: z.number().int().positive().default(2 * 1024 ** 3).describe('Largest single tensor (inline or external), in bytes.'),
    maxTensorElements: z.number().int().positive().default(2 ** 31).describe('Largest element count of a tensor or declared shape.'),
    maxDims: z.number().int().positive().default(32).describe('Largest rank of a tensor or shape.'),
    maxNodes: z.number().int().positive().default(1_000_000).describe('Most nodes in all graphs of a model together.'),
    maxGraphDepth: z.number().int().positive().default(32).describe('Deepest nesting of subgraphs (If/Loop/Scan bodies).'),
  })
  .strict()
  .describe('Caps applied to every model before it reaches onnxruntime or a pass.');

export type OnnxLimits = z.infer<typeof onnxLimitsSchema>;
export const DEFAULT_ONNX_LIMITS: OnnxLimits = Object.freeze(onnxLimitsSchema.parse({}));
