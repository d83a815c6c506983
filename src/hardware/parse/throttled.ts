/**
 * The Raspberry Pi firmware's throttling word, printed by `vcgencmd get_throttled` as
 * `throttled=0x50005`. Bits 0-3 are the state now, bits 16-19 whether it happened
 * since boot. https://www.raspberrypi.com/documentation/computers/os.html#get_throttled
 */
export interface PiThrottleState {
  readonly raw: number;
  readonly underVoltageNow: boolean;
  readonly frequencyCappedNow: boolean;
  readonly throttledNow: boolean;
  readonly softTempLimitNow: boolean;
  readonly underVoltageOccurred: boolean;
  readonly frequencyCappedOccurred: boolean;
  readonly throttledOccurred: boolean;
  readonly softTempLimitOccurred: boolean;
}

/** Undefined when the output is not a `throttled=0x…` line (old firmware, no permission on /dev/vchiq). */
export function parseGetThrottled(stdout: string): PiThrottleState | undefined {
  const match = /throttled=(0x[0-9a-fA-F]+|\d+)/.exec(stdout);
  if (match === null) return undefined;
  const raw = Number(match[1]);
  const bit = (n: number): boolean => (raw & (1 << n)) !== 0;
  return {
    raw,
    underVoltageNow: bit(0),
    frequencyCappedNow: bit(1),
    throttledNow: bit(2),
    softTempLimitNow: bit(3),
    underVoltageOccurred: bit(16),
    frequencyCappedOccurred: bit(17),
    throttledOccurred: bit(18),
    softTempLimitOccurred: bit(19),
  };
}

/** Human words for the set bits: ['under-voltage now', 'throttled since boot']. */
export function describeThrottle(state: PiThrottleState): string[] {
  const words: [boolean, string][] = [
    [state.underVoltageNow, 'under-voltage now'],
    [state.frequencyCappedNow, 'frequency capped now'],
    [state.throttledNow, 'throttled now'],
    [state.softTempLimitNow, 'soft temperature limit now'],
    [state.underVoltageOccurred, 'under-voltage since boot'],
    [state.frequencyCappedOccurred, 'frequency capped since boot'],
    [state.throttledOccurred, 'throttled since boot'],
    [state.softTempLimitOccurred, 'soft temperature limit since boot'],
  ];
  return words.filter(([set]) => set).map(([, word]) => word);
}
