/**
 * Hand-made tar.gz archives for attack tests: every header field is ours, so an archive
 * can hold what a well-behaved tar refuses to write (absolute names, `..`, links out of
 * the tree, device files, setuid modes, a gzip bomb).
 *
 *   const art = await hostileTar(dir, 'abs.tgz', [{ name: '/etc/evil', body: 'x' }]);
 */
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Artifact } from './artifacts.ts';

export interface TarEntry {
  readonly name: string;
  /** '0' file, '1' hard link, '2' symlink, '3' char device, '4' block device, '5' directory, '6' fifo. */
  readonly type?: '0' | '1' | '2' | '3' | '4' | '5' | '6';
  readonly mode?: number;
  readonly linkname?: string;
  readonly body?: string | Buffer;
}

function octal(n: number, width: number): string {
  return `${n.toString(8).padStart(width - 1, '0')}\0`;
}

function header(e: TarEntry, size: number): Buffer {
  const h = Buffer.alloc(512, 0);
  h.write(e.name, 0, 100, 'utf8');
  h.write(octal(e.mode ?? (e.type === '5' ? 0o755 : 0o644), 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii');
  h.write(octal(0, 8), 116, 'ascii');
  h.write(octal(size, 12), 124, 'ascii');
  h.write(octal(1_700_000_000, 12), 136, 'ascii');
  h.write('        ', 148, 'ascii');
  h.write(e.type ?? '0', 156, 'ascii');
  if (e.linkname !== undefined) h.write(e.linkname, 157, 100, 'utf8');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  if (e.type === '3' || e.type === '4') {
    h.write(octal(1, 8), 329, 'ascii');
    h.write(octal(3, 8), 337, 'ascii');
  }
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return h;
}

/** The raw (uncompressed) tar bytes of `entries`. */
export function tarBytes(entries: readonly TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const body = e.body === undefined ? Buffer.alloc(0) : Buffer.from(e.body);
    parts.push(header(e, body.length), body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** Writes `entries` as `dir/name` (tar.gz) and describes it as an artifact. */
export async function hostileTar(dir: string, name: string, entries: readonly TarEntry[]): Promise<Artifact> {
  const gz = gzipSync(tarBytes(entries), { level: 9 });
  const file = path.join(dir, name);
  await writeFile(file, gz);
  return { file, sha256: createHash('sha256').update(gz).digest('hex'), size: gz.length };
}
