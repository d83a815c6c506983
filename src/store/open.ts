import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config/index.ts';
import type { Clock, DiskSpace } from '../host/index.ts';
import { BlobStore } from './blobs.ts';
import { openStateDatabase, type StateDatabase } from './db.ts';
import { ModelRepository } from './repository.ts';

export interface OpenedStore {
  readonly db: StateDatabase;
  readonly blobs: BlobStore;
  readonly repository: ModelRepository;
  close(): void;
}

/** Opens `<stateDir>/state.db` and `<stateDir>/blobs` as configured. */
export async function openStore(stateDir: string, config: Config['store'], host: Clock & DiskSpace): Promise<OpenedStore> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const blobs = new BlobStore({
    root: join(stateDir, 'blobs'),
    disk: host,
    reserveBytes: config.reserveBytes,
    writeBatchBytes: config.writeBatchBytes,
    ...(config.maxBytes === undefined ? {} : { maxBytes: config.maxBytes }),
  });
  await blobs.init();
  const db = openStateDatabase(join(stateDir, 'state.db'));
  return { db, blobs, repository: new ModelRepository(db, host), close: () => db.close() };
}
