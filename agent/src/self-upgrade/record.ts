/**
 * The pending-upgrade record of the agent's own upgrade, and the files the guard
 * (agent/systemd/nodekeeper-agent-guard, a POSIX sh script) shares with the agent, all in
 * the package's own directory, beside `current`:
 *
 *   <pkgDir>/upgrade.pending   written (fsync) before `current` flips; removed on confirm
 *   <pkgDir>/upgrade.boots     one line per start the guard saw while the record stood
 *   <pkgDir>/upgrade.reverted  written by the guard when it switched back, with the reason
 *   <pkgDir>/guard             the guard itself, at a place no version owns
 *
 * `key=value` lines, not JSON: the guard must read them with nothing but sh, and it must
 * not depend on the new version's code (a bad new version is what it guards against).
 */
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { fsyncPath, writeFileDurable } from '@nodekeeper/common';
import type { PackageLayout } from '../install/layout.ts';

export interface PendingUpgrade {
  /** The install command the upgrade answers. */
  readonly commandId: string;
  readonly from: string;
  readonly to: string;
  /** Wall-clock seconds: not confirmed by then, the guard switches back. */
  readonly deadline: number;
  /** More starts of the new version than this without a confirm, and the guard switches back. */
  readonly maxBoots: number;
}

/** What the guard may read without quoting: versions and command ids. */
const TOKEN = /^[0-9A-Za-z][0-9A-Za-z.+~_-]{0,127}$/;

export const upgradeFiles = (l: PackageLayout) => ({
  pending: path.join(l.pkgDir, 'upgrade.pending'),
  boots: path.join(l.pkgDir, 'upgrade.boots'),
  reverted: path.join(l.pkgDir, 'upgrade.reverted'),
  guard: path.join(l.pkgDir, 'guard'),
});

/** The record as the guard reads it. Throws a TypeError for a value the guard could not read. */
export function formatPending(p: PendingUpgrade): string {
  for (const v of [p.commandId, p.from, p.to]) if (!TOKEN.test(v)) throw new TypeError(`not a version or command id: ${JSON.stringify(v)}`);
  if (!Number.isSafeInteger(p.deadline) || p.deadline <= 0) throw new TypeError(`not a deadline: ${p.deadline}`);
  if (!Number.isSafeInteger(p.maxBoots) || p.maxBoots < 1) throw new TypeError(`not a boot count: ${p.maxBoots}`);
  return `command=${p.commandId}\nfrom=${p.from}\nto=${p.to}\ndeadline=${p.deadline}\nmaxBoots=${p.maxBoots}\n`;
}

/** `key=value` lines to a map (later keys win; lines without `=` are skipped). */
function fields(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return out;
}

/** The record in `text`, or null when it is not a whole one (a torn write is never trusted). */
export function parsePending(text: string): PendingUpgrade | null {
  const f = fields(text);
  const [commandId, from, to] = [f.get('command'), f.get('from'), f.get('to')];
  const deadline = Number(f.get('deadline'));
  const maxBoots = Number(f.get('maxBoots'));
  if (commandId === undefined || from === undefined || to === undefined) return null;
  if (![commandId, from, to].every((v) => TOKEN.test(v)) || !Number.isSafeInteger(deadline) || !Number.isSafeInteger(maxBoots) || maxBoots < 1) return null;
  return { commandId, from, to, deadline, maxBoots };
}

/** The record on disk: null when absent; `'corrupt'` when present but not a whole record. */
export async function readPending(l: PackageLayout): Promise<PendingUpgrade | 'corrupt' | null> {
  const text = await readOptional(upgradeFiles(l).pending);
  return text === null ? null : parsePending(text) ?? 'corrupt';
}

/** Writes the record durably (temp, fsync, rename, directory fsync), clearing any old boot count or revert. */
export async function writePending(l: PackageLayout, p: PendingUpgrade): Promise<void> {
  const f = upgradeFiles(l);
  await rm(f.boots, { force: true });
  await rm(f.reverted, { force: true });
  await writeFileDurable(f.pending, formatPending(p), 0o600);
}

/** Why the guard switched back (its `reason=` line), or null when it did not. */
export async function readReverted(l: PackageLayout): Promise<string | null> {
  const text = await readOptional(upgradeFiles(l).reverted);
  if (text === null) return null;
  return fields(text).get('reason') ?? 'no reason recorded';
}

/** Starts of the new version the guard counted. */
export async function readBoots(l: PackageLayout): Promise<number> {
  const text = await readOptional(upgradeFiles(l).boots);
  return text === null ? 0 : text.split('\n').filter((x) => x !== '').length;
}

/** Removes the record LAST (it is the commit point): boots and revert marker first. */
export async function clearPending(l: PackageLayout): Promise<void> {
  const f = upgradeFiles(l);
  await rm(f.boots, { force: true });
  await rm(f.reverted, { force: true });
  await rm(f.pending, { force: true });
  await fsyncPath(l.pkgDir);
}

async function readOptional(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}
