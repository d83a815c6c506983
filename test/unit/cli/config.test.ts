import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { edgevolve } from '../../helpers/cli.ts';
import { makeTempDir } from '../../helpers/tmp.ts';

describe('edgevolve config get', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let file: string;
  beforeAll(async () => {
    tmp = await makeTempDir('edgevolve-config-get-');
    file = join(tmp.dir, 'config.yaml');
    await writeFile(file, 'service:\n  memoryMax: 768M\nserver:\n  port: 9000\n');
  });
  afterAll(() => tmp.cleanup());

  it('prints a string as it is, anything else as JSON, defaults included, and nothing for an unset key', async () => {
    expect(await edgevolve('config', 'get', 'service.memoryMax', '--config', file)).toMatchObject({ code: 0, stdout: '768M\n' });
    expect(await edgevolve('config', 'get', 'server.port', '--config', file)).toMatchObject({ code: 0, stdout: '9000\n' });
    expect(await edgevolve('config', 'get', 'daemon.watchdog', '--config', file)).toMatchObject({ code: 0, stdout: '{"maxEventLoopLagMs":2000,"probeIntervalMs":5000,"probeFreshMs":30000}\n' });
    expect(await edgevolve('config', 'get', 'server.token', '--config', file)).toMatchObject({ code: 0, stdout: '' });
  });

  it('fails with the validation message for an invalid file, and with a usage error for a path through a value', async () => {
    const bad = join(tmp.dir, 'bad.yaml');
    await writeFile(bad, 'service:\n  memoryMax: 2 gigs\n');
    const invalid = await edgevolve('config', 'get', 'service.memoryMax', '--config', bad);
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toMatch(/E_CONFIG_INVALID: invalid configuration in .*bad\.yaml:\n {2}service\.memoryMax: not a systemd MemoryMax= value/);
    const usage = await edgevolve('config', 'get', 'server.port.x', '--config', file);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/server\.port has no key x/);
  });

  it('--json prints one document with the value, null when unset, and the error document for an unknown key', async () => {
    expect(JSON.parse((await edgevolve('config', 'get', 'server.port', '--config', file, '--json')).stdout)).toEqual({ ok: true, key: 'server.port', value: 9000 });
    expect(JSON.parse((await edgevolve('config', 'get', 'server.token', '--config', file, '--json')).stdout)).toEqual({ ok: true, key: 'server.token', value: null });
    const typo = await edgevolve('config', 'get', 'server.prot', '--config', file, '--json');
    expect(typo.code).toBe(2);
    expect(JSON.parse(typo.stdout)).toMatchObject({ ok: false, error: { code: 'E_USAGE' } });
  });

  it('refuses a key the schema does not have instead of printing nothing, and accepts unset keys under a map', async () => {
    const typo = await edgevolve('config', 'get', 'service.memoryMx', '--config', file);
    expect(typo).toMatchObject({ code: 2, stdout: '' });
    expect(typo.stderr).toMatch(/unknown configuration key service\.memoryMx: service has no key memoryMx/);
    const top = await edgevolve('config', 'get', 'nosuch.key', '--config', file);
    expect(top.code).toBe(2);
    expect(top.stderr).toMatch(/unknown configuration key nosuch\.key: the configuration has no key nosuch/);
    // registry.auth is a map of hosts: any host is a key, unset here.
    expect(await edgevolve('config', 'get', 'registry.auth.localhost', '--config', file)).toMatchObject({ code: 0, stdout: '' });
    expect(await edgevolve('config', 'get', 'registry.auth.localhost.username', '--config', file)).toMatchObject({ code: 0, stdout: '' });
  });
});
