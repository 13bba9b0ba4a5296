/**
 * Which tar entries a package archive may hold, judged from the header alone, before
 * anything is written. Pure. Allowed: regular files, directories, and symlinks and hard
 * links that stay inside the tree; no absolute or `..` names, no device files, fifos or
 * other special types, no setuid/setgid bits (a package never needs them, and a setuid
 * binary under /usr/bin would be a local root for anyone).
 */
import path from 'node:path';

/** What the rules read of a tar entry (node-tar's ReadEntry has these fields). */
export interface ArchiveEntry {
  readonly path: string;
  readonly type: string;
  readonly linkpath?: string | undefined;
  readonly mode?: number | undefined;
  readonly size?: number | undefined;
}

const FILE_TYPES: ReadonlySet<string> = new Set(['File', 'OldFile', 'ContiguousFile', 'Directory', 'SymbolicLink', 'Link']);

/** True when a relative archive path would leave the tree (or is not relative). */
function leaves(p: string): boolean {
  if (p.startsWith('/') || p.includes('\0') || p.includes('\\') || /^[A-Za-z]:/.test(p)) return true;
  return p.split('/').includes('..');
}

/** Why `e` may not be unpacked, or null. */
export function archiveEntryProblem(e: ArchiveEntry): string | null {
  if (!FILE_TYPES.has(e.type)) return `a ${e.type} entry (only files, directories and links inside the tree are allowed)`;
  if (leaves(e.path)) return 'an absolute path or a ".." segment';
  if (e.mode !== undefined && (e.mode & 0o6000) !== 0) return `mode ${(e.mode & 0o7777).toString(8)} has the setuid or setgid bit`;
  if (e.type === 'SymbolicLink' || e.type === 'Link') {
    const link = e.linkpath ?? '';
    if (link === '') return 'a link with no target';
    if (link.startsWith('/')) return `a link to the absolute path ${JSON.stringify(link.slice(0, 200))}`;
    // A symlink resolves from its own directory; a hard link's target is named from the archive root.
    const from = e.type === 'SymbolicLink' ? path.posix.dirname(e.path) : '.';
    const resolved = path.posix.normalize(path.posix.join(from, link));
    const outside = resolved === '..' || resolved.startsWith('../') || link.includes('\0') || link.includes('\\');
    if (outside || (e.type === 'Link' && leaves(link))) {
      return `a link to ${JSON.stringify(link.slice(0, 200))}, outside the tree`;
    }
  }
  return null;
}
