/**
 * Making a backup: an online copy of the SQLite store (SQLite's backup API, through
 * better-sqlite3's `db.backup()`), checked with `PRAGMA integrity_check` and turned into
 * one self-contained file, then the CA, the serving certificate, the API credentials,
 * the host registration and the artifacts, hashed into a manifest and packed as one
 * tar.gz. The archive is written to a temporary name, fsynced and renamed: a process
 * killed at any point leaves no file under the final name.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { copyFile, link, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import Database from 'better-sqlite3';
import { create as tarCreate } from 'tar';
import { AppError, fsyncPath } from '@nodekeeper/common';
import { FORMAT_VERSION, MANIFEST_FILE, MANIFEST_KIND, type BackupManifest, type BackupReason, type ManifestFile } from './manifest.ts';

export interface BackupSource {
  /** The coordinator's data dir (pki/, credentials, artifacts/). */
  readonly dataDir: string;
  /** Copies the live store into `file` (Store.backupTo, or a raw connection's backup()). */
  readonly copyDatabase: (file: string) => Promise<unknown>;
  readonly coordinatorVersion: string;
}

export interface BackupResult {
  readonly file: string;
  readonly size: number;
  /** sha256 of the archive file itself. */
  readonly sha256: string;
  readonly manifest: BackupManifest;
}

/** Files copied from the data dir as they are (when present). */
const DATA_FILES = ['pki/ca.crt', 'pki/ca.key', 'pki/server.crt', 'pki/server.key', 'admin.credential', 'read-only.credential', 'host-registration.json'];

export const failed = (message: string, cause?: unknown) =>
  new AppError('NK_BACKUP_FAILED', message, cause === undefined ? {} : { cause });

/** sha256 and size of a file, streamed. */
export async function hashFile(file: string): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file)) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: h.digest('hex'), size };
}

/**
 * Checks a copied store: `PRAGMA integrity_check` must say ok; the copy is switched out
 * of WAL so it is one file. Returns its schema version. NK_BACKUP_INTEGRITY_FAILED.
 */
export function checkDatabaseCopy(file: string): { schemaVersion: number } {
  let db: Database.Database;
  try {
    db = new Database(file, { fileMustExist: true });
  } catch (err) {
    throw new AppError('NK_BACKUP_INTEGRITY_FAILED', `the store copy cannot be opened: ${(err as Error).message}`, { cause: err });
  }
  try {
    const rows = db.pragma('integrity_check') as Array<{ integrity_check: string }>;
    const problems = rows.map((r) => r.integrity_check).filter((r) => r !== 'ok');
    if (problems.length > 0) throw new AppError('NK_BACKUP_INTEGRITY_FAILED', `the store copy fails PRAGMA integrity_check: ${problems.slice(0, 5).join('; ')}`);
    db.pragma('journal_mode = DELETE');
    return { schemaVersion: Number(db.pragma('user_version', { simple: true })) };
  } catch (err) {
    if (err instanceof AppError) throw err;
    throw new AppError('NK_BACKUP_INTEGRITY_FAILED', `the store copy cannot be checked: ${(err as Error).message}`, { cause: err });
  } finally {
    db.close();
  }
}

/** Puts `src` at `dst`: a hard link when they share a filesystem (instant, and a later rename of `src` does not change it), else a copy. */
async function place(src: string, dst: string): Promise<void> {
  await mkdir(dirname(dst), { recursive: true, mode: 0o700 });
  try {
    await link(src, dst);
  } catch {
    await copyFile(src, dst);
  }
}

/** Fills `staging` with the backup's files and manifest.json; returns the manifest. */
async function stage(src: BackupSource, staging: string, reason: BackupReason, now: Date): Promise<BackupManifest> {
  const db = join(staging, 'state.db');
  try {
    await src.copyDatabase(db);
  } catch (err) {
    throw failed(`the online copy of the store failed: ${(err as Error).message}`, err);
  }
  const { schemaVersion } = checkDatabaseCopy(db);
  const paths = ['state.db'];
  for (const p of DATA_FILES) {
    if (!existsSync(join(src.dataDir, p))) continue;
    await place(join(src.dataDir, p), join(staging, p));
    paths.push(p);
  }
  const artifacts = join(src.dataDir, 'artifacts', 'sha256');
  const blobs = existsSync(artifacts) ? (await readdir(artifacts)).filter((n) => /^[0-9a-f]{64}$/.test(n)).sort() : [];
  for (const n of blobs) {
    await place(join(artifacts, n), join(staging, 'artifacts', 'sha256', n));
    paths.push(`artifacts/sha256/${n}`);
  }
  const files: ManifestFile[] = [];
  for (const p of paths) files.push({ path: p, ...(await hashFile(join(staging, p))) });
  const manifest: BackupManifest = {
    kind: MANIFEST_KIND, formatVersion: FORMAT_VERSION, createdAt: now.toISOString(),
    coordinatorVersion: src.coordinatorVersion, schemaVersion, reason, files,
  };
  await writeFile(join(staging, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o600 });
  return manifest;
}

/**
 * Makes a backup archive at `outFile` (0600). Staged under `<dataDir>/backups/` (so
 * links work); written as `.<name>.partial` beside `outFile`, fsynced, renamed, and the
 * directory fsynced. NK_BACKUP_FAILED or NK_BACKUP_INTEGRITY_FAILED; nothing is left
 * behind on failure.
 */
export async function createBackup(src: BackupSource, outFile: string, reason: BackupReason, now = new Date()): Promise<BackupResult> {
  const work = join(src.dataDir, 'backups');
  const staging = join(work, `.staging-${randomBytes(6).toString('hex')}`);
  const partial = join(dirname(outFile), `.${basename(outFile)}.partial-${randomBytes(4).toString('hex')}`);
  try {
    await mkdir(staging, { recursive: true, mode: 0o700 });
    await mkdir(dirname(outFile), { recursive: true, mode: 0o700 });
    const manifest = await stage(src, staging, reason, now);
    // manifest.json first, so a reader meets the contract before the contents.
    const entries = [MANIFEST_FILE, ...manifest.files.map((f) => f.path)];
    await pipeline(
      tarCreate({ gzip: true, cwd: staging, portable: true, noDirRecurse: true, mtime: now }, entries),
      createWriteStream(partial, { mode: 0o600 }),
    );
    await fsyncPath(partial);
    await rename(partial, outFile);
    await fsyncPath(dirname(outFile));
    const { sha256, size } = await hashFile(outFile);
    return { file: outFile, size, sha256, manifest };
  } catch (err) {
    await rm(partial, { force: true });
    if (err instanceof AppError) throw err;
    throw failed(`backup to ${outFile} failed: ${(err as Error).message}`, err);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/**
 * Leftovers of backups killed midway in `dir`, removed at start: partial archives
 * (`.<name>.partial-<hex>`), and with `ours` (the data dir's backups/, which only we
 * write) staging dirs and downloads too.
 */
export async function removeLeftovers(dir: string, ours = true): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const gone: string[] = [];
  for (const n of await readdir(dir)) {
    const partial = /^\..+\.partial-[0-9a-f]{8}$/.test(n);
    if (!partial && !(ours && (n.startsWith('.staging-') || n.startsWith('.download-')))) continue;
    await rm(join(dir, n), { recursive: true, force: true });
    gone.push(n);
  }
  return gone;
}
