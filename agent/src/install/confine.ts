/**
 * Install confinement on the node (architecture invariant 9): what a package may link,
 * restart and unpack, whatever the coordinator sends. The manifest rules are the pure
 * ones of packages/protocol (install-policy.ts), checked before anything is fetched;
 * here is what only the node can check: symlinked parents of a link path, where a
 * target really resolves, and which existing files a first install may adopt.
 */
import { lstat, mkdir, realpath } from 'node:fs/promises';
import path from 'node:path';
import { AppError } from '@nodekeeper/common';
import { DEFAULT_INSTALL_ALLOW_LIST, manifestProblems, withExtras, type InstallAllowList, type PackageManifest } from '@nodekeeper/protocol';
import { InstallErrorCode } from './codes.ts';

/** Bounds on what one archive may unpack to (a gzip bomb stops at these). */
export interface ArchiveLimits {
  readonly maxBytes: number;
  readonly maxEntries: number;
}

/** Unpacked size and entry count of the largest real packages (containerd ~200 MiB, cni-plugins ~30 files), with room. */
export const DEFAULT_ARCHIVE_LIMITS: ArchiveLimits = Object.freeze({ maxBytes: 2 * 1024 ** 3, maxEntries: 10_000 });

export interface InstallPolicy {
  /** Link paths and services packages may use: the built-in ones plus the operator's. */
  readonly allow: InstallAllowList;
  /** Per package, the link paths whose existing files its first install may adopt. */
  readonly adoptable: Readonly<Record<string, readonly string[]>>;
  readonly archive: ArchiveLimits;
  /** Installs of a lower version than the active one run without a coordinator grant. */
  readonly allowDowngrade: boolean;
}

export interface InstallPolicyOptions {
  /** --allow-install-path: exact host paths, or directories ending in `/`. */
  readonly extraPaths?: readonly string[];
  /** --allow-install-service: more `*.service` units. */
  readonly extraServices?: readonly string[];
  readonly archive?: Partial<ArchiveLimits>;
  readonly allowDowngrade?: boolean;
}

/** The node's policy: defaults plus `o`. */
export function installPolicy(o: InstallPolicyOptions = {}): InstallPolicy {
  return Object.freeze({
    allow: withExtras(DEFAULT_INSTALL_ALLOW_LIST, { paths: o.extraPaths ?? [], services: o.extraServices ?? [] }),
    // Only the built-in packages' own binaries: files apt put there before nodekeeper.
    adoptable: DEFAULT_INSTALL_ALLOW_LIST.adoptable,
    archive: { ...DEFAULT_ARCHIVE_LIMITS, ...o.archive },
    allowDowngrade: o.allowDowngrade ?? false,
  });
}

export const DEFAULT_INSTALL_POLICY: InstallPolicy = installPolicy();

/** Throws the first broken manifest rule as an AppError (its code, and the field in the message). */
export function checkManifest(manifest: PackageManifest, policy: InstallPolicy): void {
  const first = manifestProblems(manifest, policy.allow)[0];
  if (first !== undefined) throw new AppError(first.code, `manifest.${first.path}: ${first.message}`, { context: { path: `manifest.${first.path}` } });
}

/**
 * The real directory a link at host path `linkPath` goes in, created as needed, with no
 * symlink followed: every component below the host root is lstat'ed, and one that is a
 * symlink (or not a directory) is refused, so nothing is ever created or linked through
 * a symlink that leads elsewhere (the chained escape of issue 10). Returns the real
 * parent directory and the link's full path under it.
 */
export async function safeLinkParent(hostRoot: string, linkPath: string): Promise<{ dir: string; file: string }> {
  const segs = linkPath.split('/').filter((s) => s !== '');
  if (segs.length === 0 || segs.some((s) => s === '.' || s === '..')) {
    throw new AppError(InstallErrorCode.linkParentUnsafe, `link path ${JSON.stringify(linkPath)} is not a normalised absolute path`);
  }
  let dir = await realpath(hostRoot);
  for (const seg of segs.slice(0, -1)) {
    dir = path.join(dir, seg);
    let st;
    try {
      st = await lstat(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      // Not recursive: one level, whose parent was just checked. EEXIST means a race; lstat again.
      await mkdir(dir).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'EEXIST') throw e;
      });
      st = await lstat(dir);
    }
    if (st.isSymbolicLink() || !st.isDirectory()) {
      const rel = `/${path.relative(await realpath(hostRoot), dir)}`;
      throw new AppError(InstallErrorCode.linkParentUnsafe, `${rel}, a parent of the link path ${linkPath}, is ${st.isSymbolicLink() ? 'a symlink' : 'not a directory'}; links are never made through one`);
    }
  }
  return { dir, file: path.join(dir, segs[segs.length - 1] ?? '') };
}

/** Throws NK_INSTALL_TARGET_OUTSIDE unless `target` resolves (realpath) inside `versionRoot`. */
export async function checkTargetInside(versionRoot: string, target: string): Promise<void> {
  const root = await realpath(versionRoot);
  let real: string;
  try {
    real = await realpath(path.join(root, target));
  } catch (err) {
    throw new AppError(InstallErrorCode.stageFailed, `the link target "${target}" does not resolve in the version: ${(err as Error).message}`, { cause: err });
  }
  if (real !== root && !real.startsWith(`${root}${path.sep}`)) {
    throw new AppError(InstallErrorCode.targetOutside, `the link target "${target}" resolves to ${real}, outside the version directory`);
  }
}

/** Throws NK_INSTALL_ADOPT_NOT_ALLOWED unless `pkg` may adopt the file at `linkPath`. */
export function checkAdoptable(policy: InstallPolicy, pkg: string, linkPath: string): void {
  if (!(policy.adoptable[pkg] ?? []).includes(linkPath)) {
    throw new AppError(InstallErrorCode.adoptNotAllowed, `${linkPath} exists and is not managed by nodekeeper; ${pkg} may not adopt it (only the built-in packages adopt their own binaries). Move it away to install ${pkg}`);
  }
}
