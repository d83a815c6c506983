import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, readdir, readlink, symlink, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join, relative, resolve, sep } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseSystemdMemoryMax } from '../../../src/config/systemd-size.ts';
import { requireTool } from '../../helpers/require-tool.ts';
import { makeTempDir } from '../../helpers/tmp.ts';

const REPO = resolve('.');

/** Every file and symlink under `root` (relative path -> sha256 of the content, or `-> target`); node_modules not entered. */
async function filesUnder(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name);
    const rel = relative(root, path);
    if (rel.split(sep).slice(0, -1).includes('node_modules')) continue;
    if (entry.isSymbolicLink()) out[rel] = `-> ${await readlink(path)}`;
    else if (entry.isFile()) out[rel] = createHash('sha256').update(await readFile(path)).digest('hex');
  }
  return out;
}
const has = (tool: string, args: string[]): (() => boolean) => () => spawnSync(tool, args).status === 0;

describe.runIf(requireTool({ name: 'systemd-analyze', check: has('systemd-analyze', ['--version']), debianPackage: 'systemd' }))('systemd/edgevolve.service', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let unit: string;
  beforeEach(async () => {
    tmp = await makeTempDir('edgevolve-unit-');
    // verify checks that ExecStart exists: point it at this checkout and this node, as install.sh does.
    const text = readFileSync('systemd/edgevolve.service', 'utf8').replace('/usr/bin/node', realpathSync(process.execPath)).replaceAll('/opt/edgevolve', REPO);
    unit = join(tmp.dir, 'edgevolve.service');
    await writeFile(unit, text);
  });
  afterEach(() => tmp.cleanup());

  it('passes systemd-analyze verify without a single warning', () => {
    const result = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('declares what the daemon relies on: notify with watchdog, bounded restarts, state and config directories, no MemoryDenyWriteExecute', () => {
    const text = readFileSync(unit, 'utf8');
    for (const line of ['Type=notify', 'NotifyAccess=all', 'WatchdogSec=30', 'Restart=on-failure', 'StartLimitIntervalSec=600', 'StartLimitBurst=5', 'StateDirectory=edgevolve', 'ConfigurationDirectory=edgevolve', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'ProtectHome=yes', 'PrivateTmp=yes', 'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK', 'User=edgevolve', 'CapabilityBoundingSet=', 'SystemCallFilter=@system-service', 'RemoveIPC=yes', 'PrivateMounts=yes']) {
      expect(text.split('\n')).toContain(line);
    }
    expect(text).not.toMatch(/^MemoryDenyWriteExecute/m);
  });

  // systemd-analyze verify does not look groups up: only this keeps a group the system may lack out of the unit.
  it('names no group the system may lack: no SupplementaryGroups= (one missing group fails every start with 216/GROUP), Group= is the one install.sh creates', () => {
    const text = readFileSync(unit, 'utf8');
    expect(text).not.toMatch(/^SupplementaryGroups=/m);
    expect(text.match(/^Group=.*$/gm)).toEqual(['Group=edgevolve']);
  });

  it('service.memoryMax and systemd agree: every value the schema accepts passes verify as the drop-in, every value it refuses is one systemd ignores', async () => {
    const verifyWith = async (memoryMax: string): Promise<string> => {
      await mkdir(join(tmp.dir, 'edgevolve.service.d'), { recursive: true });
      await writeFile(join(tmp.dir, 'edgevolve.service.d/memory.conf'), `[Service]\nMemoryMax=${memoryMax}\n`);
      // The trailing colon keeps systemd's own search path after the directory with the drop-in.
      return spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8', env: { ...process.env, SYSTEMD_UNIT_PATH: `${tmp.dir}:` } }).stderr;
    };
    for (const accepted of ['512M', '1.5G', '60%', 'infinity', '1073741824']) {
      expect(parseSystemdMemoryMax(accepted), accepted).toBeDefined();
      expect(await verifyWith(accepted), accepted).toBe('');
    }
    for (const refused of ['1g', '1GB', '101%', '0']) {
      expect(parseSystemdMemoryMax(refused), refused).toBeUndefined();
      expect(await verifyWith(refused), refused).toMatch(/memory\.conf:2: (Invalid memory limit|Memory limit '0' out of range)/);
    }
  });

  // The level the unit has now (README "The daemon"): dropping any hardening line raises it and fails here.
  it('rates 2.0 ("OK") or better in systemd-analyze security --offline', () => {
    const result = spawnSync('systemd-analyze', ['security', '--offline=yes', '--threshold=20', unit], { encoding: 'utf8' });
    const level = /Overall exposure level for edgevolve\.service: ([\d.]+)/.exec(result.stdout)?.[1];
    expect(Number(level)).toBeLessThanOrEqual(2.0);
    expect(result.status).toBe(0);
  });
});

describe('scripts/install.sh into a staging root', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  const install = (...args: string[]): string => execFileSync('bash', ['scripts/install.sh', '--prefix', tmp.dir, '--skip-npm', ...args], { encoding: 'utf8' });
  beforeEach(async () => {
    tmp = await makeTempDir('edgevolve-install-');
  });
  afterEach(() => tmp.cleanup());

  it.runIf(requireTool({ name: 'shellcheck', check: has('shellcheck', ['--version']), debianPackage: 'shellcheck' }))('is clean under shellcheck', () => {
    const result = spawnSync('shellcheck', ['scripts/install.sh'], { encoding: 'utf8' });
    expect(result.stdout).toBe('');
    expect(result.status).toBe(0);
  });

  it('installs the bundle, a config, the unit with this node and the command; a second run keeps an edited config; --uninstall keeps config and state, --purge removes them', async () => {
    const app = join(tmp.dir, 'opt/edgevolve');
    // node_modules is what `npm ci --omit=dev` (skipped here) would put beside dist/; --skip-npm carries it over.
    // install.sh runs the installed bundle (`edgevolve config get`) to read service.memoryMax.
    await mkdir(app, { recursive: true });
    await symlink(join(REPO, 'node_modules'), join(app, 'node_modules'), 'dir');
    const out = install('--memory-max', '1G');
    expect(out).toMatch(/staging root: not creating the edgevolve user/);
    for (const file of ['dist/edgevolve.mjs', 'dist/bench-child.mjs', 'dist/fixtures/models/mnist-cnn.onnx', 'dist/fixtures/data/mnist-test/input.npy', 'config/default.yaml']) {
      expect(existsSync(join(app, file)), file).toBe(true);
    }
    expect(existsSync(join(app, 'src'))).toBe(false);
    expect(execFileSync(process.execPath, [join(app, 'dist/edgevolve.mjs'), '--version'], { encoding: 'utf8' }).trim()).toMatch(/^\d+\.\d+\.\d+$/);
    expect(await readlink(join(tmp.dir, 'usr/local/bin/edgevolve'))).toBe('/opt/edgevolve/dist/edgevolve.mjs');
    const unit = await readFile(join(tmp.dir, 'etc/systemd/system/edgevolve.service'), 'utf8');
    expect(unit).toContain(`ExecStart=${realpathSync(execFileSync('bash', ['-c', 'command -v node'], { encoding: 'utf8' }).trim())} --max-semi-space-size=2 /opt/edgevolve/dist/edgevolve.mjs run`);
    expect(await readFile(join(tmp.dir, 'etc/systemd/system/edgevolve.service.d/memory.conf'), 'utf8')).toBe('[Service]\nMemoryMax=1G\n');
    const config = join(tmp.dir, 'etc/edgevolve/config.yaml');
    expect(await readFile(config, 'utf8')).toMatch(/^stateDir: \/var\/lib\/edgevolve$/m);
    // Renamed into place with its mode: no temp file left, never world-readable (tokens and credentials go here).
    expect(statSync(config).mode & 0o777).toBe(0o640);
    expect(await readdir(join(tmp.dir, 'etc/edgevolve'))).toEqual(['config.yaml']);

    const firstRun = await filesUnder(tmp.dir);
    await writeFile(config, 'stateDir: /data/edgevolve\n');
    expect(install('--memory-max', '1G')).toMatch(/kept the existing .*config\.yaml/);
    expect(await readFile(config, 'utf8')).toBe('stateDir: /data/edgevolve\n');
    // Idempotent: the second run leaves every other file byte for byte as the first did.
    const secondRun = await filesUnder(tmp.dir);
    delete firstRun['etc/edgevolve/config.yaml'];
    delete secondRun['etc/edgevolve/config.yaml'];
    expect(secondRun).toEqual(firstRun);
    expect(existsSync(join(tmp.dir, 'opt/edgevolve.new'))).toBe(false);
    // --skip-npm on an upgrade carries the installed node_modules over.
    expect(existsSync(join(app, 'node_modules'))).toBe(true);

    await mkdir(join(tmp.dir, 'var/lib/edgevolve'), { recursive: true });
    await writeFile(join(tmp.dir, 'var/lib/edgevolve/state.db'), 'state');
    install('--uninstall');
    // Everything it installed is gone (the unit, its drop-in, the application, the command); config and state stay.
    expect(Object.keys(await filesUnder(tmp.dir)).sort()).toEqual(['etc/edgevolve/config.yaml', 'var/lib/edgevolve/state.db']);
    expect(existsSync(join(tmp.dir, 'etc/systemd/system/edgevolve.service.d'))).toBe(false);
    // A second uninstall finds nothing to do and succeeds.
    install('--uninstall');
    install('--uninstall', '--purge');
    expect(await filesUnder(tmp.dir)).toEqual({});
    expect(existsSync(join(tmp.dir, 'etc/edgevolve'))).toBe(false);
    expect(existsSync(join(tmp.dir, 'var/lib/edgevolve'))).toBe(false);
  });

  it('--dry-run prints every step and changes nothing', async () => {
    const out = install('--dry-run');
    expect(out).toMatch(/^\+ \(cd .* && node_modules\/\.bin\/tsx scripts\/build\.ts --outdir .*\/opt\/edgevolve\.new\/dist\)$/m);
    expect(out).toMatch(/^\+ cp -R .*\/config /m);
    expect(out).toMatch(/^\+ write .*etc\/edgevolve\/config\.yaml$/m);
    expect(out).toMatch(/^\+ read service\.memoryMax from .*etc\/edgevolve\/config\.yaml$/m);
    expect(await readdir(tmp.dir)).toEqual([]);
  });

  it('refuses a --dist directory that holds no bundle, and leaves nothing behind', () => {
    const result = spawnSync('bash', ['scripts/install.sh', '--prefix', tmp.dir, '--skip-npm', '--dist', tmp.dir], { encoding: 'utf8' });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/is not a bundle \(no edgevolve\.mjs\)/);
    expect(existsSync(join(tmp.dir, 'opt/edgevolve'))).toBe(false);
  });

  describe('MemoryMax from service.memoryMax', () => {
    // One bundle for every run below (--dist): building it is most of an install's time.
    let dist: { dir: string; cleanup: () => Promise<void> };
    beforeAll(async () => {
      dist = await makeTempDir('edgevolve-dist-');
      execFileSync(process.execPath, ['--import', 'tsx', 'scripts/build.ts', '--outdir', dist.dir], { stdio: 'ignore' });
    });
    afterAll(() => dist.cleanup());

    const dropIn = (): string => join(tmp.dir, 'etc/systemd/system/edgevolve.service.d/memory.conf');
    const writeConfig = async (text: string): Promise<void> => {
      await mkdir(join(tmp.dir, 'etc/edgevolve'), { recursive: true });
      await writeFile(join(tmp.dir, 'etc/edgevolve/config.yaml'), text);
    };
    const run = (...args: string[]) => spawnSync('bash', ['scripts/install.sh', '--prefix', tmp.dir, '--skip-npm', '--dist', dist.dir, ...args], { encoding: 'utf8' });

    it('writes the drop-in from the config, rewrites it after an edit, --memory-max overrides, removing the key removes it, an invalid value fails naming the key', async () => {
      await mkdir(join(tmp.dir, 'opt/edgevolve'), { recursive: true });
      await symlink(join(REPO, 'node_modules'), join(tmp.dir, 'opt/edgevolve/node_modules'), 'dir');
      await writeConfig('daemon:\n  seedFixtures: true\nservice:\n  memoryMax: 512M\n');
      expect(run().stdout).toMatch(/MemoryMax=512M \(service\.memoryMax in .*config\.yaml\)/);
      expect(await readFile(dropIn(), 'utf8')).toBe('[Service]\nMemoryMax=512M\n');

      // The operator edits the config and runs the installer again.
      await writeConfig('service: { memoryMax: 60% }\n');
      run();
      expect(await readFile(dropIn(), 'utf8')).toBe('[Service]\nMemoryMax=60%\n');

      expect(run('--memory-max', '1.5G').stdout).toMatch(/MemoryMax=1\.5G \(--memory-max\)/);
      expect(await readFile(dropIn(), 'utf8')).toBe('[Service]\nMemoryMax=1.5G\n');

      await writeConfig('service:\n  memoryMax: lots\n');
      const invalid = run();
      expect(invalid.status).toBe(1);
      expect(invalid.stderr).toMatch(/service\.memoryMax: not a systemd MemoryMax= value/);
      expect(invalid.stderr).toMatch(/cannot read service\.memoryMax/);
      // The unit keeps the limit it had.
      expect(await readFile(dropIn(), 'utf8')).toBe('[Service]\nMemoryMax=1.5G\n');

      await writeConfig('stateDir: /var/lib/edgevolve\n');
      expect(run().stdout).toMatch(/MemoryMax: the unit's own \(service\.memoryMax unset\)/);
      expect(existsSync(join(tmp.dir, 'etc/systemd/system/edgevolve.service.d'))).toBe(false);
    });

    it('refuses a --memory-max systemd would not take, with exit code 2, before touching anything', async () => {
      const result = run('--memory-max', '1GB');
      expect(result.status).toBe(2);
      expect(result.stderr).toMatch(/--memory-max 1GB: not a systemd MemoryMax= value/);
      expect(await readdir(tmp.dir)).toEqual([]);
    });
  });

  it('checks Node against package.json engines (>=20.18.1 <21 || >=22) before touching anything', async () => {
    const engines = (JSON.parse(readFileSync('package.json', 'utf8')) as { engines: { node: string } }).engines.node;
    expect(engines).toBe('>=20.18.1 <21 || >=22');
    // A stand-in `node` first on PATH that only reports a version: the installer reads it with `node -p`.
    const bin = join(tmp.dir, 'fake-bin');
    await mkdir(bin);
    const withNode = (version: string) => {
      writeFileSync(join(bin, 'node'), `#!/bin/sh\necho ${version}\n`, { mode: 0o755 });
      return spawnSync('bash', ['scripts/install.sh', '--prefix', join(tmp.dir, 'root'), '--skip-npm', '--dry-run'], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` } });
    };
    for (const [version, message] of [
      ['18.19.0', /Node\.js 18\.19\.0 is too old; edgevolve needs 20\.18\.1 or later/],
      ['20.18.0', /Node\.js 20\.18\.0 is too old; edgevolve needs 20\.18\.1 or later/],
      ['21.7.3', /Node\.js 21\.7\.3 is not supported/],
      ['v20', /could not read the Node\.js version/],
    ] as const) {
      const result = withNode(version);
      expect(result.stderr, version).toMatch(message);
      expect(result.status, version).toBe(1);
    }
    for (const version of ['20.18.1', '22.0.0']) expect(withNode(version).stdout, version).toContain(`Node.js ${version} at `);
    expect(existsSync(join(tmp.dir, 'root'))).toBe(false);
  });

  // useradd/usermod --prefix change a staging root's own account files (a board image's root file system); they need root.
  describe.runIf(process.getuid?.() === 0)('the edgevolve user and its device groups, in a root with its own account files', () => {
    /** Debian-like account files holding the given groups besides root, plus a stand-in bundle (--memory-max keeps the installer from running it). */
    const prepare = async (groups: readonly string[]): Promise<string> => {
      const etc = join(tmp.dir, 'etc');
      await mkdir(etc, { recursive: true });
      await writeFile(join(etc, 'passwd'), 'root:x:0:0:root:/root:/bin/bash\n');
      await writeFile(join(etc, 'group'), ['root:x:0:', ...groups.map((g, i) => `${g}:x:${40 + i}:`)].join('\n') + '\n');
      await writeFile(join(etc, 'shadow'), 'root:*:19000:0:99999:7:::\n', { mode: 0o640 });
      await writeFile(join(etc, 'gshadow'), ['root:*::', ...groups.map((g) => `${g}:!::`)].join('\n') + '\n', { mode: 0o640 });
      const dist = join(tmp.dir, 'stand-in-dist');
      await mkdir(dist);
      await writeFile(join(dist, 'edgevolve.mjs'), '// stand-in\n');
      return dist;
    };
    const groupLine = async (name: string): Promise<string | undefined> => (await readFile(join(tmp.dir, 'etc/group'), 'utf8')).split('\n').find((line) => line.startsWith(`${name}:`));

    it('without a render group: the user joins video only and the install succeeds; a second run changes no account file; --purge removes the user and its memberships', async () => {
      const dist = await prepare(['video', 'users']);
      const out = install('--dist', dist, '--memory-max', '1G');
      expect(out).toMatch(/no group render on this system: skipped/);
      expect(out).toMatch(/user edgevolve joined group video/);
      expect(await readFile(join(tmp.dir, 'etc/passwd'), 'utf8')).toMatch(/^edgevolve:x:\d+:\d+::\/var\/lib\/edgevolve:\/usr\/sbin\/nologin$/m);
      expect(await groupLine('video')).toBe('video:x:40:edgevolve');
      expect(await groupLine('users')).toBe('users:x:41:');
      expect(await groupLine('render')).toBeUndefined();
      // The config is readable by the staging root's edgevolve group, by number (this system has no such group).
      const gid = Number((await groupLine('edgevolve'))?.split(':')[2]);
      expect(statSync(join(tmp.dir, 'etc/edgevolve/config.yaml')).gid).toBe(gid);

      const accounts = async () => Object.fromEntries(await Promise.all(['passwd', 'group', 'shadow', 'gshadow'].map(async (f) => [f, await readFile(join(tmp.dir, 'etc', f), 'utf8')] as const)));
      const first = await accounts();
      const again = install('--dist', dist, '--memory-max', '1G');
      expect(again).toMatch(/user edgevolve exists/);
      expect(again).not.toMatch(/joined group/);
      expect(await accounts()).toEqual(first);

      install('--uninstall');
      expect(await groupLine('video')).toBe('video:x:40:edgevolve');
      install('--uninstall', '--purge');
      expect(await readFile(join(tmp.dir, 'etc/passwd'), 'utf8')).toBe('root:x:0:0:root:/root:/bin/bash\n');
      expect(await groupLine('video')).toBe('video:x:40:');
      expect(await groupLine('edgevolve')).toBeUndefined();
    });

    it('with video and render: the user joins both', async () => {
      const dist = await prepare(['video', 'render']);
      install('--dist', dist, '--memory-max', '1G');
      expect(await groupLine('video')).toBe('video:x:40:edgevolve');
      expect(await groupLine('render')).toBe('render:x:41:edgevolve');
    });
  });

  it('rejects an unknown option with exit code 2', () => {
    const result = spawnSync('bash', ['scripts/install.sh', '--prefix', tmp.dir, '--frobnicate'], { encoding: 'utf8' });
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/unknown option --frobnicate/);
  });
});

describe('Dockerfile.arm64', () => {
  const text = readFileSync('Dockerfile.arm64', 'utf8');
  it('is multi-stage on node:20-bookworm-slim for arm64, runs the bundle with production dependencies only, non-root, state in a volume, healthcheck on readiness', () => {
    expect(text.match(/^FROM --platform=linux\/arm64 node:20-bookworm-slim/gm)).toHaveLength(2);
    expect(text).toMatch(/scripts\/build\.ts --outdir dist/);
    expect(text).toMatch(/npm prune --omit=dev/);
    expect(text).toMatch(/^COPY --from=build \/opt\/edgevolve\/dist \.\/dist$/m);
    const runtimeStage = text.slice(text.lastIndexOf('\nFROM '));
    expect(runtimeStage).not.toMatch(/^COPY (--from=build \S+\/)?src /m);
    expect(text).toMatch(/^ENTRYPOINT \["node", "--max-semi-space-size=2", "dist\/edgevolve\.mjs"\]$/m);
    expect(text).toMatch(/^USER edgevolve$/m);
    expect(text.indexOf('USER edgevolve')).toBeLessThan(text.indexOf('ENTRYPOINT'));
    expect(text).toMatch(/^VOLUME \["\/var\/lib\/edgevolve"\]$/m);
    expect(text).toMatch(/^HEALTHCHECK .*\n.*\/v2\/health\/ready/m);
    expect(text).toMatch(/^CMD \["run"\]$/m);
  });
  // Debian ships no hadolint (apt-cache policy hadolint: nothing), so this runs only where one is installed.
  it.runIf(spawnSync('hadolint', ['--version']).status === 0)('passes hadolint', () => {
    const result = spawnSync('hadolint', ['Dockerfile.arm64'], { encoding: 'utf8' });
    expect(result.stdout).toBe('');
    expect(result.status).toBe(0);
  });

  it('copies only files that exist in the checkout', () => {
    const sources = [...text.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(/\s+/));
    expect(sources.length).toBeGreaterThan(3);
    for (const source of sources) expect(existsSync(source), source).toBe(true);
  });
});
