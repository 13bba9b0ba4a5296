/**
 * Unpacks a verified artifact into `versions/<version>.staging`, checks it holds every
 * link target, fsyncs it, records its digest, and renames it to `versions/<version>`.
 * Until that rename nothing another reader could use exists; after it, the version is
 * complete on disk.
 */
import { chmod, copyFile, lstat, mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { AppError, fsyncPath, writeFileDurable } from '@nodekeeper/common';
import type { InstallParams } from '@nodekeeper/protocol';
import { InstallErrorCode } from './codes.ts';
import { artifactMetaFile, fsyncTree, stagingDir, versionDir, type PackageLayout } from './layout.ts';

/** Unpacks `file` (already verified) as `params.version`. Throws NK_INSTALL_STAGE_FAILED. */
export async function stageVersion(l: PackageLayout, params: InstallParams, file: string): Promise<void> {
  const staging = stagingDir(l, params.version);
  const { manifest } = params;
  try {
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging, { recursive: true });
    if (manifest.format === 'tar.gz') {
      // strict: a corrupt archive is an error, not a warning. tar refuses absolute paths
      // and `..` unless preservePaths, and never chowns unless asked. Loaded here, not at
      // start-up: installs are rare and the resident agent should not carry tar.
      const tar = await import('tar');
      await tar.x({ file, cwd: staging, strict: true, preserveOwner: false, gzip: true });
    } else {
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
    }
    await fsyncTree(staging);
    // The digest goes to disk before the directory appears, so a version dir always has one.
    await writeFileDurable(artifactMetaFile(l, params.version), `${JSON.stringify({ sha256: params.artifact.sha256, size: params.artifact.size })}\n`);
    await rm(versionDir(l, params.version), { recursive: true, force: true });
    await rename(staging, versionDir(l, params.version));
    await fsyncPath(l.versionsDir);
  } catch (err) {
    await rm(staging, { recursive: true, force: true }).catch(() => {});
    throw new AppError(InstallErrorCode.stageFailed, `staging ${params.package} ${params.version} failed: ${(err as Error).message}`, { cause: err });
  }
}
