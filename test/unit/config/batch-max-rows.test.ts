import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/index.ts';
import { batchingFromConfig } from '../../../src/runtime/serving/index.ts';

describe('server.batchMaxRows', () => {
  it("defaults to 'auto': batching up to 128 rows, only for models the batch probe passes", () => {
    const config = loadConfig({ env: {} });
    expect(config.server.batchMaxRows).toBe('auto');
    expect(batchingFromConfig(config.server.batchMaxRows, config.server.inferenceWorkers)).toEqual({ maxRows: 128, maxInFlight: 1, probe: true });
  });

  it('takes a row count (batched unprobed, one batch per inference worker) and 0 or 1 as off', () => {
    expect(loadConfig({ env: { EDGEVOLVE_SERVER__BATCH_MAX_ROWS: '64' } }).server.batchMaxRows).toBe(64);
    expect(batchingFromConfig(64, 2)).toEqual({ maxRows: 64, maxInFlight: 2 });
    expect(batchingFromConfig(1, 0)).toBeUndefined();
    expect(batchingFromConfig(0, 0)).toBeUndefined();
  });

  it('refuses anything else, naming the key and what it accepts', () => {
    expect(() => loadConfig({ env: { EDGEVOLVE_SERVER__BATCH_MAX_ROWS: 'sometimes' } })).toThrow(/server\.batchMaxRows: expected 'auto' or a row count from 0 to 65536/);
    expect(() => loadConfig({ env: { EDGEVOLVE_SERVER__BATCH_MAX_ROWS: '1.5' } })).toThrow(/server\.batchMaxRows: expected 'auto' or a row count/);
    expect(() => loadConfig({ env: { EDGEVOLVE_SERVER__BATCH_MAX_ROWS: '70000' } })).toThrow(/server\.batchMaxRows: Too big/);
  });
});
