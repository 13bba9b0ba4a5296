/**
 * Unpacks a verified artifact into `versions/<version>.staging`, checks it (every link
 * target there and resolving inside it), fsyncs it, records its digest and content hash,
 * and renames it to `versions/<version>`. Until that rename nothing another reader could
 * use exists; after it, the version is complete on disk.
 *
 * The archive is hostile until proven otherwise: an absolute or `..` name, a symlink or
 * hard link leading out of the tree, a device file or fifo, a setuid/setgid mode is
 * refused (NK_INSTALL_ARCHIVE_UNSAFE), and unpacking stops at the agent's bound on bytes
 * and entries (NK_INSTALL_ARCHIVE_TOO_LARGE: a gzip bomb).
 *
 * Re-staging the active version (its files were damaged) never leaves `current` at a
 * half-written directory: the fresh copy is put at `versions/<v>.spare` and `current`
 * switched there (one rename) before `versions/<v>` is replaced, then switched back.
 */
import { createReadStream } from 'node:fs';
import { chmod, copyFile, lstat, mkdir, readlink, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { AppError, fsyncPath, replaceSymlink, writeFileDurable } from '@nodekeeper/common';
import type { InstallParams } from '@nodekeeper/protocol';
import { InstallErrorCode } from './codes.ts';
import { checkTargetInside, type ArchiveLimits } from './confine.ts';
import { archiveEntryProblem, type ArchiveEntry } from './archive-rules.ts';
import { artifactMetaFile, fsyncTree, SPARE, stagingDir, treeHash, versionDir, type PackageLayout } from './layout.ts';

/**
 * Unpacks `file` (already verified) as `params.version`. `active`: the version is the one
 * `current` points at (a repair re-stage). Throws NK_INSTALL_STAGE_FAILED, _ARCHIVE_UNSAFE,
 * _ARCHIVE_TOO_LARGE or _TARGET_OUTSIDE.
 */
export async function stageVersion(l: PackageLayout, params: InstallParams, file: string, limits: ArchiveLimits, active = false): Promise<void> {
  const { version } = params;
  if (!active) {
    await unpackChecked(l, params, file, limits, versionDir(l, version));
    return;
  }
  const spare = `${versionDir(l, version)}${SPARE}`;
  const spareLink = path.join('versions', `${version}${SPARE}`);
  // Killed after the first switch last time: `current` is at a whole spare already; keep it.
  if ((await readlink(l.current).catch(() => null)) !== spareLink) {
    await unpackChecked(l, params, file, limits, spare, false);
    await replaceSymlink(l.current, spareLink);
  }
  await unpackChecked(l, params, file, limits, versionDir(l, version));
  await replaceSymlink(l.current, path.join('versions', version));
  await rm(spare, { recursive: true, force: true });
}

/** Unpacks into staging, checks, fsyncs and renames to `dest`; with `meta`, records the digest first. */
async function unpackChecked(l: PackageLayout, params: InstallParams, file: string, limits: ArchiveLimits, dest: string, meta = true): Promise<void> {
  const staging = stagingDir(l, params.version);
  const { manifest } = params;
  try {
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging, { recursive: true });
    if (manifest.format === 'tar.gz') await unpackTarGz(file, staging, limits);
    else {
      const name = manifest.binaryName;
      if (name === undefined) throw new Error('a binary package needs manifest.binaryName');
      await copyFile(file, path.join(staging, name));
      await chmod(path.join(staging, name), 0o755);
    }
    for (const link of manifest.links) {
      try {
        await lstat(path.join(staging, link.target));
      } catch (err) {
        throw new Error(`the artifact has no "${link.target}" for the link ${link.path}`, { cause: err });
      }
      await checkTargetInside(staging, link.target);
    }
    await fsyncTree(staging);
    // The digest goes to disk before the directory appears, so a version dir always has one;
    // the content hash lets a later reuse check that nothing changed since (installer.ts).
    if (meta) {
      // The manifest too: it is what was verified (signed, with trusted keys); a rollback is held to it.
      const record = { sha256: params.artifact.sha256, size: params.artifact.size, tree: await treeHash(staging), manifest };
      await writeFileDurable(artifactMetaFile(l, params.version), `${JSON.stringify(record)}\n`);
    }
    await rm(dest, { recursive: true, force: true });
    await rename(staging, dest);
    await fsyncPath(l.versionsDir);
  } catch (err) {
    await rm(staging, { recursive: true, force: true }).catch(() => {});
    if (err instanceof AppError) throw err;
    throw new AppError(InstallErrorCode.stageFailed, `staging ${params.package} ${params.version} failed: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Unpacks with every entry judged before it is written (archive-rules.ts), and the
 * decompressed stream cut off past the byte bound, so a bomb costs bounded time and disk.
 */
async function unpackTarGz(file: string, dir: string, limits: ArchiveLimits): Promise<void> {
  // Loaded here, not at start-up: installs are rare and the resident agent should not carry tar.
  const tar = await import('tar');
  let refusal: AppError | null = null;
  let entries = 0;
  let bytes = 0;
  const gunzip = createGunzip();
  const stop = (e: AppError): false => {
    refusal ??= e;
    gunzip.destroy(e);
    return false;
  };
  const unpack = new tar.Unpack({
    cwd: dir,
    // strict: a corrupt archive is an error, not a warning. Owners are never taken from it.
    strict: true,
    preserveOwner: false,
    filter: (p: string, entry: unknown) => {
      const e = entry as ArchiveEntry;
      entries += 1;
      bytes += e.size ?? 0;
      if (entries > limits.maxEntries) return stop(new AppError(InstallErrorCode.archiveTooLarge, `the archive has more than ${limits.maxEntries} entries`));
      if (bytes > limits.maxBytes) return stop(new AppError(InstallErrorCode.archiveTooLarge, `the archive unpacks to more than ${limits.maxBytes} bytes`));
      const problem = archiveEntryProblem({ ...e, path: p });
      return problem === null ? true : stop(new AppError(InstallErrorCode.archiveUnsafe, `archive entry ${JSON.stringify(p.slice(0, 200))}: ${problem}`));
    },
  });
  // Headers and padding are counted too: a bomb of empty entries or huge pax headers stops as well.
  let raw = 0;
  const bound = limits.maxBytes + (limits.maxEntries + 2) * 1024;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      raw += chunk.length;
      if (raw <= bound) return done(null, chunk);
      refusal ??= new AppError(InstallErrorCode.archiveTooLarge, `the archive unpacks to more than ${limits.maxBytes} bytes`);
      done(refusal);
    },
  });
  try {
    await pipeline(createReadStream(file), gunzip, meter, unpack as unknown as NodeJS.WritableStream);
  } catch (err) {
    throw refusal ?? err;
  }
  if (refusal !== null) throw refusal;
}
