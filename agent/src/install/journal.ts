/**
 * The install journal: one file per command, `<stateDir>/journal/<commandId>.json`,
 * rewritten durably (temp + fsync + rename + directory fsync) BEFORE each step acts, so
 * after a kill -9 the agent knows the last step it may have begun, the previous and the
 * target versions, and whether it was already rolling back.
 */
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { AppError, fsyncPath, writeFileDurable } from '@nodekeeper/common';
import type { InstallParams, InstallStep, RollbackParams } from '@nodekeeper/protocol';
import { InstallErrorCode } from './codes.ts';

export const ROLLBACK_STEPS = ['rollback-switch', 'rollback-restart', 'rollback-health'] as const;
export type RollbackStep = (typeof ROLLBACK_STEPS)[number];
export type JournalStep = InstallStep | RollbackStep;

export interface StepFailure {
  readonly step: InstallStep;
  readonly code: string;
  readonly message: string;
}

/** The record of a `package.install` (records without `kind` are installs: older agents wrote them). */
export interface JournalRecord {
  readonly kind?: 'install';
  readonly commandId: string;
  readonly params: InstallParams;
  readonly previousVersion: string | null;
  /** The step about to act (or acting) when the record was written. */
  readonly step: JournalStep;
  /** Set once the install failed after the switch and is rolling back. */
  readonly failure?: StepFailure;
  /** Every step entered, in order, with the wall time (for operators; not for decisions). */
  readonly history: ReadonlyArray<{ readonly step: JournalStep; readonly at: string }>;
}

/**
 * The record of a `package.rollback`: steps switch, restart, health, commit; when one
 * fails, `failure` is set and the rollback-* steps switch forward again to `fromVersion`.
 */
export interface RollbackJournalRecord {
  readonly kind: 'rollback';
  readonly commandId: string;
  readonly params: RollbackParams;
  /** Active when the rollback began (what a failed rollback returns to). */
  readonly fromVersion: string | null;
  /** The `previous` version the rollback switches to. */
  readonly toVersion: string;
  readonly step: JournalStep;
  readonly failure?: StepFailure;
  readonly history: ReadonlyArray<{ readonly step: JournalStep; readonly at: string }>;
}

export type AnyJournalRecord = JournalRecord | RollbackJournalRecord;

const ID = /^[A-Za-z0-9._-]{1,128}$/;

export class Journal {
  readonly dir: string;

  constructor(stateDir: string) {
    this.dir = path.join(stateDir, 'journal');
  }

  private file(commandId: string): string {
    if (!ID.test(commandId)) throw new TypeError(`not a command id: ${JSON.stringify(commandId)}`);
    return path.join(this.dir, `${commandId}.json`);
  }

  /** Appends `step` to the command's record (creating it) and makes it durable. */
  enter(base: Omit<JournalRecord, 'history' | 'step'>, prior: JournalRecord | null, step: JournalStep, at: Date = new Date()): Promise<JournalRecord> {
    return this.write(base, prior, step, at);
  }

  /** enter() for a `package.rollback`: same file, same durability, `kind: 'rollback'`. */
  enterRollback(base: Omit<RollbackJournalRecord, 'history' | 'step'>, prior: RollbackJournalRecord | null, step: JournalStep, at: Date = new Date()): Promise<RollbackJournalRecord> {
    return this.write(base, prior, step, at);
  }

  private async write<R extends AnyJournalRecord>(base: Omit<R, 'history' | 'step'>, prior: R | null, step: JournalStep, at: Date): Promise<R> {
    const rec = { ...base, step, history: [...(prior?.history ?? []), { step, at: at.toISOString() }] } as unknown as R;
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      await writeFileDurable(this.file(base.commandId), `${JSON.stringify(rec)}\n`, 0o600);
    } catch (err) {
      throw new AppError(InstallErrorCode.stateFailed, `cannot write the install journal in ${this.dir}: ${(err as Error).message}`, { cause: err });
    }
    return rec;
  }

  /** Unfinished installs, oldest command id first. A corrupt record is reported, not skipped. */
  async unfinished(): Promise<AnyJournalRecord[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: AnyJournalRecord[] = [];
    for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
      const file = path.join(this.dir, name);
      try {
        out.push(JSON.parse(await readFile(file, 'utf8')) as AnyJournalRecord);
      } catch (err) {
        throw new AppError(InstallErrorCode.stateFailed, `install journal ${file} is unreadable: ${(err as Error).message}`, { cause: err });
      }
    }
    return out;
  }

  /** Removes a finished command's record (after its result is stored). */
  async remove(commandId: string): Promise<void> {
    await rm(this.file(commandId), { force: true });
    await fsyncPath(this.dir).catch(() => {});
  }
}
