/**
 * Where `config.restore` may write: only under the agent's allowed config dirs (host
 * paths, default the CNI conf dir), never through a symlink, never the dir itself. A
 * coordinator (or whoever holds its credential) must not be able to write
 * /etc/shadow or a unit file through this command.
 */
import { lstat, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { AppError } from '@nodekeeper/common';
import { resolveHostPath } from '../probes/config.ts';
import { RepairErrorCode } from './codes.ts';

/**
 * The allowed dir that lexically contains `hostPath` (a normalised absolute path
 * strictly below it), or null. Pure: `..`, `.` and doubled slashes are refused rather
 * than normalised, so what is checked is what is written.
 */
export function allowedDirOf(hostPath: string, allowedDirs: readonly string[]): string | null {
  if (!hostPath.startsWith('/') || hostPath.split('/').slice(1).some((s) => s === '' || s === '.' || s === '..')) return null;
  for (const raw of allowedDirs) {
    const dir = raw.replace(/\/+$/, '');
    if (dir !== '' && hostPath.startsWith(`${dir}/`)) return dir;
  }
  return null;
}

/**
 * Checks `hostPath` against the allow-list and prepares its parent: each component below
 * the allowed dir must be a real directory (missing ones are created, the allowed dir
 * included, since a deleted conf dir is a fault to repair). Returns the file's path under
 * the host root. Throws NK_REPAIR_PATH_NOT_ALLOWED before anything is created when the
 * path is outside the list or a component is a symlink or not a directory.
 */
export async function prepareConfigPath(hostRoot: string, hostPath: string, allowedDirs: readonly string[]): Promise<string> {
  const dir = allowedDirOf(hostPath, allowedDirs);
  if (dir === null) {
    throw new AppError(RepairErrorCode.pathNotAllowed, `${hostPath} is not under an allowed config dir (${allowedDirs.join(', ') || 'none'})`, { context: { path: hostPath } });
  }
  // The allowed dir is the agent's own configuration: trusted as configured (it may itself be a link).
  const base = resolveHostPath(hostRoot, dir);
  const below = hostPath.slice(dir.length + 1).split('/');
  const parents = below.slice(0, -1);
  // Look first, create after: a symlinked component refuses the whole path with nothing made.
  let at = base;
  const missing: string[] = [];
  for (const seg of parents) {
    at = path.join(at, seg);
    if (missing.length > 0) {
      missing.push(at);
      continue;
    }
    try {
      const st = await lstat(at);
      if (st.isSymbolicLink() || !st.isDirectory()) {
        throw new AppError(RepairErrorCode.pathNotAllowed, `${hostPath}: ${at} is ${st.isSymbolicLink() ? 'a symlink' : 'not a directory'}; refusing to write through it`, { context: { path: hostPath } });
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      missing.push(at);
    }
  }
  const file = path.join(base, ...below);
  try {
    const st = await lstat(file);
    if (st.isDirectory()) throw new AppError(RepairErrorCode.writeFailed, `${hostPath} is a directory`, { context: { path: hostPath } });
  } catch (err) {
    if (err instanceof AppError) throw err;
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await mkdir(base, { recursive: true, mode: 0o755 });
  for (const m of missing) await mkdir(m, { mode: 0o755 });
  return file;
}
