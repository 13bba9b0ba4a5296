/**
 * The backup archive's contract, pure: which files a backup holds, the manifest that
 * lists them with their sha256, how a listing read from an archive is judged against
 * it, and how snapshot files are named and pruned. No I/O here; archive.ts and
 * verify.ts do the reading and writing.
 *
 * An archive is a tar.gz with `manifest.json` and the files it lists, nothing else:
 *   state.db                     an online copy of the SQLite store (one file, no WAL)
 *   pki/ca.crt pki/ca.key        the CA agents pin (its key signs serving certificates)
 *   pki/server.crt pki/server.key
 *   admin.credential read-only.credential   the API credentials written at first start
 *   host-registration.json       the host cluster registration, when registered
 *   artifacts/sha256/<hex>       every stored artifact (rollouts in flight need them)
 */
import { AppError } from '@nodekeeper/common';

export const MANIFEST_FILE = 'manifest.json';
export const MANIFEST_KIND = 'NodekeeperCoordinatorBackup';
export const FORMAT_VERSION = 1;
/** A manifest larger than this is not ours (it lists a data dir, not a dump). */
export const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;

/** What a backup may hold: anything else in an archive is refused (never written). */
const ALLOWED = /^(state\.db|pki\/(ca|server)\.(crt|key)|admin\.credential|read-only\.credential|host-registration\.json|artifacts\/sha256\/[0-9a-f]{64})$/;

export type BackupReason = 'manual' | 'scheduled' | 'pre-migration';

export interface ManifestFile {
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
}

export interface BackupManifest {
  readonly kind: typeof MANIFEST_KIND;
  readonly formatVersion: number;
  readonly createdAt: string;
  readonly coordinatorVersion: string;
  /** The store's schema version (`PRAGMA user_version`) in the copy. */
  readonly schemaVersion: number;
  readonly reason: BackupReason;
  readonly files: readonly ManifestFile[];
}

/** An entry of a tar archive as listed (before anything is extracted). */
export interface ArchiveEntry {
  readonly path: string;
  /** tar's entry type: File, Directory, SymbolicLink, Link, ... */
  readonly type: string;
  readonly size: number;
}

export const isAllowedPath = (p: string): boolean => ALLOWED.test(p);

/** Private files (keys, credentials, the store) are 0600; certificates 0644. */
export const fileMode = (p: string): number => (p.endsWith('.crt') ? 0o644 : 0o600);

const invalid = (message: string) => new AppError('NK_BACKUP_MANIFEST_INVALID', message);

/** Parses and checks manifest.json; NK_BACKUP_MANIFEST_INVALID naming the fault. */
export function parseManifest(text: string): BackupManifest {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new AppError('NK_BACKUP_MANIFEST_INVALID', `${MANIFEST_FILE} is not JSON: ${(err as Error).message}`, { cause: err });
  }
  const o = v as Record<string, unknown>;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid(`${MANIFEST_FILE} is not an object`);
  if (o['kind'] !== MANIFEST_KIND) throw invalid(`${MANIFEST_FILE} kind is ${JSON.stringify(o['kind'])}, not ${MANIFEST_KIND}: not a nodekeeper coordinator backup`);
  if (o['formatVersion'] !== FORMAT_VERSION) throw invalid(`backup format ${JSON.stringify(o['formatVersion'])} is not supported (this coordinator reads format ${FORMAT_VERSION})`);
  if (typeof o['createdAt'] !== 'string' || Number.isNaN(Date.parse(o['createdAt']))) throw invalid('createdAt is not a time');
  if (typeof o['coordinatorVersion'] !== 'string') throw invalid('coordinatorVersion is missing');
  if (!Number.isInteger(o['schemaVersion']) || (o['schemaVersion'] as number) < 1) throw invalid('schemaVersion is not a positive integer');
  if (o['reason'] !== 'manual' && o['reason'] !== 'scheduled' && o['reason'] !== 'pre-migration') throw invalid(`reason ${JSON.stringify(o['reason'])} is unknown`);
  if (!Array.isArray(o['files'])) throw invalid('files is not a list');
  const seen = new Set<string>();
  for (const [i, f] of (o['files'] as unknown[]).entries()) {
    const e = f as Record<string, unknown>;
    if (typeof f !== 'object' || f === null) throw invalid(`files[${i}] is not an object`);
    if (typeof e['path'] !== 'string' || !isAllowedPath(e['path'])) throw invalid(`files[${i}].path ${JSON.stringify(e['path'])} is not a file a backup holds`);
    if (seen.has(e['path'])) throw invalid(`files lists ${e['path']} twice`);
    seen.add(e['path']);
    if (!Number.isSafeInteger(e['size']) || (e['size'] as number) < 0) throw invalid(`files[${i}].size is not a byte count`);
    if (typeof e['sha256'] !== 'string' || !/^[0-9a-f]{64}$/.test(e['sha256'])) throw invalid(`files[${i}].sha256 is not a sha256 hex digest`);
  }
  if (!seen.has('state.db')) throw invalid('the backup holds no state.db');
  // No CA is fine: a coordinator serving operator-provided certificates (or --insecure) has none.
  if (seen.has('pki/ca.crt') !== seen.has('pki/ca.key')) throw invalid('the backup holds half a CA (pki/ca.crt and pki/ca.key go together)');
  return o as unknown as BackupManifest;
}

/**
 * Why an archive's listing does not match its manifest (or holds what no backup
 * holds), or null: exactly the manifest's files, each once, regular files of the
 * manifest's size, plus manifest.json. Checked before a byte is extracted.
 */
export function listingProblem(manifest: BackupManifest, entries: readonly ArchiveEntry[]): string | null {
  const wanted = new Map(manifest.files.map((f) => [f.path, f]));
  const seen = new Set<string>();
  for (const e of entries) {
    const p = e.path.replace(/^\.\//, '');
    if (e.type === 'Directory' && /^(pki|artifacts|artifacts\/sha256)\/?$/.test(p)) continue;
    if (e.type !== 'File' && e.type !== 'OldFile') return `${JSON.stringify(e.path)} is a ${e.type}, not a regular file`;
    if (seen.has(p)) return `${JSON.stringify(e.path)} appears twice`;
    seen.add(p);
    if (p === MANIFEST_FILE) continue;
    const f = wanted.get(p);
    if (f === undefined) return `${JSON.stringify(e.path)} is not listed in the manifest`;
    if (f.size !== e.size) return `${p} is ${e.size} bytes in the archive, ${f.size} in the manifest`;
  }
  for (const p of wanted.keys()) if (!seen.has(p)) return `${p} is listed in the manifest but missing from the archive`;
  return null;
}

/** `20261203T111500Z`: sorts as time does, and is safe in file names. */
export function compactTime(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
}

export const SNAPSHOT_PREFIX = 'nodekeeper-backup-';
const SNAPSHOT = /^nodekeeper-backup-\d{8}T\d{6}Z(-\d+)?\.tar\.gz$/;

/** A scheduled snapshot's file name. */
export const snapshotName = (d: Date): string => `${SNAPSHOT_PREFIX}${compactTime(d)}.tar.gz`;

/** A pre-migration backup's file name (kept in the data dir's backups/). */
export const preMigrationName = (from: number, to: number, d: Date): string => `pre-migration-${from}-${to}-${compactTime(d)}.tar.gz`;

/**
 * The snapshots to delete so that the newest `keep` remain: only files named as
 * snapshots count (an operator's own files in the directory are never touched).
 */
export function snapshotsToPrune(names: readonly string[], keep: number): string[] {
  if (!Number.isInteger(keep) || keep < 1) throw new RangeError(`keep must be a positive integer, got ${keep}`);
  const snapshots = names.filter((n) => SNAPSHOT.test(n)).sort();
  return snapshots.slice(0, Math.max(0, snapshots.length - keep));
}
