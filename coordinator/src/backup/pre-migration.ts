/**
 * Upgrades keep data: before a coordinator runs pending schema migrations on an
 * existing store, it takes a backup into `<dataDir>/backups/pre-migration-<from>-<to>-<time>.tar.gz`.
 * If that backup fails, the coordinator does not start (and does not migrate): an
 * upgrade that cannot be undone is worse than one that waits for disk space.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from '@nodekeeper/common';
import { SCHEMA_VERSION } from '../store/migrations.ts';
import { createBackup } from './archive.ts';
import { preMigrationName } from './manifest.ts';

/** The schema version in `dbFile`, or null when there is no readable store there (openStore reports that). */
function storedVersion(dbFile: string): number | null {
  if (!existsSync(dbFile)) return null;
  let db: Database.Database;
  try {
    db = new Database(dbFile, { fileMustExist: true });
  } catch {
    return null;
  }
  try {
    return Number(db.pragma('user_version', { simple: true }));
  } catch {
    return null;
  } finally {
    db.close();
  }
}

/**
 * Takes the pre-migration backup when `dbFile` holds a store older than this
 * coordinator's schema; returns its path, or null when no migration is pending.
 * Throws NK_BACKUP_FAILED / NK_BACKUP_INTEGRITY_FAILED (the caller must not migrate).
 */
export async function backupBeforeMigration(dbFile: string, dataDir: string, coordinatorVersion: string, log: Logger, newest = SCHEMA_VERSION): Promise<string | null> {
  const from = storedVersion(dbFile);
  if (from === null || from === 0 || from >= newest) return null;
  const db = new Database(dbFile, { fileMustExist: true });
  try {
    const out = join(dataDir, 'backups', preMigrationName(from, newest, new Date()));
    const r = await createBackup({ dataDir, coordinatorVersion, copyDatabase: (f) => db.backup(f) }, out, 'pre-migration');
    log.info({ file: r.file, from, to: newest, size: r.size, sha256: r.sha256 }, 'backup taken before migrating the store');
    return r.file;
  } finally {
    db.close();
  }
}
