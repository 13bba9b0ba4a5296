/**
 * Results of commands, durable by id (`<stateDir>/commands/<id>.json`), so a command
 * re-delivered after a reconnect or an agent restart is answered with its recorded
 * result and never runs twice.
 */
import { mkdir, readdir, readFile } from 'node:fs/promises';
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

  /** Every stored result's id (tests, diagnostics). */
  async ids(): Promise<string[]> {
    try {
      return (await readdir(this.dir)).filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)).sort();
    } catch {
      return [];
    }
  }
}
