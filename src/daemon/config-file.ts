/**
 * Which configuration file `edgevolve run` reads: the one given with --config, else
 * /etc/edgevolve/config.yaml when it exists, else none (defaults and EDGEVOLVE_*).
 */
import { existsSync } from 'node:fs';

export const SYSTEM_CONFIG_FILE = '/etc/edgevolve/config.yaml';

export function resolveConfigFile(flag: string | undefined, exists: (path: string) => boolean = existsSync): string | undefined {
  if (flag !== undefined) return flag;
  return exists(SYSTEM_CONFIG_FILE) ? SYSTEM_CONFIG_FILE : undefined;
}
