/**
 * Numbered, forward-only schema migrations. `PRAGMA user_version` records the last one
 * applied; each runs in its own transaction with the version bump, so a crash leaves
 * the schema at one version or the next. Never edit a shipped migration: add one.
 */
export interface Migration {
  readonly version: number;
  readonly description: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'blobs and pulled model versions',
    sql: `
      CREATE TABLE blobs (
        digest      TEXT PRIMARY KEY,
        size        INTEGER NOT NULL,
        media_type  TEXT NOT NULL,
        added_at    INTEGER NOT NULL
      ) STRICT;
      CREATE TABLE versions (
        id               INTEGER PRIMARY KEY,
        name             TEXT NOT NULL,
        version          TEXT NOT NULL,
        source           TEXT NOT NULL,
        index_digest     TEXT NOT NULL,
        manifest_digest  TEXT NOT NULL,
        variant          TEXT NOT NULL,
        model_digest     TEXT NOT NULL REFERENCES blobs(digest),
        config_digest    TEXT NOT NULL REFERENCES blobs(digest),
        pulled_at        INTEGER NOT NULL,
        UNIQUE (name, manifest_digest)
      ) STRICT;
    `,
  },
  {
    version: 2,
    description: 'deployments with rollback history, trust state for downgrade refusal',
    sql: `
      ALTER TABLE versions ADD COLUMN signed INTEGER NOT NULL DEFAULT 0;
      CREATE TABLE deployments (
        name         TEXT PRIMARY KEY,
        version_id   INTEGER NOT NULL REFERENCES versions(id),
        activated_at INTEGER NOT NULL
      ) STRICT;
      CREATE TABLE deployment_history (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        name         TEXT NOT NULL,
        version_id   INTEGER NOT NULL REFERENCES versions(id),
        activated_at INTEGER NOT NULL,
        reason       TEXT NOT NULL
      ) STRICT;
      CREATE INDEX deployment_history_by_name ON deployment_history(name, seq);
      CREATE TABLE trust_state (
        name              TEXT PRIMARY KEY,
        last_version      TEXT NOT NULL,
        last_index_digest TEXT NOT NULL,
        updated_at        INTEGER NOT NULL
      ) STRICT;
    `,
  },
  // hardware/: measured micro-benchmarks, re-run when the hardware fingerprint changes.
  {
    version: 3,
    description: 'hardware micro-benchmark cache keyed by hardware fingerprint',
    sql: `
      CREATE TABLE hardware_benchmarks (
        fingerprint  TEXT NOT NULL,
        version      INTEGER NOT NULL,
        measured_at  INTEGER NOT NULL,
        result       TEXT NOT NULL,
        PRIMARY KEY (fingerprint, version)
      ) STRICT;
    `,
  },
  // registry/: the layers of a version besides the model file, so retention keeps them.
  {
    version: 4,
    description: 'extra layers of a pulled version: external-data files and calibration files',
    sql: `
      CREATE TABLE version_layers (
        version_id  INTEGER NOT NULL REFERENCES versions(id),
        digest      TEXT NOT NULL REFERENCES blobs(digest),
        media_type  TEXT NOT NULL,
        title       TEXT NOT NULL,
        PRIMARY KEY (version_id, title)
      ) STRICT;
    `,
  },
  // daemon/local-provenance.ts: what a variant built on the device came from, written in the version's transaction.
  {
    version: 5,
    description: 'provenance of variants built on the device (the trust rule for local variants)',
    sql: `
      CREATE TABLE local_provenance (
        name             TEXT NOT NULL,
        manifest_digest  TEXT NOT NULL,
        model_digest     TEXT NOT NULL,
        parent_manifest  TEXT NOT NULL,
        parent_index     TEXT NOT NULL,
        parent_signed    INTEGER NOT NULL,
        method           TEXT NOT NULL,
        options          TEXT NOT NULL,
        built_at         INTEGER NOT NULL,
        PRIMARY KEY (name, manifest_digest)
      ) STRICT;
    `,
  },
];
