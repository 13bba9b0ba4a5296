/**
 * Results of commands, durable by id (`<stateDir>/commands/<id>.json`), so a command
 * re-delivered after a reconnect or an agent restart is answered with its recorded
 * result and never runs twice.
 *
 * Results are pruned once older than the retention (14 days by default): by then the
 * coordinator has long stopped re-delivering the command (it gives up on a sent command
 * after its timeout, minutes to hours), so a pruned id cannot come back.
 */
import { mkdir, readdir, readFile, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { AppError, writeFileDurable } from '@nodekeeper/common';
import type { CommandResult } from '@nodekeeper/protocol';
import { InstallErrorCode } from '../install/codes.ts';

export interface StoredResult {
  readonly commandId: string;
  readonly kind: string;
  readonly finishedAt: string;
  /** The frame sent to the coordinator, kept verbatim for re-delivery. */
  readonly frame: CommandResult;
}

const ID = /^[A-Za-z0-9._-]{1,128}$/;

export class CommandStore {
  readonly dir: string;

  constructor(stateDir: string) {
    this.dir = path.join(stateDir, 'commands');
  }

  /** True when `id` can name a file here; other ids are answered without being stored. */
  static validId(id: string): boolean {
    return ID.test(id);
  }

  private file(id: string): string {
    if (!ID.test(id)) throw new TypeError(`not a command id: ${JSON.stringify(id)}`);
    return path.join(this.dir, `${id}.json`);
  }

  async get(id: string): Promise<StoredResult | null> {
    try {
      return JSON.parse(await readFile(this.file(id), 'utf8')) as StoredResult;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new AppError(InstallErrorCode.stateFailed, `command result ${this.file(id)} is unreadable: ${(err as Error).message}`, { cause: err });
    }
  }

  async put(r: StoredResult): Promise<void> {
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      await writeFileDurable(this.file(r.commandId), `${JSON.stringify(r)}\n`, 0o600);
    } catch (err) {
      throw new AppError(InstallErrorCode.stateFailed, `cannot record the result of command ${r.commandId}: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * Deletes results recorded (file modification time) more than `maxAgeMs` before `now`;
   * returns how many. One file at a time, async: a large backlog never blocks the agent.
   */
  async prune(maxAgeMs: number, now: number = Date.now()): Promise<number> {
    let names: string[];
    try {
      names = (await readdir(this.dir)).filter((n) => n.endsWith('.json'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw new AppError(InstallErrorCode.stateFailed, `cannot list ${this.dir}: ${(err as Error).message}`, { cause: err });
    }
    let pruned = 0;
    for (const name of names) {
      const file = path.join(this.dir, name);
      try {
        if (now - (await stat(file)).mtimeMs <= maxAgeMs) continue;
        await unlink(file);
        pruned += 1;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new AppError(InstallErrorCode.stateFailed, `cannot prune ${file}: ${(err as Error).message}`, { cause: err });
      }
    }
    return pruned;
  }

  /** Every stored result's id (tests, diagnostics). */
  async ids(): Promise<string[]> {
    try {
      return (await readdir(this.dir)).filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)).sort();
    } catch {
      return [];
    }
  }
}
