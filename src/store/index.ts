export { BlobStore, type BlobStoreOptions, type BlobWriter } from './blobs.ts';
export { openStateDatabase, migrate, type StateDatabase } from './db.ts';
export { MIGRATIONS, type Migration } from './migrations.ts';
export { ModelRepository, type VersionRecord, type NewVersion, type VersionLayer, type HistoryEntry } from './repository.ts';
export { parseDigest, isDigest, digestHex, type Digest } from './digest.ts';
export { compareVersions, parseVersion } from './version.ts';
export { openStore, type OpenedStore } from './open.ts';
