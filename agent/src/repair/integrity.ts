/**
 * Is the active version still whole? A package reinstalled at the version already active
 * (the coordinator's "restore the package" repair) must not be answered
 * `already-installed` while a service keeps running a deleted binary: the files of the
 * version and the links to them are checked first.
 */
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import type { PackageManifest } from '@nodekeeper/protocol';
import { resolveHostPath } from '../probes/config.ts';
import { versionDir, type PackageLayout } from '../install/layout.ts';

/**
 * `content`: a file of the version is gone (re-stage from the artifact); `links`: the
 * version is whole but a link path is missing or points elsewhere (re-link); null: whole.
 */
export interface VersionDamage {
  readonly kind: 'content' | 'links';
  readonly message: string;
}

/** Checks every link target inside `versions/<version>` and every link path on the host. */
export async function versionDamage(l: PackageLayout, manifest: PackageManifest, version: string): Promise<VersionDamage | null> {
  const dir = versionDir(l, version);
  const missing: string[] = [];
  for (const link of manifest.links) {
    try {
      await stat(path.join(dir, link.target));
    } catch {
      missing.push(link.target);
    }
  }
  if (missing.length > 0) return { kind: 'content', message: `${version} is missing ${missing.join(', ')}` };
  const wrong: string[] = [];
  for (const link of manifest.links) {
    const want = await realpath(path.join(dir, link.target));
    const got = await realpath(resolveHostPath(l.hostRoot, link.path)).catch(() => null);
    if (got !== want) wrong.push(link.path);
  }
  if (wrong.length > 0) return { kind: 'links', message: `${wrong.join(', ')} ${wrong.length === 1 ? 'does' : 'do'} not lead to ${version}` };
  return null;
}
