/**
 * How far a shadow candidate's answer agrees with the live one, as one score in [0, 1]
 * per request: a classifier output ([N, C] floats, C > 1) scores the share of rows whose
 * top-1 class agrees (argmax, first index on ties, as the planner's metrics); any other
 * float output scores its cosine similarity; integer, boolean and string outputs score 1
 * when equal and 0 otherwise. A request with several outputs scores its worst one; an
 * output the candidate lacks, or returns with another shape, scores 0.
 */
import { DataType, valueToFloat32, type TensorValue } from '../../onnx/index.ts';
import { argmax, cosineSimilarity } from '../../planner/metrics.ts';
import { compareTensors, EXACT } from '../compare.ts';

/** Which rule scored a request: the rule of its worst output. */
export type AgreementMetric = 'top1' | 'cosine' | 'exact';

export interface AgreementScore {
  readonly score: number;
  readonly metric: AgreementMetric;
}

const FLOAT_TYPES: ReadonlySet<number> = new Set([DataType.FLOAT, DataType.DOUBLE, DataType.FLOAT16, DataType.BFLOAT16]);

export function scoreAgreement(live: Readonly<Record<string, TensorValue>>, candidate: Readonly<Record<string, TensorValue>>): AgreementScore {
  let worst: AgreementScore | undefined;
  for (const [name, expected] of Object.entries(live)) {
    const actual = candidate[name];
    const scored = actual === undefined ? { score: 0, metric: 'exact' as const } : scoreTensor(expected, actual);
    if (worst === undefined || scored.score < worst.score) worst = scored;
  }
  return worst ?? { score: 1, metric: 'exact' };
}

function scoreTensor(expected: TensorValue, actual: TensorValue): AgreementScore {
  const sameShape = expected.dims.length === actual.dims.length && expected.dims.every((d, i) => d === actual.dims[i]);
  if (!FLOAT_TYPES.has(expected.dataType) || !FLOAT_TYPES.has(actual.dataType)) {
    return { score: sameShape && compareTensors(actual, expected, EXACT) === undefined ? 1 : 0, metric: 'exact' };
  }
  const classifier = expected.dims.length === 2 && (expected.dims[1] ?? 0) > 1;
  const metric = classifier ? 'top1' : 'cosine';
  if (!sameShape) return { score: 0, metric };
  const e = asFloat32(expected);
  const a = asFloat32(actual);
  if (!classifier) return { score: Math.max(0, cosineSimilarity(a, e)), metric };
  const rows = expected.dims[0] ?? 0;
  const classes = expected.dims[1] ?? 0;
  if (rows === 0) return { score: 1, metric };
  let agree = 0;
  for (let row = 0; row < rows; row++) if (argmax(a, row * classes, classes) === argmax(e, row * classes, classes)) agree++;
  return { score: agree / rows, metric };
}

/** Float32 outputs (the common case) are used in place; other float types are converted once. */
function asFloat32(value: TensorValue): Float32Array {
  return value.data instanceof Float32Array ? value.data : valueToFloat32(value);
}
