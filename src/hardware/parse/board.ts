/**
 * What board this is: the device tree's `model` and `compatible` on ARM boards
 * (NUL-terminated strings), /etc/nv_tegra_release on Jetsons, DMI on x86. Pure parsers;
 * edge-impulse-linux-cli reads /proc/device-tree the same way.
 */

export type BoardFamily = 'raspberry-pi' | 'jetson' | 'rockchip' | 'x86' | 'other';

/** /proc/device-tree/model: one NUL-terminated string. */
export function parseDeviceTreeModel(raw: string): string | undefined {
  const model = raw.split('\0')[0]?.trim();
  return model === undefined || model.length === 0 ? undefined : model;
}

/** /proc/device-tree/compatible: NUL-separated, most specific first ("raspberrypi,5-model-b", "brcm,bcm2712"). */
export function parseDeviceTreeCompatible(raw: string): string[] {
  return raw.split('\0').map((s) => s.trim()).filter((s) => s.length > 0);
}

export interface JetsonRelease {
  /** L4T major release, e.g. 35 for "# R35 (release)". */
  readonly l4tMajor: number;
  /** The REVISION field, e.g. "4.1", so L4T 35.4.1. */
  readonly revision: string;
  readonly l4t: string;
  readonly board: string | null;
  readonly date: string | null;
}

/** /etc/nv_tegra_release: "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, DATE: …". */
export function parseJetsonRelease(text: string): JetsonRelease | undefined {
  const head = /^#\s*R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)/m.exec(text);
  if (head === null) return undefined;
  const field = (name: string): string | undefined => new RegExp(`${name}:\\s*([^,\\n]+)`).exec(text)?.[1]?.trim();
  const l4tMajor = Number(head[1]);
  const revision = head[2] ?? '0';
  return { l4tMajor, revision, l4t: `${l4tMajor}.${revision}`, board: field('BOARD') ?? null, date: field('DATE') ?? null };
}

export interface DmiFiles {
  readonly sysVendor?: string | undefined;
  readonly productName?: string | undefined;
  readonly boardVendor?: string | undefined;
  readonly boardName?: string | undefined;
}

/** "Dell Inc. OptiPlex 7090" from /sys/class/dmi/id; undefined when firmware left the fields empty or as placeholders. */
export function describeDmi(files: DmiFiles): string | undefined {
  const clean = (s: string | undefined): string | undefined => {
    const t = s?.trim();
    // OEMs ship these literally; they name nothing.
    if (t === undefined || t.length === 0 || /^(to be filled by o\.?e\.?m\.?|default string|system product name|not specified|none)$/i.test(t)) return undefined;
    return t;
  };
  const vendor = clean(files.sysVendor) ?? clean(files.boardVendor);
  const product = clean(files.productName) ?? clean(files.boardName);
  if (product === undefined) return vendor;
  return vendor === undefined || product.startsWith(vendor) ? product : `${vendor} ${product}`;
}

/** The family from the strings the board gave; order matters (a Jetson's compatible also says "nvidia,tegra"). */
export function boardFamilyOf(input: { model?: string | undefined; compatible: readonly string[]; jetson: boolean; isa: string }): BoardFamily {
  const text = `${input.model ?? ''} ${input.compatible.join(' ')}`.toLowerCase();
  if (input.jetson || text.includes('jetson') || text.includes('nvidia,tegra')) return 'jetson';
  if (text.includes('raspberry pi') || text.includes('raspberrypi,')) return 'raspberry-pi';
  if (text.includes('rockchip,')) return 'rockchip';
  if (input.isa === 'x86') return 'x86';
  return 'other';
}

/** The SoC from the device tree's least specific compatible entry ("rockchip,rk3588" → "rk3588"). */
export function socOf(compatible: readonly string[]): string | undefined {
  const last = compatible.at(-1);
  if (last === undefined) return undefined;
  const comma = last.indexOf(',');
  return comma < 0 ? last : last.slice(comma + 1);
}
