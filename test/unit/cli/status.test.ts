import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeRuntimeStatus, type RuntimeStatus } from '../../../src/daemon/status.ts';
import { edgevolve } from '../../helpers/cli.ts';
import { makeTempDir } from '../../helpers/tmp.ts';

describe('edgevolve status where no daemon ever ran', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  beforeAll(async () => {
    tmp = await makeTempDir('edgevolve-status-');
  });
  afterAll(() => tmp.cleanup());

  it('says so, and creates nothing: no store, no state directory', async () => {
    const stateDir = join(tmp.dir, 'state');
    const text = await edgevolve('status', '--state-dir', stateDir);
    expect(text).toMatchObject({ code: 0, stdout: `daemon: never ran with state dir ${stateDir}\n` });
    const json = await edgevolve('status', '--state-dir', stateDir, '--json');
    expect(JSON.parse(json.stdout)).toEqual({ stateDir, daemon: null, models: [] });
    expect(await readdir(tmp.dir)).toEqual([]);
  });
});

describe('edgevolve status text shows a shadow in progress', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  beforeAll(async () => {
    tmp = await makeTempDir('edgevolve-status-');
  });
  afterAll(() => tmp.cleanup());

  it('with its mirrored requests, time, agreement and p95s, as --json has them', async () => {
    // A status file as a running daemon writes it (this test process stands in for the daemon's pid).
    const now = Date.now();
    const status: RuntimeStatus = {
      pid: process.pid,
      startedAt: now - 60_000,
      updatedAt: now,
      phase: 'ready',
      url: null,
      served: [],
      health: { ok: true, reason: 'probe ok', lastSuccessAt: now },
      probes: {},
      eventCounts: { 'shadow-started': 1 },
      recentEvents: [],
      telemetry: null,
      shadows: [
        {
          model: 'mnist',
          version: '2.0.0',
          variant: 'int8',
          live: '1.0.0/cnn',
          mirrored: 37,
          dropped: 2,
          failed: 0,
          agreement: 0.973,
          metric: 'top1',
          candidateP95Ms: 1.25,
          liveP95Ms: 2.5,
          candidateManifest: 'sha256:00',
          startedAt: now - 12_000,
          elapsedMs: 12_000,
          maxDurationMs: 600_000,
          minRequests: 200,
        },
      ],
      memoryLimit: { status: 'unconfigured' },
    };
    const stateDir = join(tmp.dir, 'state');
    await writeRuntimeStatus(stateDir, status);
    const { stdout } = await edgevolve('status', '--state-dir', stateDir);
    expect(stdout).toContain('shadow mnist: 2.0.0/int8 beside 1.0.0/cnn, 37 of 200 requests mirrored (2 dropped, 0 failed), 12 s of 600 s, agreement 97.3% (top1), p95 1.3 ms vs 2.5 ms live\n');
    expect(stdout).toContain('memory limit: service.memoryMax not set (the unit keeps its own)\n');
  });
});
