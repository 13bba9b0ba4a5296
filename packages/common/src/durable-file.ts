/**
 * Writes that survive a power cut or kill -9: write a temp file, fsync it, rename it over
 * the target (rename(2) is atomic), then fsync the directory so the rename itself is on
 * disk. A reader sees the old content or the new, never a torn file.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm, symlink } from 'node:fs/promises';
import path from 'node:path';

/** fsyncs a file or directory by path. */
export async function fsyncPath(p: string): Promise<void> {
  const fh = await open(p, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Atomically replaces `file` with `data` (mode default 0644) and makes it durable. */
export async function writeFileDurable(file: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const tmp = `${file}.tmp-${randomBytes(4).toString('hex')}`;
  const fh = await open(tmp, 'w', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncPath(path.dirname(file));
}

/**
 * Atomically points the symlink `link` at `target` (made fresh under a temp name, then
 * renamed over `link`), and fsyncs the directory. Works whether or not `link` exists,
 * and replaces a regular file too; never a directory (rename(2) refuses that).
 */
export async function replaceSymlink(link: string, target: string): Promise<void> {
  const tmp = `${link}.tmp-${randomBytes(4).toString('hex')}`;
  await symlink(target, tmp);
  try {
    await rename(tmp, link);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncPath(path.dirname(link));
}
