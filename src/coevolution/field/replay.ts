import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseMnistDigits, selectSamples, splitSet } from '../train/index.ts';
import type { FieldSet } from './field-data.ts';

/** The seed and test size of the fixtures' split (scripts/train-fixtures.ts): the replay set comes from its training part. */
const FIXTURE_SPLIT_SEED = 20261128;
const FIXTURE_TEST_COUNT = 2000;

/**
 * The first `count` images of the fixtures' training split, read from the `mnist` package's
 * digit files in `digitsDir`: the cloud keeps the student's original training data and
 * replays some of it while distilling, so that the student adapts to the field without
 * forgetting the clean digits. Disjoint from the test split the field data is made of.
 */
export async function loadTrainingReplay(digitsDir: string, count: number): Promise<FieldSet> {
  const texts = await Promise.all(Array.from({ length: 10 }, (_, digit) => readFile(path.join(digitsDir, `${digit}.json`), 'utf8')));
  const { train } = splitSet(parseMnistDigits(texts), FIXTURE_TEST_COUNT, FIXTURE_SPLIT_SEED);
  return selectSamples(train, Array.from({ length: Math.min(count, train.count) }, (_, i) => i));
}
