/**
 * A recorded machine from test/fixtures/hosts/<board>/ behind the same host interfaces
 * the probes use in production: files through nodeFiles(root), commands and
 * systeminformation replayed from commands.json and system.json. Clock and disk are
 * fixed so a profile of a recording is reproducible.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CommandResult } from '../../../src/host/commands.ts';
import { nodeFiles } from '../../../src/host/files.ts';
import type { Clock } from '../../../src/host/index.ts';
import type { MemoryInfo, OsInfo } from '../../../src/host/system-info.ts';
import type { ProbeHost } from '../../../src/hardware/index.ts';

export const HOSTS_DIR = fileURLToPath(new URL('../../fixtures/hosts/', import.meta.url));
export const BOARDS = ['x86-epyc-vm', 'rpi4', 'rpi5', 'jetson-orin-nano', 'rock5b-rk3588'] as const;
export type Board = (typeof BOARDS)[number];

export function fixtureHost(board: Board, overrides: { freeBytes?: number } = {}): ProbeHost & Clock & { commandsRun: string[] } {
  const root = join(HOSTS_DIR, board);
  const commands = JSON.parse(readFileSync(join(root, 'commands.json'), 'utf8')) as Record<string, CommandResult>;
  const system = JSON.parse(readFileSync(join(root, 'system.json'), 'utf8')) as { memory: MemoryInfo; os: OsInfo };
  const commandsRun: string[] = [];
  return {
    ...nodeFiles(root),
    commandsRun,
    runCommand: (file, args) => {
      const line = [file, ...args].join(' ');
      commandsRun.push(line);
      return Promise.resolve(commands[line]);
    },
    memory: () => Promise.resolve(system.memory),
    os: () => Promise.resolve(system.os),
    freeBytes: () => Promise.resolve(overrides.freeBytes ?? 32 * 1024 ** 3),
    now: () => Date.parse('2026-11-28T00:00:00Z'),
    sleep: () => Promise.resolve(),
  };
}
