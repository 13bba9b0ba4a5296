/**
 * The durable record of repairs this agent did (`<stateDir>/repairs/log.json`): every
 * command-driven and local repair, newest last, bounded. Local self-repair counts its
 * budget from it (so an agent restart does not refill the budget), and the agent reports
 * the local ones not yet acknowledged by a connection (see local-repair.ts).
 */
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { AppError, writeFileDurable } from '@nodekeeper/common';
import { RepairErrorCode } from './codes.ts';

export interface RepairRecord {
  /** ISO time on the agent's clock (the coordinator never compares it with its own). */
  readonly at: string;
  /** `command`: asked by the coordinator; `local`: the agent's own self-repair. */
  readonly source: 'command' | 'local';
  readonly kind: string;
  readonly target: string;
  readonly outcome: string;
  readonly message: string;
  readonly commandId?: string;
  /** Local repairs: true once a report mentioning it went out on a ready connection. */
  reported?: boolean;
}

/** Enough to judge any sensible budget period, small enough to rewrite at every repair. */
const MAX_RECORDS = 200;

export class RepairLog {
  readonly file: string;
  /** Serialises read-modify-write cycles within this process. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(stateDir: string) {
    this.file = path.join(stateDir, 'repairs', 'log.json');
  }

  /** Every record, oldest first; an absent log is empty. */
  async all(): Promise<RepairRecord[]> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new AppError(RepairErrorCode.stateFailed, `cannot read ${this.file}: ${(err as Error).message}`, { cause: err });
    }
    try {
      const parsed = JSON.parse(text) as unknown;
      if (!Array.isArray(parsed)) throw new Error('not a JSON array');
      return parsed as RepairRecord[];
    } catch (err) {
      throw new AppError(RepairErrorCode.stateFailed, `${this.file} is corrupt: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Appends `rec` durably (atomic rewrite), keeping the newest MAX_RECORDS. */
  append(rec: RepairRecord): Promise<void> {
    return this.update((all) => [...all, rec]);
  }

  /** Applies `fn` to the records and writes the result durably. */
  update(fn: (all: RepairRecord[]) => RepairRecord[]): Promise<void> {
    const next = this.chain.then(async () => {
      const all = fn(await this.all()).slice(-MAX_RECORDS);
      try {
        await mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
        await writeFileDurable(this.file, `${JSON.stringify(all)}\n`, 0o600);
      } catch (err) {
        throw new AppError(RepairErrorCode.stateFailed, `cannot record a repair in ${this.file}: ${(err as Error).message}`, { cause: err });
      }
    });
    this.chain = next.catch(() => {});
    return next;
  }
}
