/**
 * `POST /v1/backups` (admin only): takes a backup (backup/archive.ts) and streams the
 * archive back as application/gzip, with its sha256 in `X-Nodekeeper-Backup-Sha256`, so
 * nkctl on another host gets one file. The archive is made whole on the coordinator's
 * disk first (in the data dir's backups/), so every failure is a coded JSON error
 * before the first byte, and removed once sent or abandoned.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { BackupService } from '../backup/backup-service.ts';
import { snapshotName } from '../backup/manifest.ts';
import type { ApiDeps, Route } from './http-util.ts';

export function backupRoutes(deps: Pick<ApiDeps, 'log'>, backups: BackupService): Route[] {
  return [{
    method: 'POST', pattern: /^\/v1\/backups$/, name: 'backup-create', access: 'admin',
    handler: async ({ req, res }) => {
      req.resume(); // no body is read; whatever is sent is drained, never stored
      const now = new Date();
      const name = snapshotName(now);
      const file = join(backups.dataDir, 'backups', `.download-${randomBytes(4).toString('hex')}-${name}`);
      try {
        const r = await backups.create(file, 'manual');
        res.writeHead(200, {
          'Content-Type': 'application/gzip',
          'Content-Length': r.size,
          'Content-Disposition': `attachment; filename="${name}"`,
          'Cache-Control': 'no-store',
          'X-Nodekeeper-Backup-Sha256': r.sha256,
          'X-Nodekeeper-Backup-Schema-Version': String(r.manifest.schemaVersion),
        });
        await pipeline(createReadStream(file), res).catch((err: unknown) => {
          deps.log.warn({ err: (err as Error).message }, 'backup download abandoned by the client');
        });
      } finally {
        await rm(file, { force: true });
      }
    },
  }];
}
