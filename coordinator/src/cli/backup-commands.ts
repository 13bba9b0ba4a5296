/**
 * `nkctl backup create [-o FILE]`: asks the coordinator for a backup (POST /v1/backups,
 * admin credential) and writes the archive it streams back. The download goes to a
 * hidden temporary file beside FILE; its sha256 is checked against the coordinator's
 * header and the archive itself (manifest, every file's sha256, the store's integrity)
 * is checked before it is fsynced and renamed to FILE. Killed at any point, nkctl leaves
 * no file under FILE's name.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdtemp, rename, rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { AppError } from '@nodekeeper/common';
import { fsyncPath } from '@nodekeeper/common';
import { snapshotName, type BackupManifest } from '../backup/manifest.ts';
import { extractVerified } from '../backup/verify.ts';
import { interpret, networkError } from './api-client.ts';
import { CliErrorCode, usageError } from './cli-errors.ts';
import type { ConnectionConfig } from './config.ts';
import type { CommandContext } from './command-context.ts';

/** How long the coordinator may take to make the archive before its first byte. */
const MAKE_DEADLINE_MS = 10 * 60_000;

/** POSTs /v1/backups and streams a 200 answer into `file`; returns the sha256 the server announced and the one received. */
function download(cfg: ConnectionConfig, userAgent: string, file: string): Promise<{ announced: string | null; received: string; size: number }> {
  const url = new URL(`${cfg.server}/v1/backups`);
  const secure = url.protocol === 'https:';
  const opts: https.RequestOptions = {
    method: 'POST', agent: false,
    headers: { authorization: `Bearer ${cfg.token}`, 'user-agent': userAgent, accept: 'application/gzip, application/json', 'content-length': '0' },
  };
  if (secure) {
    if (cfg.ca !== null) opts.ca = cfg.ca;
    opts.rejectUnauthorized = !cfg.insecureSkipTlsVerify;
  }
  return new Promise((resolvePromise, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const req = (secure ? https : http).request(url, opts, (res) => {
      clearTimeout(timer);
      if (res.statusCode !== 200) {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.length < 64 && chunks.push(c));
        res.on('end', () => {
          try {
            interpret('POST /v1/backups', res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'));
            reject(new AppError(CliErrorCode.badResponse, `unexpected response to POST /v1/backups: HTTP ${res.statusCode} without an archive`));
          } catch (err) {
            reject(err);
          }
        });
        return;
      }
      const hash = createHash('sha256');
      let size = 0;
      // The deadline is on silence once bytes flow: a big archive may take longer than any fixed one.
      const idle = () => {
        clearTimeout(timer);
        if (cfg.timeoutMs > 0) timer = setTimeout(() => res.destroy(new AppError(CliErrorCode.timeout, `the backup download stalled for ${cfg.timeoutMs / 1000}s`)), cfg.timeoutMs);
      };
      idle();
      const meter = new Transform({
        transform(chunk: Buffer, _enc, done) {
          idle();
          size += chunk.length;
          hash.update(chunk);
          done(null, chunk);
        },
      });
      pipeline(res, meter, createWriteStream(file, { mode: 0o600 })).then(() => {
        clearTimeout(timer);
        const announced = res.headers['x-nodekeeper-backup-sha256'];
        resolvePromise({ announced: typeof announced === 'string' ? announced : null, received: hash.digest('hex'), size });
      }, (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof AppError ? err : networkError(err, cfg));
      });
    });
    timer = setTimeout(() => req.destroy(new AppError(CliErrorCode.timeout, `the coordinator made no backup within ${MAKE_DEADLINE_MS / 60_000} minutes`)), MAKE_DEADLINE_MS);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err instanceof AppError ? err : networkError(err, cfg));
    });
    req.end();
  });
}

/** Checks a downloaded archive the way `restore` will, in a scratch directory removed afterwards. */
async function verifyDownload(file: string): Promise<BackupManifest> {
  const scratch = await mkdtemp(join(tmpdir(), 'nkctl-backup-verify-'));
  try {
    return await extractVerified(file, join(scratch, 'data'));
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

export function addBackupCommands(program: Command, ctx: CommandContext): void {
  const { io, client } = ctx;
  const backup = program.command('backup').description('Back up the coordinator: its store, CA and keys, credentials and artifacts, as one checked archive.');
  backup
    .command('create')
    .description('Take an online backup on the coordinator and write it here (admin credential). Restore with nodekeeper-coordinator restore.')
    .option('-o, --output-file <file>', 'where to write the archive (default ./nodekeeper-backup-<time>.tar.gz); must not exist')
    .action(async (opts: { outputFile?: string }, cmd: Command) => {
      const target = resolve(io.cwd, opts.outputFile ?? snapshotName(new Date(io.now())));
      if (existsSync(target)) throw usageError(CliErrorCode.usage, `${target} exists; choose another -o FILE or move it away (a backup never overwrites one)`);
      if (!existsSync(dirname(target))) throw usageError(CliErrorCode.usage, `the directory of ${target} does not exist`);
      const { cfg } = client(cmd);
      const partial = join(dirname(target), `.${basename(target)}.partial-${randomBytes(4).toString('hex')}`);
      try {
        const got = await download(cfg, `nkctl/${io.version}`, partial);
        if (got.announced !== null && got.announced !== got.received) {
          throw new AppError(CliErrorCode.digestMismatch, `the archive received has sha256 ${got.received}, the coordinator sent ${got.announced}: the download was damaged`);
        }
        const m = await verifyDownload(partial);
        await fsyncPath(partial);
        await rename(partial, target);
        await fsyncPath(dirname(target));
        const artifacts = m.files.filter((f) => f.path.startsWith('artifacts/')).length;
        io.stdout(`backup written to ${target}\n` +
          `  ${got.size} bytes, sha256 ${got.received}\n` +
          `  store schema version ${m.schemaVersion} (integrity ok), ${m.files.length} files checked: store, ${m.files.some((f) => f.path === 'pki/ca.key') ? 'CA and keys, ' : ''}credentials, ${artifacts} artifact(s)\n` +
          `It holds the CA key and credentials: keep it as secret as the coordinator's data dir.\n` +
          `Restore: nodekeeper-coordinator restore --from ${target} --data-dir DIR\n`);
      } finally {
        await rm(partial, { force: true });
      }
    });
}
