/**
 * Scheduled snapshots (--backup-dir, --backup-interval, --backup-keep): every interval
 * (jittered +-10 %), a backup into the directory under a time-stamped name, then the
 * oldest snapshots beyond `keep` are deleted. A failure (full disk, a directory gone) is
 * logged and counted and the next round tries again: it never ends the coordinator.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { jittered, type Logger } from '@nodekeeper/common';
import { removeLeftovers } from './archive.ts';
import type { BackupService } from './backup-service.ts';
import { snapshotName, snapshotsToPrune } from './manifest.ts';

export interface BackupSchedule {
  readonly dir: string;
  readonly intervalMs: number;
  readonly keep: number;
}

export class BackupScheduler {
  readonly #service: BackupService;
  readonly #schedule: BackupSchedule;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;
  #round: Promise<void> = Promise.resolve();

  constructor(service: BackupService, schedule: BackupSchedule, log: Logger) {
    if (!(schedule.intervalMs > 0)) throw new RangeError(`intervalMs must be > 0, got ${schedule.intervalMs}`);
    if (!Number.isInteger(schedule.keep) || schedule.keep < 1) throw new RangeError(`keep must be a positive integer, got ${schedule.keep}`);
    this.#service = service;
    this.#schedule = schedule;
    this.#log = log;
  }

  /** Removes partial archives a killed round left in the directory, then schedules the first round. */
  start(): void {
    if (this.#timer !== null || this.#stopped) return;
    void removeLeftovers(this.#schedule.dir, false).then(
      (gone) => gone.length > 0 && this.#log.info({ dir: this.#schedule.dir, removed: gone }, 'removed partial archives of interrupted backups'),
      (err: unknown) => this.#log.warn({ err, dir: this.#schedule.dir }, 'cannot clean the backup directory'),
    );
    this.#next();
  }

  /** Stops the timer and waits for a round in progress (its archive is then complete or absent). */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#round;
  }

  /** One snapshot and prune; never throws (exported for tests). Returns the file made, or null. */
  async runOnce(now = new Date()): Promise<string | null> {
    const { dir, keep } = this.#schedule;
    let made: string | null = null;
    try {
      // createBackup makes the directory: a failure there is counted like any other.
      made = (await this.#service.create(join(dir, snapshotName(now)), 'scheduled')).file;
    } catch (err) {
      // Logged and counted by the service; the next round retries.
      this.#log.warn({ err: (err as Error).message, code: (err as { code?: string }).code, dir }, 'scheduled backup failed; the next round retries');
      return null;
    }
    try {
      for (const n of snapshotsToPrune(await readdir(dir), keep)) {
        await rm(join(dir, n), { force: true });
        this.#log.info({ file: join(dir, n), keep }, 'old backup pruned');
      }
    } catch (err) {
      this.#log.warn({ err, dir }, 'pruning old backups failed; the next round retries');
    }
    return made;
  }

  #next(): void {
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#round = this.runOnce().then(() => {
        if (!this.#stopped) this.#next();
      });
    }, jittered(this.#schedule.intervalMs, 0.1));
    this.#timer.unref();
  }
}
