/**
 * The hardware fingerprint: a hash of what decides measured speed and does not change
 * from one boot to the next (CPU, core count, ISA features, memory size, board,
 * onnxruntime version). Temperatures, free memory and clocks are left out on purpose:
 * they vary by the minute and would invalidate the cached micro-benchmarks for nothing.
 */
import { createHash } from 'node:crypto';
import type { BoardFacts, CpuFacts } from './profile.ts';

/** MemTotal moves by a few MiB between kernels (reserved regions); round it away. */
const MEMORY_ROUNDING_BYTES = 256 * 1024 * 1024;

export interface FingerprintInput {
  readonly cpu: Pick<CpuFacts, 'isa' | 'arch' | 'modelName' | 'cores' | 'featureSummary'>;
  readonly memoryTotalBytes: number;
  readonly board: Pick<BoardFacts, 'model' | 'soc'>;
  readonly ortVersion: string;
}

/** "sha256:<hex>" of a canonical JSON of the stable parts. */
export function hardwareFingerprint(input: FingerprintInput): string {
  const canonical = JSON.stringify([
    'edgevolve-hw-1',
    input.cpu.isa,
    input.cpu.arch,
    input.cpu.modelName,
    input.cpu.cores,
    [...input.cpu.featureSummary].sort(),
    Math.round(input.memoryTotalBytes / MEMORY_ROUNDING_BYTES),
    input.board.model,
    input.board.soc,
    input.ortVersion,
  ]);
  return `sha256:${createHash('sha256').update(canonical).digest('hex')}`;
}
