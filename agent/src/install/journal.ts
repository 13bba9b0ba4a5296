/**
 * The install journal: one file per command, `<stateDir>/journal/<commandId>.json`,
 * rewritten durably (temp + fsync + rename + directory fsync) BEFORE each step acts, so
 * after a kill -9 the agent knows the last step it may have begun, the previous and the
 * target versions, and whether it was already rolling back.
 */
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
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

/** Where unreadable records go (a directory, so scan() never reads them again). */
const QUARANTINE = 'quarantine';

/** A record scan() moved aside: its command (from the file name), where it went, and why. */
export interface QuarantinedRecord {
  readonly commandId: string | null;
  readonly file: string;
  readonly problem: string;
}

/** Why `rec` is not a journal record of `commandId` (or null); only what recovery relies on. */
function recordProblem(rec: unknown, commandId: string): string | null {
  if (typeof rec !== 'object' || rec === null || Array.isArray(rec)) return 'not a JSON object';
  const r = rec as Record<string, unknown>;
  if (r['commandId'] !== commandId) return `its commandId is ${JSON.stringify(r['commandId'])}, not ${commandId}`;
  if (typeof r['step'] !== 'string' || !Array.isArray(r['history'])) return 'no step or history';
  const params = r['params'];
  if (typeof params !== 'object' || params === null || typeof (params as Record<string, unknown>)['package'] !== 'string') return 'no params.package';
  if (typeof (params as Record<string, unknown>)['manifest'] !== 'object') return 'no params.manifest';
  if (r['kind'] === 'rollback' ? typeof r['toVersion'] !== 'string' : typeof (params as Record<string, unknown>)['version'] !== 'string') return 'no version';
  return null;
}

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

  /** Unfinished installs, oldest command id first (corrupt records are quarantined: see scan()). */
  async unfinished(): Promise<AnyJournalRecord[]> {
    return (await this.scan()).records;
  }

  /**
   * Unfinished installs, oldest command id first, and the records that could not be read.
   * A corrupt record (torn, not JSON, not a record of its own command) is moved to
   * `journal/quarantine/<name>.<time>` as it was, for a human, so it neither stops the
   * recovery of the others nor trips every later start; the caller answers its command.
   */
  async scan(now: Date = new Date()): Promise<{ records: AnyJournalRecord[]; quarantined: QuarantinedRecord[] }> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], quarantined: [] };
      throw err;
    }
    const records: AnyJournalRecord[] = [];
    const quarantined: QuarantinedRecord[] = [];
    for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
      const file = path.join(this.dir, name);
      const commandId = name.slice(0, -'.json'.length);
      let problem: string;
      try {
        const rec = JSON.parse(await readFile(file, 'utf8')) as unknown;
        const why = recordProblem(rec, commandId);
        if (why === null) {
          records.push(rec as AnyJournalRecord);
          continue;
        }
        problem = why;
      } catch (err) {
        problem = (err as Error).message;
      }
      const dest = path.join(this.dir, QUARANTINE, `${name}.${now.toISOString().replace(/[:.]/g, '-')}`);
      try {
        await mkdir(path.dirname(dest), { recursive: true, mode: 0o700 });
        await rename(file, dest);
        await fsyncPath(this.dir).catch(() => {});
      } catch (err) {
        throw new AppError(InstallErrorCode.stateFailed, `install journal ${file} is unreadable (${problem}) and could not be moved aside: ${(err as Error).message}`, { cause: err });
      }
      quarantined.push({ commandId: ID.test(commandId) ? commandId : null, file: dest, problem });
    }
    return { records, quarantined };
  }

  /** Removes a finished command's record (after its result is stored). */
  async remove(commandId: string): Promise<void> {
    await rm(this.file(commandId), { force: true });
    await fsyncPath(this.dir).catch(() => {});
  }
}
