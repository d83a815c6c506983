import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { EdgevolveError } from '../errors/index.ts';
import { configSchema, type Config } from './schema.ts';

export type ConfigSource = { file?: string; env?: NodeJS.ProcessEnv };

/**
 * Loads, validates and freezes the configuration. Every problem is reported at
 * once as `path: message`, naming the file it came from.
 */
export function loadConfig(source: ConfigSource = {}): Readonly<Config> {
  let raw: unknown = {};
  if (source.file !== undefined) {
    let text: string;
    try {
      text = readFileSync(source.file, 'utf8');
    } catch (err) {
      throw new EdgevolveError('E_CONFIG_INVALID', `cannot read config file ${source.file}: ${(err as Error).message}`, { cause: err });
    }
    try {
      raw = parseYaml(text) ?? {};
    } catch (err) {
      throw new EdgevolveError('E_CONFIG_INVALID', `${source.file}: not valid YAML: ${(err as Error).message}`, { cause: err });
    }
  }
  const env = source.env ?? {};
  return validateConfig(applyEnvOverrides(raw, env), source.file ?? '<defaults>', envOverridePaths(env));
}

/**
 * `fromEnv` maps a key path (`server.port`) to the environment variable that set it: a
 * problem under such a key names the variable too, since the file does not hold that value.
 */
export function validateConfig(raw: unknown, origin: string, fromEnv: ReadonlyMap<string, string> = new Map()): Readonly<Config> {
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map((issue: z.core.$ZodIssue) => {
      const path = issue.path.join('.');
      // An unknown key is reported on its parent; the variable is found by the key's own path.
      const paths = issue.code === 'unrecognized_keys' ? issue.keys.map((key) => (path === '' ? key : `${path}.${key}`)) : [path];
      const variable = paths.map((p) => envVariableFor(p, fromEnv)).find((v) => v !== undefined);
      return `${path || '(root)'}: ${issue.message}${variable === undefined ? '' : ` (set by ${variable})`}`;
    });
    throw new EdgevolveError('E_CONFIG_INVALID', `invalid configuration in ${origin}:\n  ${lines.join('\n  ')}`, {
      context: { origin, issues: lines },
    });
  }
  return deepFreeze(result.data);
}

/** The variable that set `path` or an object above it, if any. */
function envVariableFor(path: string, fromEnv: ReadonlyMap<string, string>): string | undefined {
  for (const [key, variable] of fromEnv) {
    if (path === key || path.startsWith(`${key}.`)) return variable;
  }
  return undefined;
}

/** Key path (`log.level`) to the EDGEVOLVE_ variable that overrides it. */
function envOverridePaths(env: NodeJS.ProcessEnv): Map<string, string> {
  const paths = new Map<string, string>();
  for (const [name, value] of Object.entries(env)) {
    if (isOverride(name, value)) paths.set(envKeys(name).join('.'), name);
  }
  return paths;
}

function isOverride(name: string, value: string | undefined): value is string {
  return name.startsWith('EDGEVOLVE_') && value !== undefined && name !== 'EDGEVOLVE_DEBUG';
}

function envKeys(name: string): string[] {
  return name
    .slice('EDGEVOLVE_'.length)
    .split('__')
    .map((part) => part.toLowerCase().replace(/_([a-z0-9])/g, (_m: string, c: string) => c.toUpperCase()));
}

/**
 * `EDGEVOLVE_LOG__LEVEL=debug` sets `log.level`: double underscore separates keys,
 * single words are camel-cased (`EDGEVOLVE_STATE_DIR` -> `stateDir`). Values are
 * parsed as JSON when they look like it, else kept as strings.
 */
export function applyEnvOverrides(raw: unknown, env: NodeJS.ProcessEnv): unknown {
  const base: Record<string, unknown> = typeof raw === 'object' && raw !== null ? structuredClone(raw as Record<string, unknown>) : {};
  for (const [name, value] of Object.entries(env)) {
    if (!isOverride(name, value)) continue;
    const keys = envKeys(name);
    let target = base;
    for (const key of keys.slice(0, -1)) {
      const next = target[key];
      target[key] = typeof next === 'object' && next !== null ? next : {};
      target = target[key] as Record<string, unknown>;
    }
    target[keys[keys.length - 1] as string] = parseEnvValue(value);
  }
  return base;
}

function parseEnvValue(value: string): unknown {
  if (/^(true|false|null|-?\d+(\.\d+)?|\[.*\]|\{.*\})$/s.test(value.trim())) {
    try {
      return JSON.parse(value) as unknown;
    } catch {
      return value;
    }
  }
  return value;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
