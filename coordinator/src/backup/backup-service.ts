/**
 * The coordinator's one way to take a backup (API, schedule): one at a time, counted,
 * logged, recorded as an event. A second request while one runs is refused with
 * NK_BACKUP_IN_PROGRESS rather than queued: each holds a store copy on disk.
 */
import { AppError, type Logger } from '@nodekeeper/common';
import { createBackup, removeLeftovers, type BackupResult, type BackupSource } from './archive.ts';
import type { BackupReason } from './manifest.ts';
import { join } from 'node:path';

export interface BackupServiceDeps extends BackupSource {
  readonly log: Logger;
  /** Told after each attempt (metrics). */
  readonly counted?: (reason: BackupReason, result: 'ok' | 'failed', at: number) => void;
  /** Records an audit event; its own failure must not fail the backup. */
  readonly recordEvent?: (type: 'Normal' | 'Warning', reason: string, message: string) => void;
}

export class BackupService {
  readonly #deps: BackupServiceDeps;
  #running = false;

  constructor(deps: BackupServiceDeps) {
    this.#deps = deps;
  }

  get dataDir(): string {
    return this.#deps.dataDir;
  }

  /** Removes staging dirs and partial archives a killed backup left in the data dir's backups/. */
  async cleanUp(): Promise<void> {
    const gone = await removeLeftovers(join(this.#deps.dataDir, 'backups'));
    if (gone.length > 0) this.#deps.log.info({ removed: gone }, 'removed leftovers of interrupted backups');
  }

  /** Takes a backup into `outFile`. NK_BACKUP_IN_PROGRESS, NK_BACKUP_FAILED, NK_BACKUP_INTEGRITY_FAILED. */
  async create(outFile: string, reason: BackupReason): Promise<BackupResult> {
    if (this.#running) throw new AppError('NK_BACKUP_IN_PROGRESS', 'a backup is already being taken; try again when it is done');
    this.#running = true;
    const started = Date.now();
    try {
      const r = await createBackup(this.#deps, outFile, reason);
      this.#deps.counted?.(reason, 'ok', Date.now());
      this.#deps.log.info({ file: r.file, size: r.size, sha256: r.sha256, reason, schemaVersion: r.manifest.schemaVersion, files: r.manifest.files.length, ms: Date.now() - started }, 'backup taken');
      this.#event('Normal', 'BackupCreated', `${reason} backup ${r.file}: ${r.size} bytes, sha256 ${r.sha256}, schema version ${r.manifest.schemaVersion}`);
      return r;
    } catch (err) {
      this.#deps.counted?.(reason, 'failed', Date.now());
      this.#deps.log.error({ err, reason, file: outFile }, 'backup failed');
      this.#event('Warning', 'BackupFailed', `${reason} backup to ${outFile} failed: ${(err as Error).message}`);
      throw err;
    } finally {
      this.#running = false;
    }
  }

  #event(type: 'Normal' | 'Warning', reason: string, message: string): void {
    try {
      this.#deps.recordEvent?.(type, reason, message);
    } catch (err) {
      this.#deps.log.warn({ err, reason }, 'could not record the backup event');
    }
  }
}
