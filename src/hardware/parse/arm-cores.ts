/**
 * ARM core names from the MIDR fields /proc/cpuinfo prints (`CPU implementer`,
 * `CPU part`). The table covers the cores found on edge boards; unknown parts keep
 * their hex ids so the profile still distinguishes clusters.
 * Source: Linux arch/arm64/include/asm/cputype.h and ARM's Technical Reference Manuals.
 */

const IMPLEMENTERS: Readonly<Record<number, string>> = {
  0x41: 'ARM',
  0x42: 'Broadcom',
  0x46: 'Fujitsu',
  0x48: 'HiSilicon',
  0x4e: 'NVIDIA',
  0x51: 'Qualcomm',
  0x53: 'Samsung',
  0x61: 'Apple',
  0xc0: 'Ampere',
};

/** ARM Ltd (0x41) parts. */
const ARM_PARTS: Readonly<Record<number, string>> = {
  0xb76: 'ARM1176',
  0xc07: 'Cortex-A7',
  0xc09: 'Cortex-A9',
  0xc0f: 'Cortex-A15',
  0xd01: 'Cortex-A32',
  0xd02: 'Cortex-A34',
  0xd03: 'Cortex-A53',
  0xd04: 'Cortex-A35',
  0xd05: 'Cortex-A55',
  0xd06: 'Cortex-A65',
  0xd07: 'Cortex-A57',
  0xd08: 'Cortex-A72',
  0xd09: 'Cortex-A73',
  0xd0a: 'Cortex-A75',
  0xd0b: 'Cortex-A76',
  0xd0c: 'Neoverse-N1',
  0xd0d: 'Cortex-A77',
  0xd0e: 'Cortex-A76AE',
  0xd40: 'Neoverse-V1',
  0xd41: 'Cortex-A78',
  0xd42: 'Cortex-A78AE',
  0xd43: 'Cortex-A65AE',
  0xd44: 'Cortex-X1',
  0xd46: 'Cortex-A510',
  0xd47: 'Cortex-A710',
  0xd48: 'Cortex-X2',
  0xd49: 'Neoverse-N2',
  0xd4a: 'Neoverse-E1',
  0xd4b: 'Cortex-A78C',
  0xd4d: 'Cortex-A715',
  0xd4e: 'Cortex-X3',
  0xd4f: 'Neoverse-V2',
  0xd80: 'Cortex-A520',
  0xd81: 'Cortex-A720',
  0xd82: 'Cortex-X4',
  0xd85: 'Cortex-X925',
  0xd87: 'Cortex-A725',
};

const OTHER_PARTS: Readonly<Record<number, Readonly<Record<number, string>>>> = {
  0x4e: { 0x003: 'Denver2', 0x004: 'Carmel' },
  0x51: { 0x800: 'Kryo 2xx Gold', 0x801: 'Kryo 2xx Silver', 0x802: 'Kryo 3xx Gold', 0x803: 'Kryo 3xx Silver', 0x804: 'Kryo 4xx Gold', 0x805: 'Kryo 4xx Silver', 0xc00: 'Falkor', 0x001: 'Oryon' },
  0xc0: { 0xac3: 'Ampere-1', 0xac4: 'Ampere-1a' },
};

export function armImplementerName(implementer: number): string {
  return IMPLEMENTERS[implementer] ?? `implementer 0x${implementer.toString(16)}`;
}

/** "Cortex-A76", or "0x41:0xd99" for a part the table does not know. */
export function armCoreName(implementer: number, part: number): string {
  const name = implementer === 0x41 ? ARM_PARTS[part] : OTHER_PARTS[implementer]?.[part];
  return name ?? `0x${implementer.toString(16)}:0x${part.toString(16).padStart(3, '0')}`;
}
