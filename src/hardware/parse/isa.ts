/**
 * The instruction-set features that decide whether int8 and fp16 pay off, from the
 * kernel's feature words (x86 `flags`, arm64 `Features`). onnxruntime's MLAS picks
 * its int8 GEMM kernels on exactly these: VNNI/AMX on x86, dotprod/i8mm on ARM.
 */
export interface IsaFeatures {
  /** ARM Advanced SIMD (`asimd` on arm64, `neon` on 32-bit kernels). */
  readonly neon: boolean;
  /** ARMv8.2 SDOT/UDOT (`asimddp`): int8 dot products, ~2-4x int8 GEMM over plain NEON. */
  readonly dotprod: boolean;
  /** ARMv8.6 int8 matrix multiply (`i8mm`): SMMLA/UMMLA. */
  readonly i8mm: boolean;
  /** fp16 arithmetic (`fphp` and `asimdhp` on ARM; `avx512_fp16` on x86), not just conversion. */
  readonly fp16Arithmetic: boolean;
  readonly sve: boolean;
  readonly sve2: boolean;
  readonly bf16: boolean;
  readonly avx2: boolean;
  readonly fma: boolean;
  readonly avx512f: boolean;
  readonly avx512vnni: boolean;
  /** VEX-encoded VNNI (Alder Lake and later, Zen 5) for int8 without AVX-512. */
  readonly avxVnni: boolean;
  /** Advanced Matrix Extensions int8 tiles (Sapphire Rapids and later). */
  readonly amxInt8: boolean;
}

export function isaFeaturesOf(words: readonly string[]): IsaFeatures {
  const has = new Set(words);
  return {
    neon: has.has('asimd') || has.has('neon'),
    dotprod: has.has('asimddp'),
    i8mm: has.has('i8mm'),
    fp16Arithmetic: (has.has('fphp') && has.has('asimdhp')) || has.has('avx512_fp16'),
    sve: has.has('sve'),
    sve2: has.has('sve2'),
    bf16: has.has('bf16') || has.has('avx512_bf16') || has.has('amx_bf16'),
    avx2: has.has('avx2'),
    fma: has.has('fma'),
    avx512f: has.has('avx512f'),
    avx512vnni: has.has('avx512_vnni'),
    avxVnni: has.has('avx_vnni'),
    amxInt8: has.has('amx_int8'),
  };
}

/** The feature words present on every processor: a big.LITTLE system runs code on any core. */
export function commonFeatures(perProcessor: readonly (readonly string[])[]): string[] {
  const [first, ...rest] = perProcessor;
  if (first === undefined) return [];
  return first.filter((w) => rest.every((other) => other.includes(w)));
}

/** The short list a human reads: only the features that matter for inference. */
export function describeIsa(isa: IsaFeatures): string[] {
  const names: [keyof IsaFeatures, string][] = [
    ['neon', 'NEON'], ['dotprod', 'dotprod'], ['i8mm', 'i8mm'], ['fp16Arithmetic', 'fp16'], ['bf16', 'bf16'], ['sve', 'SVE'], ['sve2', 'SVE2'],
    ['avx2', 'AVX2'], ['fma', 'FMA'], ['avx512f', 'AVX-512F'], ['avx512vnni', 'AVX-512 VNNI'], ['avxVnni', 'AVX-VNNI'], ['amxInt8', 'AMX-INT8'],
  ];
  return names.filter(([key]) => isa[key]).map(([, label]) => label);
}
