/**
 * Reading a backup archive back, for `nodekeeper-coordinator restore` and for nkctl's
 * check of what it downloaded. Nothing is trusted before it is checked, and nothing
 * outside `dest` is ever written:
 *   1. list the archive (no extraction): only regular files a backup holds, each once,
 *      and manifest.json, whose content is read from the listing pass;
 *   2. the listing must match the manifest exactly (names, sizes);
 *   3. extract into `dest` (an empty staging directory), only those names;
 *   4. every file's sha256 against the manifest;
 *   5. `PRAGMA integrity_check` on the store, whose schema version must be the
 *      manifest's, and not newer than this coordinator understands.
 */
import { chmod, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { extract as tarExtract, list as tarList, type ReadEntry } from 'tar';
import { AppError } from '@nodekeeper/common';
import { SCHEMA_VERSION } from '../store/migrations.ts';
import { checkDatabaseCopy, hashFile } from './archive.ts';
import { fileMode, isAllowedPath, listingProblem, MANIFEST_FILE, MAX_MANIFEST_BYTES, parseManifest, type ArchiveEntry, type BackupManifest } from './manifest.ts';

const invalid = (message: string, cause?: unknown) =>
  new AppError('NK_BACKUP_ARCHIVE_INVALID', message, cause === undefined ? {} : { cause });

/** Pass 1: the entries and the manifest's text, without writing anything. */
async function listArchive(file: string): Promise<{ entries: ArchiveEntry[]; manifestText: string | null }> {
  const entries: ArchiveEntry[] = [];
  let manifestText: string | null = null;
  let tooBig = false;
  try {
    await tarList({
      file, strict: true,
      onReadEntry: (e: ReadEntry) => {
        entries.push({ path: e.path, type: e.type, size: e.size });
        if (e.path.replace(/^\.\//, '') !== MANIFEST_FILE || e.type !== 'File') return;
        if (e.size > MAX_MANIFEST_BYTES) {
          tooBig = true;
          return;
        }
        const chunks: Buffer[] = [];
        e.on('data', (c: Buffer) => chunks.push(c));
        e.on('end', () => (manifestText = Buffer.concat(chunks).toString('utf8')));
      },
    });
  } catch (err) {
    throw invalid(`${file} is not a readable tar.gz backup: ${(err as Error).message}`, err);
  }
  if (tooBig) throw new AppError('NK_BACKUP_MANIFEST_INVALID', `${MANIFEST_FILE} is over ${MAX_MANIFEST_BYTES} bytes`);
  return { entries, manifestText };
}

/**
 * Checks `file` and extracts it into `dest` (created, must be empty). Returns the
 * manifest. NK_BACKUP_ARCHIVE_INVALID, NK_BACKUP_MANIFEST_INVALID,
 * NK_BACKUP_CHECKSUM_MISMATCH, NK_BACKUP_INTEGRITY_FAILED, NK_BACKUP_SCHEMA_TOO_NEW.
 */
export async function extractVerified(file: string, dest: string, newestSchema = SCHEMA_VERSION): Promise<BackupManifest> {
  const { entries, manifestText } = await listArchive(file);
  if (manifestText === null) throw new AppError('NK_BACKUP_MANIFEST_INVALID', `${file} has no ${MANIFEST_FILE}: not a nodekeeper coordinator backup`);
  const manifest = parseManifest(manifestText);
  const problem = listingProblem(manifest, entries);
  if (problem !== null) throw invalid(`${file} does not match its manifest: ${problem}`);
  if (manifest.schemaVersion > newestSchema) {
    throw new AppError('NK_BACKUP_SCHEMA_TOO_NEW', `the backup's store is at schema version ${manifest.schemaVersion}; this coordinator understands up to ${newestSchema}: restore with a coordinator at least as new as ${manifest.coordinatorVersion}`);
  }

  await mkdir(dest, { recursive: true, mode: 0o700 });
  if ((await readdir(dest)).length !== 0) throw new TypeError(`extractVerified needs an empty directory, ${dest} is not`);
  try {
    await tarExtract({
      file, cwd: dest, strict: true, preservePaths: false, noChmod: true,
      // Only what the listing pass accepted: regular files with allowed names.
      filter: (p: string, e: unknown) => isAllowedPath(p.replace(/^\.\//, '')) && (e as ReadEntry).type === 'File',
    });
  } catch (err) {
    throw invalid(`${file} cannot be extracted: ${(err as Error).message}`, err);
  }
  for (const f of manifest.files) {
    const path = join(dest, f.path);
    const got = await hashFile(path).catch((err: unknown) => {
      throw new AppError('NK_BACKUP_CHECKSUM_MISMATCH', `${f.path} listed in the manifest cannot be read after extraction: ${(err as Error).message}`, { cause: err });
    });
    if (got.sha256 !== f.sha256 || got.size !== f.size) {
      throw new AppError('NK_BACKUP_CHECKSUM_MISMATCH', `${f.path} does not match the manifest: sha256 ${got.sha256} (${got.size} bytes), the manifest says ${f.sha256} (${f.size} bytes)`);
    }
    await chmod(path, fileMode(f.path));
  }
  const { schemaVersion } = checkDatabaseCopy(join(dest, 'state.db'));
  if (schemaVersion !== manifest.schemaVersion) {
    throw new AppError('NK_BACKUP_INTEGRITY_FAILED', `the store in the backup is at schema version ${schemaVersion}, the manifest says ${manifest.schemaVersion}`);
  }
  return manifest;
}
