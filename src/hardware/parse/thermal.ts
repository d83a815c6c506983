/**
 * Thermal zones (/sys/class/thermal/thermal_zoneN): type, temperature and trip points,
 * all in millidegrees Celsius in the files and degrees here. A zone at or above a
 * `passive` trip is being throttled by the kernel; at `critical` it shuts down.
 */
export interface ThermalZoneFiles {
  readonly name: string;
  readonly type?: string | undefined;
  readonly temp?: string | undefined;
  /** trip_point_K_type and trip_point_K_temp, by K. */
  readonly trips: readonly { readonly type?: string | undefined; readonly temp?: string | undefined }[];
}

export interface TripPoint {
  readonly type: string;
  readonly celsius: number;
}

export interface ThermalZone {
  readonly name: string;
  readonly type: string;
  /** Null when the zone cannot be read now (disabled sensor, EINVAL from the driver); null, not undefined, so JSON keeps it. */
  readonly celsius: number | null;
  readonly trips: readonly TripPoint[];
  /** Trip types at or below the current temperature, e.g. ['passive']. */
  readonly reached: readonly string[];
}

export function parseThermalZone(files: ThermalZoneFiles): ThermalZone {
  const celsius = milliCelsius(files.temp);
  const trips: TripPoint[] = [];
  for (const trip of files.trips) {
    const t = milliCelsius(trip.temp);
    const type = trip.type?.trim();
    // Drivers park unused trips at absurd values (e.g. 0 or 2^31 m°C): not a real threshold.
    if (t === undefined || type === undefined || type.length === 0 || t <= 0 || t > 500) continue;
    trips.push({ type, celsius: t });
  }
  const reached = celsius === undefined ? [] : [...new Set(trips.filter((t) => celsius >= t.celsius).map((t) => t.type))];
  return { name: files.name, type: files.type?.trim() || files.name, celsius: celsius ?? null, trips, reached };
}

function milliCelsius(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const trimmed = text.trim();
  if (!/^-?\d+$/.test(trimmed)) return undefined;
  return Number(trimmed) / 1000;
}
