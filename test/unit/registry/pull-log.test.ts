import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Clock } from '../../../src/host/index.ts';
import { systemDisk } from '../../../src/host/index.ts';
import { OciLayout, pullModel, pushArtifact, type PullDeps } from '../../../src/registry/index.ts';
import { BlobStore, ModelRepository, openStateDatabase, type StateDatabase } from '../../../src/store/index.ts';
import { makeTempDir } from '../../helpers/tmp.ts';

const MLP = 'test/fixtures/models/mnist-mlp.onnx';
const clock: Clock = { now: () => Date.now(), sleep: () => Promise.resolve() };

describe('pullModel logs what happens to the model layer', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let db: StateDatabase;
  beforeEach(async () => {
    tmp = await makeTempDir('edgevolve-pull-log-');
    db = openStateDatabase(join(tmp.dir, 'state.db'));
  });
  afterEach(async () => {
    db.close();
    await tmp.cleanup();
  });

  it('"downloading model layer" with its size on the first pull, "model layer already stored" on a pull of the same version', async () => {
    const layout = new OciLayout(join(tmp.dir, 'layout'));
    await layout.init();
    await pushArtifact(layout, { name: 'm', version: '1.0.0', variants: [{ name: 'fp32', modelPath: MLP }] }, '1.0.0');
    const lines: { msg: string; bytes?: number; ms?: number }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as { msg: string }) });
    const blobs = new BlobStore({ root: join(tmp.dir, 'blobs'), disk: systemDisk });
    await blobs.init();
    const deps: PullDeps = {
      blobs,
      repository: new ModelRepository(db, clock),
      policy: { requireSignature: false, publicKeys: [], allowSignedDowngrade: false },
      profile: { arch: 'amd64', availableMemoryBytes: 8 * 1024 ** 3, preferredPrecisions: ['fp32'], basis: [], accelerators: [], cpuFeatures: [] },
      clock,
      random: { random: () => 0.5 },
      retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
      logger,
    };
    const first = await pullModel(deps, { source: layout, reference: '1.0.0', fallbackName: 'm' });
    expect(lines.map((l) => l.msg)).toEqual(['downloading model layer', 'model layer verified']);
    expect(lines[0]?.bytes).toBe(first.modelBytes);
    expect(typeof lines[1]?.ms).toBe('number');

    lines.length = 0;
    await pullModel(deps, { source: layout, reference: '1.0.0', fallbackName: 'm' });
    expect(lines.map((l) => l.msg)).toEqual(['model layer already stored']);
    expect(lines[0]?.bytes).toBe(first.modelBytes);
  });
});
