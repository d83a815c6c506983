import type Database from 'better-sqlite3';
import { EdgevolveError } from '../errors/index.ts';
import type { Clock } from '../host/index.ts';
import type { StateDatabase } from './db.ts';

/** One pulled variant of one model version, as recorded in the state database. */
export interface VersionRecord {
  readonly id: number;
  readonly name: string;
  readonly version: string;
  /** Where it came from: the reference as the user gave it. */
  readonly source: string;
  readonly indexDigest: string;
  readonly manifestDigest: string;
  readonly variant: string;
  readonly modelDigest: string;
  readonly configDigest: string;
  readonly signed: boolean;
  readonly pulledAt: number;
}

/** A layer of a version besides the model file: an external-data file or a calibration file. */
export interface VersionLayer {
  readonly digest: string;
  readonly mediaType: string;
  /** The name the layer carries (external-data location, calibration file name); unique per version. */
  readonly title: string;
}

export type NewVersion = Omit<VersionRecord, 'id' | 'pulledAt'> & { readonly layers?: readonly VersionLayer[] };

export interface HistoryEntry {
  readonly seq: number;
  readonly versionId: number;
  readonly version: string;
  readonly variant: string;
  readonly activatedAt: number;
  readonly reason: string;
}

interface VersionRow {
  id: number;
  name: string;
  version: string;
  source: string;
  index_digest: string;
  manifest_digest: string;
  variant: string;
  model_digest: string;
  config_digest: string;
  signed: number;
  pulled_at: number;
}

function toRecord(row: VersionRow): VersionRecord {
  return {
    id: row.id,
    name: row.name,
    version: row.version,
    source: row.source,
    indexDigest: row.index_digest,
    manifestDigest: row.manifest_digest,
    variant: row.variant,
    modelDigest: row.model_digest,
    configDigest: row.config_digest,
    signed: row.signed === 1,
    pulledAt: row.pulled_at,
  };
}

/**
 * Versions, deployments, rollback history and trust state. Statements are compiled
 * once here; activation is one transaction so the active pointer, its history row and
 * the trust state change together or not at all.
 */
export class ModelRepository {
  readonly #db: StateDatabase;
  readonly #clock: Clock;
  readonly #stmt: {
    upsertBlob: Database.Statement<[string, number, string, number]>;
    insertVersion: Database.Statement<[string, string, string, string, string, string, string, string, number, number]>;
    versionByManifest: Database.Statement<[string, string], VersionRow>;
    versionById: Database.Statement<[number], VersionRow>;
    active: Database.Statement<[string], VersionRow>;
    setActive: Database.Statement<[string, number, number]>;
    addHistory: Database.Statement<[string, number, number, string]>;
    history: Database.Statement<[string, number], HistoryEntryRow>;
    trust: Database.Statement<[string], { last_version: string; last_index_digest: string }>;
    setTrust: Database.Statement<[string, string, string, number]>;
    versionsOf: Database.Statement<[string], VersionRow>;
    allVersions: Database.Statement<[], VersionRow>;
    deleteVersion: Database.Statement<[number]>;
    deleteHistoryOf: Database.Statement<[number]>;
    allBlobs: Database.Statement<[], { digest: string }>;
    insertLayer: Database.Statement<[number, string, string, string]>;
    layersOf: Database.Statement<[number], { digest: string; media_type: string; title: string }>;
    deleteLayersOf: Database.Statement<[number]>;
    deleteBlob: Database.Statement<[string]>;
  };

  constructor(db: StateDatabase, clock: Clock) {
    this.#db = db;
    this.#clock = clock;
    this.#stmt = {
      upsertBlob: db.prepare('INSERT INTO blobs (digest, size, media_type, added_at) VALUES (?, ?, ?, ?) ON CONFLICT(digest) DO NOTHING'),
      insertVersion: db.prepare(
        `INSERT INTO versions (name, version, source, index_digest, manifest_digest, variant, model_digest, config_digest, signed, pulled_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name, manifest_digest) DO UPDATE SET signed = max(signed, excluded.signed)`,
      ),
      versionByManifest: db.prepare('SELECT * FROM versions WHERE name = ? AND manifest_digest = ?'),
      versionById: db.prepare('SELECT * FROM versions WHERE id = ?'),
      active: db.prepare('SELECT v.* FROM deployments d JOIN versions v ON v.id = d.version_id WHERE d.name = ?'),
      setActive: db.prepare(
        'INSERT INTO deployments (name, version_id, activated_at) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET version_id = excluded.version_id, activated_at = excluded.activated_at',
      ),
      addHistory: db.prepare('INSERT INTO deployment_history (name, version_id, activated_at, reason) VALUES (?, ?, ?, ?)'),
      history: db.prepare(
        `SELECT h.seq, h.version_id, v.version, v.variant, h.activated_at, h.reason FROM deployment_history h
         JOIN versions v ON v.id = h.version_id WHERE h.name = ? ORDER BY h.seq DESC LIMIT ?`,
      ),
      trust: db.prepare('SELECT last_version, last_index_digest FROM trust_state WHERE name = ?'),
      setTrust: db.prepare(
        `INSERT INTO trust_state (name, last_version, last_index_digest, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT(name) DO UPDATE SET last_version = excluded.last_version, last_index_digest = excluded.last_index_digest, updated_at = excluded.updated_at`,
      ),
      versionsOf: db.prepare('SELECT * FROM versions WHERE name = ? ORDER BY id'),
      allVersions: db.prepare('SELECT * FROM versions ORDER BY id'),
      deleteVersion: db.prepare('DELETE FROM versions WHERE id = ?'),
      deleteHistoryOf: db.prepare('DELETE FROM deployment_history WHERE version_id = ?'),
      allBlobs: db.prepare('SELECT digest FROM blobs'),
      deleteBlob: db.prepare('DELETE FROM blobs WHERE digest = ?'),
      insertLayer: db.prepare('INSERT INTO version_layers (version_id, digest, media_type, title) VALUES (?, ?, ?, ?) ON CONFLICT(version_id, title) DO NOTHING'),
      layersOf: db.prepare('SELECT digest, media_type, title FROM version_layers WHERE version_id = ? ORDER BY title'),
      deleteLayersOf: db.prepare('DELETE FROM version_layers WHERE version_id = ?'),
    };
  }

  recordBlob(digest: string, size: number, mediaType: string): void {
    this.#stmt.upsertBlob.run(digest, size, mediaType, this.#clock.now());
  }

  /** Records a pulled variant and its extra layers in one transaction (idempotent per name and manifest) and returns it. */
  addVersion(version: NewVersion): VersionRecord {
    return this.#db.transaction(() => {
      this.#stmt.insertVersion.run(
        version.name,
        version.version,
        version.source,
        version.indexDigest,
        version.manifestDigest,
        version.variant,
        version.modelDigest,
        version.configDigest,
        version.signed ? 1 : 0,
        this.#clock.now(),
      );
      const row = this.#stmt.versionByManifest.get(version.name, version.manifestDigest);
      if (row === undefined) throw new EdgevolveError('E_INTERNAL', `version ${version.name}@${version.manifestDigest} vanished after insert`);
      for (const layer of version.layers ?? []) this.#stmt.insertLayer.run(row.id, layer.digest, layer.mediaType, layer.title);
      return toRecord(row);
    })();
  }

  /** The extra layers (external data, calibration) recorded with a version, by title. */
  layers(versionId: number): VersionLayer[] {
    return this.#stmt.layersOf.all(versionId).map((r) => ({ digest: r.digest, mediaType: r.media_type, title: r.title }));
  }

  /**
   * Finds a stored version: the active one of `name` when nothing else is given, else
   * by manifest digest, or by version (and variant when several variants of it are stored).
   */
  find(name: string, query: { version?: string; variant?: string; manifestDigest?: string } = {}): VersionRecord {
    if (query.version === undefined && query.variant === undefined && query.manifestDigest === undefined) {
      const active = this.active(name);
      if (active === undefined) throw new EdgevolveError('E_STORE_NOT_FOUND', `${name} has no active version in the store`, { context: { name } });
      return active;
    }
    const matches = this.versions(name).filter(
      (v) =>
        (query.version === undefined || v.version === query.version) &&
        (query.variant === undefined || v.variant === query.variant) &&
        (query.manifestDigest === undefined || v.manifestDigest === query.manifestDigest),
    );
    const [only, ...more] = matches;
    const wanted = [query.version, query.variant, query.manifestDigest].filter((q) => q !== undefined).join(' ');
    if (only === undefined) throw new EdgevolveError('E_STORE_NOT_FOUND', `${name} ${wanted} is not in the store`, { context: { name, ...query } });
    if (more.length > 0) {
      throw new EdgevolveError('E_STORE_NOT_FOUND', `${name} ${wanted} is ambiguous: stored variants ${matches.map((m) => m.variant).join(', ')}; name one`, { context: { name, ...query } });
    }
    return only;
  }

  active(name: string): VersionRecord | undefined {
    const row = this.#stmt.active.get(name);
    return row === undefined ? undefined : toRecord(row);
  }

  versions(name?: string): VersionRecord[] {
    return (name === undefined ? this.#stmt.allVersions.all() : this.#stmt.versionsOf.all(name)).map(toRecord);
  }

  /** The last version accepted for a model name, for downgrade refusal (persisted trust state). */
  lastAccepted(name: string): { version: string; indexDigest: string } | undefined {
    const row = this.#stmt.trust.get(name);
    return row === undefined ? undefined : { version: row.last_version, indexDigest: row.last_index_digest };
  }

  /**
   * Makes a version the active one in one transaction: the deployment pointer, a history
   * row and (unless it is a rollback) the trust state's last accepted version.
   */
  activate(versionId: number, reason: string, options: { updateTrust?: boolean } = {}): VersionRecord {
    const row = this.#stmt.versionById.get(versionId);
    if (row === undefined) throw new EdgevolveError('E_STORE_NOT_FOUND', `version id ${versionId} is not in the store`);
    const now = this.#clock.now();
    this.#db.transaction(() => {
      this.#stmt.setActive.run(row.name, row.id, now);
      this.#stmt.addHistory.run(row.name, row.id, now, reason);
      if (options.updateTrust ?? true) this.#stmt.setTrust.run(row.name, row.version, row.index_digest, now);
    })();
    return toRecord(row);
  }

  history(name: string, limit = 50): HistoryEntry[] {
    return this.#stmt.history.all(name, limit).map((r) => ({
      seq: r.seq,
      versionId: r.version_id,
      version: r.version,
      variant: r.variant,
      activatedAt: r.activated_at,
      reason: r.reason,
    }));
  }

  /** Re-activates the most recent previously active version that differs from the current one. */
  rollback(name: string): VersionRecord {
    const current = this.active(name);
    if (current === undefined) throw new EdgevolveError('E_STORE_NOT_FOUND', `no active version of ${name} to roll back from`);
    const previous = this.history(name, 1000).find((h) => h.versionId !== current.id);
    if (previous === undefined) throw new EdgevolveError('E_STORE_NOT_FOUND', `${name} has no earlier version to roll back to`);
    // A rollback is a local decision, not a newer accepted release: trust state stays.
    return this.activate(previous.versionId, 'rollback', { updateTrust: false });
  }

  /**
   * Drops version rows outside the retention set (active, the last `keepPrevious`
   * distinct versions of each name's history, and versions staged since the last activation) and returns every blob digest still
   * referenced, for the blob store's GC.
   */
  prune(keepPrevious: number): Set<string> {
    const keepIds = new Set<number>();
    const byName = new Map<string, VersionRecord[]>();
    for (const v of this.versions()) byName.set(v.name, [...(byName.get(v.name) ?? []), v]);
    for (const name of byName.keys()) {
      const active = this.active(name);
      if (active !== undefined) keepIds.add(active.id);
      const history = this.history(name, 10_000);
      // Staged versions (pulled after the last activation, not activated yet) are kept too.
      const lastActivation = history[0]?.activatedAt ?? Number.NEGATIVE_INFINITY;
      for (const v of byName.get(name) ?? []) if (v.pulledAt >= lastActivation) keepIds.add(v.id);
      const previous: number[] = [];
      for (const h of history) {
        if (h.versionId === active?.id || previous.includes(h.versionId)) continue;
        if (previous.length >= keepPrevious) break;
        previous.push(h.versionId);
      }
      for (const id of previous) keepIds.add(id);
    }
    const referenced = new Set<string>();
    this.#db.transaction(() => {
      for (const v of this.versions()) {
        if (!keepIds.has(v.id)) {
          // History rows reference versions; keep them only for retained versions.
          this.#stmt.deleteHistoryOf.run(v.id);
          this.#stmt.deleteLayersOf.run(v.id);
          this.#stmt.deleteVersion.run(v.id);
          continue;
        }
        for (const d of [v.indexDigest, v.manifestDigest, v.modelDigest, v.configDigest]) referenced.add(d);
        for (const layer of this.#stmt.layersOf.all(v.id)) referenced.add(layer.digest);
      }
      for (const { digest } of this.#stmt.allBlobs.all()) if (!referenced.has(digest)) this.#stmt.deleteBlob.run(digest);
    })();
    return referenced;
  }
}

interface HistoryEntryRow {
  seq: number;
  version_id: number;
  version: string;
  variant: string;
  activated_at: number;
  reason: string;
}
