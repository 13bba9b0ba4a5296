/**
 * Artifact bytes, content-addressed: `<dir>/sha256/<hex>`. An upload is streamed to a
 * temporary file while it is hashed, fsynced, and renamed into place only when complete,
 * so a crash mid-upload leaves no half artifact behind, and memory stays bounded.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, type ReadStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { AppError } from '@nodekeeper/common';

export class ArtifactStore {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
    mkdirSync(join(dir, 'sha256'), { recursive: true, mode: 0o700 });
    mkdirSync(join(dir, 'incoming'), { recursive: true, mode: 0o700 });
  }

  path(sha256: string): string {
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new TypeError(`not a sha256 digest: ${sha256}`);
    return join(this.dir, 'sha256', sha256);
  }

  has(sha256: string): boolean {
    return existsSync(this.path(sha256));
  }

  read(sha256: string): ReadStream {
    return createReadStream(this.path(sha256));
  }

  /** Streams `body` in; NK_ARTIFACT_TOO_LARGE past `maxBytes`, NK_ARTIFACT_EMPTY for no bytes. */
  async put(body: Readable, maxBytes: number): Promise<{ sha256: string; size: number }> {
    const tmp = join(this.dir, 'incoming', `${Date.now()}-${randomBytes(6).toString('hex')}.partial`);
    const hash = createHash('sha256');
    let size = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        size += chunk.length;
        if (size > maxBytes) {
          done(new AppError('NK_ARTIFACT_TOO_LARGE', `artifact exceeds the limit of ${maxBytes} bytes`));
          return;
        }
        hash.update(chunk);
        done(null, chunk);
      },
    });
    try {
      await pipeline(body, meter, createWriteStream(tmp, { mode: 0o600 }));
      if (size === 0) throw new AppError('NK_ARTIFACT_EMPTY', 'the artifact has no bytes');
      const fh = await open(tmp, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      const sha256 = hash.digest('hex');
      await rename(tmp, this.path(sha256));
      return { sha256, size };
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }
}
