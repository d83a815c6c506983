import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // onnxruntime sessions and child processes: forks isolate native state per file.
    pool: 'forks',
    // Vitest's default is cores - 1, one worker on a 2-core board: the suite ran 574 s serially,
    // 388-414 s with two (most files wait on child processes, brokers and registries, not CPU).
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
