/**
 * `nodekeeper-coordinator restore --from FILE --data-dir DIR`: puts a backup into a
 * fresh data dir. Only an absent or empty directory is accepted (restoring over a live
 * coordinator's state would mix two histories). The archive is extracted into a
 * staging directory beside DIR and checked whole (verify.ts) before DIR is touched;
 * then the staged files are moved in by rename, so DIR ends up either empty or whole.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { chmod, mkdir, readdir, rename, rm, rmdir } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { AppError } from '@nodekeeper/common';
import { fsyncPath } from '@nodekeeper/common';
import type { BackupManifest } from './manifest.ts';
import { extractVerified } from './verify.ts';

export const restoreUsage = `Usage: nodekeeper-coordinator restore --from FILE --data-dir DIR

Restores a backup (from 'nkctl backup create', a scheduled snapshot in --backup-dir,
or DATA_DIR/backups/pre-migration-*.tar.gz) into DIR, which must be absent or empty.
The archive's manifest, every file's sha256 and the store's integrity are checked
before anything is written to DIR. Then start the coordinator with --data-dir DIR.

Options:
  --from FILE       the backup archive (.tar.gz)
  --data-dir DIR    the data dir to create (default /var/lib/nodekeeper-coordinator)
  -h, --help        this text
`;

/** Why `dir` cannot receive a restore, or null: it must be absent or an empty directory. */
function dataDirProblem(dir: string): string | null {
  if (!existsSync(dir)) return null;
  if (!statSync(dir).isDirectory()) return `${dir} exists and is not a directory`;
  return null;
}

/** Restores `from` into `dataDir`; returns the manifest. See the module comment. */
export async function restoreBackup(from: string, dataDir: string): Promise<BackupManifest> {
  const dir = resolve(dataDir);
  const problem = dataDirProblem(dir);
  const notEmpty = problem === null && existsSync(dir) ? await readdir(dir) : [];
  if (problem !== null || notEmpty.length > 0) {
    throw new AppError('NK_RESTORE_DATA_DIR_NOT_EMPTY',
      `${problem ?? `${dir} is not empty (${notEmpty.slice(0, 3).join(', ')}${notEmpty.length > 3 ? ', ...' : ''})`}: restore only into a fresh data dir; move the old one aside first`,
      { context: { dataDir: dir } });
  }
  if (!existsSync(from)) throw new AppError('NK_BACKUP_ARCHIVE_INVALID', `no backup file at ${from}`);
  await mkdir(dirname(dir), { recursive: true });
  const staging = join(dirname(dir), `.${basename(dir)}.restore-${randomBytes(4).toString('hex')}`);
  try {
    const manifest = await extractVerified(from, staging);
    for (const sub of ['', 'pki', 'artifacts', 'artifacts/sha256']) if (existsSync(join(staging, sub))) await chmod(join(staging, sub), 0o700);
    if (!existsSync(dir)) {
      await rename(staging, dir);
    } else {
      // An existing empty dir may be a mount point or systemd's StateDirectory=: keep it, move the files in.
      for (const n of await readdir(staging)) await rename(join(staging, n), join(dir, n));
      await rmdir(staging);
      await chmod(dir, 0o700);
    }
    await fsyncPath(dir);
    await fsyncPath(dirname(dir));
    return manifest;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** The `restore` subcommand: parses its flags, restores, prints a summary. Returns the exit code. */
export async function restoreMain(argv: readonly string[], out: (s: string) => void, err: (s: string) => void): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: [...argv], strict: true, allowPositionals: false, options: { from: { type: 'string' }, 'data-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' } } }));
  } catch (e) {
    err(`nodekeeper-coordinator restore: ${(e as Error).message} (NK_CONFIG_INVALID)\n${restoreUsage}`);
    return 2;
  }
  if (values.help === true) {
    out(restoreUsage);
    return 0;
  }
  if (values.from === undefined || values.from === '') {
    err(`nodekeeper-coordinator restore: --from FILE is required (NK_CONFIG_INVALID)\n${restoreUsage}`);
    return 2;
  }
  const dataDir = values['data-dir'] ?? '/var/lib/nodekeeper-coordinator';
  try {
    const m = await restoreBackup(values.from, dataDir);
    out(`restored ${values.from} into ${resolve(dataDir)}\n` +
      `  taken ${m.createdAt} by coordinator ${m.coordinatorVersion} (${m.reason}), store schema version ${m.schemaVersion}\n` +
      `  ${m.files.length} files checked (sha256), store integrity ok\n` +
      `Start the coordinator with --data-dir ${resolve(dataDir)}; agents reconnect with their credentials and the same CA.\n`);
    return 0;
  } catch (e) {
    err(`nodekeeper-coordinator restore: ${(e as Error).message}${e instanceof AppError ? ` (${e.code})` : ''}\n`);
    return 1;
  }
}
