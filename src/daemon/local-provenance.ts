/**
 * The trust rule for variants built on the device. Such a variant carries no fleet
 * signature: it is trusted because of where it came from. When the local optimizer
 * stores one, it writes a provenance row (parent manifest and index digests, whether the
 * parent was signed, the planner method and options, the output model digest) in the same
 * SQLite transaction as the version row, so a version row never exists without it.
 *
 * Under `registry.trust.requireSignature` a local variant may be deployed only when:
 * its provenance row exists, names exactly the model bytes of the version, and records a
 * parent that was signed under the policy (the optimizer refuses to build from an unsigned
 * parent then). The bytes themselves are covered by the digest chain every load checks
 * (manifest digest in the database -> manifest -> model digest, re-hashed on the bytes
 * handed to onnxruntime), so a tampered file is refused at load with E_STORE_CORRUPT.
 * Without the policy, unsigned artifacts are accepted anyway; only a row naming other
 * bytes than the version's is refused.
 */
import type Database from 'better-sqlite3';
import { EdgevolveError } from '../errors/index.ts';
import type { StateDatabase, VersionRecord } from '../store/index.ts';

/** `source` of a version built by the local optimizer (`local-optimize:<parent manifest digest>`). */
export const LOCAL_SOURCE_PREFIX = 'local-optimize:';

export interface LocalProvenance {
  readonly name: string;
  /** The local variant's manifest digest (its identity in the store). */
  readonly manifestDigest: string;
  /** The .onnx blob the optimizer wrote: the output digest. */
  readonly modelDigest: string;
  readonly parentManifest: string;
  readonly parentIndex: string;
  /** The parent version was accepted with a verified signature. */
  readonly parentSigned: boolean;
  /** The planner's candidate id. */
  readonly method: string;
  /** The request it answered (budgets, methods, hardware fingerprint), as JSON. */
  readonly options: string;
  readonly builtAt: number;
}

interface ProvenanceRow {
  name: string;
  manifest_digest: string;
  model_digest: string;
  parent_manifest: string;
  parent_index: string;
  parent_signed: number;
  method: string;
  options: string;
  built_at: number;
}

interface Statements {
  readonly insert: Database.Statement<[string, string, string, string, string, number, string, string, number]>;
  readonly get: Database.Statement<[string, string], ProvenanceRow>;
  readonly pruneOrphans: Database.Statement<[]>;
}

/** The `local_provenance` table (store migration 5). Statements are compiled once, on first use. */
export class LocalProvenanceTable {
  readonly #db: StateDatabase;
  #stmt: Statements | undefined;

  constructor(db: StateDatabase) {
    this.#db = db;
  }

  get #statements(): Statements {
    this.#stmt ??= {
      insert: this.#db.prepare(
        `INSERT INTO local_provenance (name, manifest_digest, model_digest, parent_manifest, parent_index, parent_signed, method, options, built_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(name, manifest_digest) DO UPDATE SET model_digest = excluded.model_digest, parent_manifest = excluded.parent_manifest,
           parent_index = excluded.parent_index, parent_signed = excluded.parent_signed, method = excluded.method, options = excluded.options, built_at = excluded.built_at`,
      ),
      get: this.#db.prepare('SELECT * FROM local_provenance WHERE name = ? AND manifest_digest = ?'),
      pruneOrphans: this.#db.prepare('DELETE FROM local_provenance WHERE NOT EXISTS (SELECT 1 FROM versions v WHERE v.name = local_provenance.name AND v.manifest_digest = local_provenance.manifest_digest)'),
    };
    return this.#stmt;
  }

  /** Call inside the transaction that adds the version row. */
  insert(p: LocalProvenance): void {
    this.#statements.insert.run(p.name, p.manifestDigest, p.modelDigest, p.parentManifest, p.parentIndex, p.parentSigned ? 1 : 0, p.method, p.options, p.builtAt);
  }

  get(name: string, manifestDigest: string): LocalProvenance | undefined {
    const row = this.#statements.get.get(name, manifestDigest);
    if (row === undefined) return undefined;
    return {
      name: row.name,
      manifestDigest: row.manifest_digest,
      modelDigest: row.model_digest,
      parentManifest: row.parent_manifest,
      parentIndex: row.parent_index,
      parentSigned: row.parent_signed === 1,
      method: row.method,
      options: row.options,
      builtAt: row.built_at,
    };
  }

  /** Drops rows whose version retention removed; resolves with how many. */
  pruneOrphans(): number {
    return this.#statements.pruneOrphans.run().changes;
  }
}

export function isLocalVariant(record: Pick<VersionRecord, 'source'>): boolean {
  return record.source.startsWith(LOCAL_SOURCE_PREFIX);
}

/**
 * Throws E_LOCAL_VARIANT_UNTRUSTED when `record`, a variant built on the device, may not be
 * deployed under the policy (see the module comment); a signed or pulled version passes.
 */
export function assertLocalVariantTrusted(record: VersionRecord, provenance: LocalProvenance | undefined, requireSignature: boolean): void {
  if (!isLocalVariant(record) || record.signed) return;
  const label = `${record.name} ${record.version}/${record.variant}`;
  const refuse = (why: string): never => {
    throw new EdgevolveError('E_LOCAL_VARIANT_UNTRUSTED', `${label} was built on this device and ${why}`, { context: { name: record.name, version: record.version, variant: record.variant } });
  };
  if (provenance !== undefined && provenance.modelDigest !== record.modelDigest) refuse(`its provenance record names model ${provenance.modelDigest}, not the stored ${record.modelDigest}`);
  if (!requireSignature) return;
  if (provenance === undefined) refuse('has no provenance record in the state database, which registry.trust.requireSignature needs for a local variant');
  if (provenance?.parentSigned !== true) refuse(`was built from ${provenance?.parentManifest ?? 'a parent'} that was not signed, which registry.trust.requireSignature refuses`);
}

/**
 * The trust rule over the state database, for the deployment: throws
 * E_LOCAL_VARIANT_UNTRUSTED when `record` is a local variant the policy (read on every
 * call: SIGHUP may change it) does not allow to serve. The table is opened on first use.
 */
export function localTrustCheck(db: StateDatabase, requireSignature: () => boolean): (record: VersionRecord) => void {
  let table: LocalProvenanceTable | undefined;
  return (record) => {
    if (!isLocalVariant(record) || record.signed) return;
    table ??= new LocalProvenanceTable(db);
    assertLocalVariantTrusted(record, table.get(record.name, record.manifestDigest), requireSignature());
  };
}
