import { describe, expect, it } from 'vitest';
import { renderProfile } from '../../../src/cli/commands/profile.ts';
import { profileDevice } from '../../../src/hardware/index.ts';
import { fixtureHost } from './fixture-host.ts';

describe('profile human output', () => {
  it('shows the RK3588 capped big cores, the throttling reason and the NPU', async () => {
    const profile = await profileDevice({ host: fixtureHost('rock5b-rk3588'), probeProviders: () => Promise.resolve([]) }, { stateDir: '/', arch: 'arm64', measure: false });
    const text = renderProfile(profile);
    expect(text).toContain('Radxa ROCK 5B (rockchip, rk3588)');
    expect(text).toMatch(/Cortex-A76\s+4,5\s+408\s+1608 \(capped\)/);
    expect(text).toContain('throttling: YES (soc-thermal at 86.153 °C reached passive trip)');
    expect(text).toMatch(/rockchip-npu\s+\/dev\/dri\/renderD129/);
    expect(text).toContain('measured: not measured');
  });

  it('shows the Pi 4 firmware throttling words from vcgencmd', async () => {
    const profile = await profileDevice({ host: fixtureHost('rpi4'), probeProviders: () => Promise.resolve([]) }, { stateDir: '/', arch: 'arm64', measure: false });
    expect(renderProfile(profile)).toContain('throttling: YES (under-voltage now; throttled now; under-voltage since boot; throttled since boot)');
  });
});
