/**
 * docs/errors.md read as data: the documented codes, and the HTTP status a table row
 * gives a code (its last column, when that is a number). Tests hold the answers of a
 * real coordinator against it.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO } from './processes.ts';

export interface ErrorCatalog {
  readonly codes: ReadonlySet<string>;
  /** code -> documented HTTP status, for rows that name one. */
  readonly httpStatus: ReadonlyMap<string, number>;
}

export function readErrorCatalog(file = path.join(REPO, 'docs/errors.md')): ErrorCatalog {
  const codes = new Set<string>();
  const httpStatus = new Map<string, number>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const row = /^\|\s*`(NK_[A-Z0-9_]+)`\s*\|(.*)\|\s*$/.exec(line);
    if (row === null) continue;
    codes.add(row[1]!);
    const last = row[2]!.split('|').at(-1)?.trim() ?? '';
    if (/^\d{3}$/.test(last)) httpStatus.set(row[1]!, Number(last));
  }
  if (codes.size < 40) throw new Error(`docs/errors.md yielded only ${codes.size} codes; the table format changed?`);
  return { codes, httpStatus };
}
