/**
 * The `collect-samples` fleet command (payload schema in src/control/schemas.ts): the miner
 * keeps up to `count` live samples by `criterion`, then they are uploaded; the result says
 * how many were collected and uploaded, and where they went.
 */
import type { CommandHandler } from '../control/index.ts';
import { EdgevolveError } from '../errors/index.ts';
import type { DeviceCoevolution } from './device.ts';

/** The handler; `device` is undefined when coevolution is off, and the command then fails with E_COEVO_DISABLED. */
export function collectSamplesHandler(device: Pick<DeviceCoevolution, 'collect'> | undefined): CommandHandler<'collect-samples'> {
  return async (payload, context) => {
    if (device === undefined) throw new EdgevolveError('E_COEVO_DISABLED', 'co-evolution is off on this device (coevolution.enabled): nothing can be collected');
    const report = await device.collect({ count: payload.count, criterion: payload.criterion, maxBytes: payload.maxBytes }, context.signal);
    return { ...report };
  };
}
