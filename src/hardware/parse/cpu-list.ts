/** The kernel's CPU list syntax (`0-3,6`, `4 5`) as used by cpufreq and /sys/devices/system/cpu/online. */
export function parseCpuList(text: string): number[] {
  const cpus: number[] = [];
  for (const token of text.trim().split(/[\s,]+/)) {
    if (token.length === 0) continue;
    const range = /^(\d+)(?:-(\d+))?$/.exec(token);
    if (range === null) continue;
    const start = Number(range[1]);
    const end = range[2] === undefined ? start : Number(range[2]);
    for (let cpu = start; cpu <= end; cpu++) cpus.push(cpu);
  }
  return cpus;
}
