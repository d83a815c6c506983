/**
 * /proc/cpuinfo, both dialects: x86 (`model name`, `flags`) and arm64 (`Features`,
 * `CPU implementer`, `CPU part`, plus the Raspberry Pi's trailing `Revision`/`Model`
 * block). Pure: the text in, the facts out; recordings in test/fixtures/hosts/.
 */
import { armCoreName } from './arm-cores.ts';

export interface CpuinfoProcessor {
  readonly index: number;
  /** x86 `model name`, or the ARM core name from implementer and part ("Cortex-A76"). */
  readonly coreName: string;
  /** ARM MIDR implementer and part; undefined on x86. */
  readonly implementer: number | undefined;
  readonly part: number | undefined;
  /** `flags` on x86, `Features` on ARM, as the kernel spells them. */
  readonly features: readonly string[];
}

export interface Cpuinfo {
  readonly isa: 'x86' | 'arm' | 'unknown';
  readonly processors: readonly CpuinfoProcessor[];
  /** One name for the package: x86 `model name`, or the distinct ARM core names joined ("4x Cortex-A55 + 4x Cortex-A76"). */
  readonly modelName: string;
  readonly vendor: string | undefined;
  /** Board facts some ARM kernels append (Raspberry Pi): `Hardware`, `Revision`, `Model`. */
  readonly hardware: string | undefined;
  readonly revision: string | undefined;
  readonly boardModel: string | undefined;
}

export function parseCpuinfo(text: string): Cpuinfo {
  const blocks = text.split(/\n\s*\n/);
  const processors: CpuinfoProcessor[] = [];
  const global = new Map<string, string>();
  let vendor: string | undefined;
  let sawX86 = false;
  let sawArm = false;
  for (const block of blocks) {
    const fields = parseBlock(block);
    const index = fields.get('processor');
    if (index === undefined || !/^\d+$/.test(index)) {
      // Blocks without a numeric `processor` carry board facts (Pi) or old ARM globals.
      for (const [k, v] of fields) global.set(k, v);
      continue;
    }
    const implementer = parseHex(fields.get('CPU implementer'));
    const part = parseHex(fields.get('CPU part'));
    const flags = fields.get('flags');
    const armFeatures = fields.get('Features');
    if (flags !== undefined) sawX86 = true;
    if (armFeatures !== undefined || implementer !== undefined) sawArm = true;
    vendor ??= fields.get('vendor_id');
    const coreName =
      fields.get('model name') ??
      (implementer !== undefined && part !== undefined ? armCoreName(implementer, part) : (fields.get('cpu model') ?? 'unknown'));
    processors.push({
      index: Number(index),
      coreName,
      implementer,
      part,
      features: splitWords(flags ?? armFeatures ?? ''),
    });
  }
  const isa = sawX86 ? 'x86' : sawArm ? 'arm' : 'unknown';
  return {
    isa,
    processors,
    modelName: isa === 'x86' ? (processors[0]?.coreName ?? 'unknown') : describeCoreMix(processors),
    vendor,
    hardware: global.get('Hardware'),
    revision: global.get('Revision'),
    boardModel: global.get('Model'),
  };
}

/** "4x Cortex-A55 + 4x Cortex-A76", in order of first appearance. */
function describeCoreMix(processors: readonly CpuinfoProcessor[]): string {
  const counts = new Map<string, number>();
  for (const p of processors) counts.set(p.coreName, (counts.get(p.coreName) ?? 0) + 1);
  if (counts.size === 0) return 'unknown';
  return [...counts].map(([name, n]) => `${n}x ${name}`).join(' + ');
}

function parseBlock(block: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of block.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const key = line.slice(0, colon).trim();
    if (key.length > 0) fields.set(key, line.slice(colon + 1).trim());
  }
  return fields;
}

function parseHex(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number.parseInt(value, 16);
  return Number.isFinite(n) ? n : undefined;
}

function splitWords(s: string): string[] {
  return s.split(/\s+/).filter((w) => w.length > 0);
}
