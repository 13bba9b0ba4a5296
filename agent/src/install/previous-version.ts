/**
 * Which version a `package.rollback` returns to: `<pkg>/previous -> versions/<v>`, a
 * symlink beside `current`, replaced with one rename(2) (then a directory fsync) as the
 * last act of a commit.
 *
 * Why a symlink and not a field in packages.json: that file is a cache the CNI probe
 * reads and the installer rewrites from scratch when it is corrupt; losing it must not
 * lose the way back. The link lives in the package's own directory, next to the thing
 * it describes, is written exactly like `current`, can never be torn, and names a
 * version directory, including an adopted one (`adopted-<hash>`) the coordinator could
 * never name itself.
 *
 * What it becomes (nextPrevious, the one rule):
 * - a committed install of a different version: the version active before it;
 * - a committed install of the version already active (a repair): unchanged;
 * - a committed rollback: the version it returned to, i.e. the active one. A second
 *   rollback then finds its target already active and answers `already-installed`;
 *   it never switches forward again to the version just rolled away from. Going
 *   forward again takes an explicit `package.install` (which reuses the unpacked dir).
 */
import { rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { fsyncPath, replaceSymlink } from '@nodekeeper/common';
import { readVersionLink, versionDir, type PackageLayout } from './layout.ts';

/** A commit that moves the package from `from` to `to`. */
export interface CommitEvent {
  readonly kind: 'install' | 'rollback';
  readonly from: string | null;
  readonly to: string;
}

/** What `previous` must name after `e` commits, given what it names now. Pure. */
export function nextPrevious(now: string | null, e: CommitEvent): string | null {
  if (e.kind === 'rollback') return e.to;
  return e.from === e.to ? now : e.from;
}

/** The version `previous` names, or null when there is none. */
export function readPrevious(l: PackageLayout): Promise<string | null> {
  return readVersionLink(l.previous);
}

/**
 * Points `previous` at `versions/<version>` (atomic, durable), or removes it for null.
 * Refuses to name a version directory that is not there.
 */
export async function writePrevious(l: PackageLayout, version: string | null): Promise<void> {
  if (version === null) {
    await rm(l.previous, { force: true });
    await fsyncPath(l.pkgDir);
    return;
  }
  await stat(versionDir(l, version));
  await replaceSymlink(l.previous, path.join('versions', version));
}

/** Applies nextPrevious for a commit: reads the link, writes it only when it changes. */
export async function commitPrevious(l: PackageLayout, e: CommitEvent): Promise<string | null> {
  const now = await readPrevious(l);
  const next = nextPrevious(now, e);
  if (next !== now) await writePrevious(l, next);
  return next;
}
