/**
 * Accelerators from device nodes, the way vendor runtimes find them: the Jetson GPU
 * and DLAs (/dev/nvhost-*), Rockchip's NPU (/dev/rknpu, or a DRM render node whose
 * driver is rknpu), Coral PCIe Edge TPUs (/dev/apex_N), Hailo (/dev/hailoN), a Mali
 * GPU (/dev/mali0), discrete NVIDIA GPUs (/dev/nvidiaN) and DRI render nodes.
 */

export type AcceleratorKind =
  | 'nvidia-tegra-gpu'
  | 'nvidia-dla'
  | 'nvidia-gpu'
  | 'rockchip-npu'
  | 'google-edgetpu'
  | 'hailo'
  | 'arm-mali-gpu'
  | 'gpu-render-node';

export interface Accelerator {
  readonly kind: AcceleratorKind;
  /** The device node(s) that showed it, e.g. "/dev/nvhost-ctrl-nvdla0". */
  readonly devices: readonly string[];
  /** The kernel driver, when the node says (DRI render nodes). */
  readonly driver?: string;
}

export interface DeviceListing {
  /** Entry names of /dev. */
  readonly dev: readonly string[];
  /** Entry names of /dev/dri. */
  readonly dri: readonly string[];
  /** Driver name of each render node (from /sys/class/drm/renderDN/device/uevent DRIVER=). */
  readonly renderDrivers: Readonly<Record<string, string>>;
}

export function parseAccelerators(listing: DeviceListing): Accelerator[] {
  const found: Accelerator[] = [];
  const dev = listing.dev;
  const add = (kind: AcceleratorKind, names: readonly string[], driver?: string): void => {
    if (names.length === 0) return;
    found.push(driver === undefined ? { kind, devices: names.map((n) => `/dev/${n}`) } : { kind, devices: names.map((n) => `/dev/${n}`), driver });
  };
  add('nvidia-tegra-gpu', dev.filter((n) => n === 'nvhost-gpu' || n === 'nvhost-ctrl-gpu'));
  // One control node per DLA engine (nvhost-ctrl-nvdla0, nvhost-ctrl-nvdla1).
  add('nvidia-dla', dev.filter((n) => /^nvhost-ctrl-nvdla\d+$/.test(n)));
  add('nvidia-gpu', dev.filter((n) => /^nvidia\d+$/.test(n)));
  const rknpuNodes = listing.dri.filter((n) => /^renderD\d+$/.test(n) && /^rknpu$/i.test(listing.renderDrivers[n] ?? ''));
  add('rockchip-npu', [...dev.filter((n) => n === 'rknpu'), ...rknpuNodes.map((n) => `dri/${n}`)]);
  add('google-edgetpu', dev.filter((n) => /^apex_\d+$/.test(n)));
  add('hailo', dev.filter((n) => /^hailo\d+$/.test(n)));
  add('arm-mali-gpu', dev.filter((n) => /^mali\d+$/.test(n)));
  for (const node of listing.dri.filter((n) => /^renderD\d+$/.test(n) && !rknpuNodes.includes(n))) {
    add('gpu-render-node', [`dri/${node}`], listing.renderDrivers[node]);
  }
  return found;
}

/** The DRIVER= line of a sysfs uevent file. */
export function parseUeventDriver(uevent: string): string | undefined {
  return /^DRIVER=(.+)$/m.exec(uevent)?.[1]?.trim();
}
