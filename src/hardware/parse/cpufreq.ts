/**
 * One cpufreq policy (/sys/devices/system/cpu/cpufreq/policyN): the CPUs that share a
 * clock, which on big.LITTLE boards is exactly a cluster. Frequencies are kHz in the
 * files and Hz here.
 */
import { parseCpuList } from './cpu-list.ts';

export interface CpufreqPolicyFiles {
  readonly name: string;
  readonly relatedCpus?: string | undefined;
  readonly affectedCpus?: string | undefined;
  readonly cpuinfoMinFreq?: string | undefined;
  readonly cpuinfoMaxFreq?: string | undefined;
  readonly scalingMinFreq?: string | undefined;
  readonly scalingMaxFreq?: string | undefined;
  readonly scalingCurFreq?: string | undefined;
  readonly scalingGovernor?: string | undefined;
}

export interface CpufreqPolicy {
  readonly name: string;
  readonly cpus: readonly number[];
  readonly minHz: number | undefined;
  readonly maxHz: number | undefined;
  readonly curHz: number | undefined;
  /** The ceiling the governor may use now (nvpmodel, thermal or a user can lower it below maxHz). */
  readonly scalingMaxHz: number | undefined;
  readonly governor: string | undefined;
}

export function parseCpufreqPolicy(files: CpufreqPolicyFiles): CpufreqPolicy {
  return {
    name: files.name,
    cpus: parseCpuList(files.relatedCpus ?? files.affectedCpus ?? ''),
    minHz: khzToHz(files.cpuinfoMinFreq),
    maxHz: khzToHz(files.cpuinfoMaxFreq),
    curHz: khzToHz(files.scalingCurFreq),
    scalingMaxHz: khzToHz(files.scalingMaxFreq),
    governor: files.scalingGovernor?.trim() || undefined,
  };
}

function khzToHz(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const trimmed = text.trim();
  if (!/^\d+$/.test(trimmed)) return undefined;
  return Number(trimmed) * 1000;
}
