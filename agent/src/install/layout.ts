/**
 * A package's files on the node, all under the host root:
 *
 *   <packagesDir>/<pkg>/versions/<version>/      unpacked content of one version
 *   <packagesDir>/<pkg>/versions/<version>.artifact.json   its digest (written before the dir appears)
 *   <packagesDir>/<pkg>/current -> versions/<version>      THE switch: one rename(2)
 *   <packagesDir>/<pkg>/previous -> versions/<version>     what package.rollback returns to
 *   <packagesDir>/<pkg>/incoming/<sha>.partial  downloads in flight
 *   <manifest link path> -> .../<pkg>/current/<target>     e.g. /usr/bin/kubelet
 *
 * Links are relative, so the same tree works at `/`, under `/host` in a container and
 * under a test's host root. They point through `current`, so a switch never touches them.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { cp, lstat, mkdir, readdir, readFile, readlink, realpath, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { PackageManifest } from '@nodekeeper/protocol';
import { resolveHostPath } from '../probes/config.ts';
import { fsyncPath, replaceSymlink, VERSION_NAME } from '@nodekeeper/common';
import { checkAdoptable, checkTargetInside, safeLinkParent, type InstallPolicy } from './confine.ts';

export interface PackageLayout {
  readonly hostRoot: string;
  readonly pkg: string;
  readonly pkgDir: string;
  readonly versionsDir: string;
  readonly current: string;
  /** The version a `package.rollback` returns to (see previous-version.ts). */
  readonly previous: string;
  readonly incoming: string;
}


/** The layout of `pkg` under `packagesDir` (a host path) of `hostRoot`. */
export function packageLayout(hostRoot: string, packagesDir: string, pkg: string): PackageLayout {
  if (!/^[a-z][a-z0-9-]*$/.test(pkg)) throw new TypeError(`not a package name: ${JSON.stringify(pkg)}`);
  const pkgDir = path.join(resolveHostPath(hostRoot, packagesDir), pkg);
  return {
    hostRoot,
    pkg,
    pkgDir,
    versionsDir: path.join(pkgDir, 'versions'),
    current: path.join(pkgDir, 'current'),
    previous: path.join(pkgDir, 'previous'),
    incoming: path.join(pkgDir, 'incoming'),
  };
}

/** Version directory names are versions (as a release's VERSION says them) or `adopted-<hash>`; nothing that could climb out. */
function checkVersion(version: string): void {
  if (!VERSION_NAME.test(version)) throw new TypeError(`not a version directory name: ${JSON.stringify(version)}`);
}

export const versionDir = (l: PackageLayout, v: string): string => (checkVersion(v), path.join(l.versionsDir, v));
export const stagingDir = (l: PackageLayout, v: string): string => `${versionDir(l, v)}.staging`;
export const artifactMetaFile = (l: PackageLayout, v: string): string => `${versionDir(l, v)}.artifact.json`;

/** The active version (the name `current` points at), or null when there is none. */
export function readCurrent(l: PackageLayout): Promise<string | null> {
  return readVersionLink(l.current);
}

/**
 * Suffix of the whole copy `current` points at while the active version is re-staged
 * (stage.ts); it is still that version. No version name can end in it (a version is
 * semver, and `.spare` is no pre-release or build suffix).
 */
export const SPARE = '.spare';

/** The version name a `versions/<v>` symlink points at, or null when the link is absent. */
export async function readVersionLink(link: string): Promise<string | null> {
  try {
    const target = path.basename(await readlink(link));
    return target.endsWith(SPARE) ? target.slice(0, -SPARE.length) : target;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** What stage.ts recorded for an unpacked version: the artifact's digest and size, and a hash of the content. */
export interface VersionMeta {
  readonly sha256: string;
  readonly size?: number;
  readonly tree?: string;
  /** The manifest the version was staged (and verified) with. */
  readonly manifest?: object;
}

/** The recorded meta of `v`, or null when it has none (adopted, older agent, unreadable). */
export async function readVersionMeta(l: PackageLayout, v: string): Promise<VersionMeta | null> {
  try {
    const meta = JSON.parse(await readFile(artifactMetaFile(l, v), 'utf8')) as Partial<VersionMeta>;
    if (typeof meta.sha256 !== 'string') return null;
    const manifest = typeof meta.manifest === 'object' && meta.manifest !== null ? { manifest: meta.manifest } : {};
    return { sha256: meta.sha256, ...(typeof meta.tree === 'string' ? { tree: meta.tree } : {}), ...manifest };
  } catch {
    return null;
  }
}

/**
 * A hash of everything under `dir`: each entry's relative path, kind, permission bits and
 * content (or link text), in sorted order. Recorded at staging; a reuse recomputes it, so
 * a file changed, added or removed since is noticed.
 */
export async function treeHash(dir: string): Promise<string> {
  const h = createHash('sha256');
  const walk = async (rel: string): Promise<void> => {
    const p = path.join(dir, rel);
    const st = await lstat(p);
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isSymbolicLink()) h.update(`l\0${rel}\0${await readlink(p)}\0`);
    else if (st.isDirectory()) {
      h.update(`d\0${rel}\0${mode}\0`);
      for (const name of (await readdir(p)).sort()) await walk(rel === '' ? name : `${rel}/${name}`);
    } else if (st.isFile()) {
      h.update(`f\0${rel}\0${mode}\0${st.size}\0`);
      for await (const chunk of createReadStream(p)) h.update(chunk as Buffer);
    } else h.update(`o\0${rel}\0`);
  };
  await walk('');
  return h.digest('hex');
}

/** The sha256 recorded for an unpacked version, or null when the version is absent. */
export async function versionDigest(l: PackageLayout, v: string): Promise<string | null> {
  try {
    await stat(versionDir(l, v));
    const meta = JSON.parse(await readFile(artifactMetaFile(l, v), 'utf8')) as { sha256?: unknown };
    return typeof meta.sha256 === 'string' ? meta.sha256 : 'unknown';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      // A version dir without its meta file (adopted, or older agent) has an unknown digest.
      try {
        await stat(versionDir(l, v));
        return 'unknown';
      } catch {
        return null;
      }
    }
    return 'unknown';
  }
}

/**
 * Points `current` at `versions/<version>` with one atomic rename, or removes it when
 * `version` is null (a rollback of a first install: nothing was there before).
 */
export async function switchCurrent(l: PackageLayout, version: string | null): Promise<void> {
  if (version === null) {
    await rm(l.current, { force: true });
    await fsyncPath(l.pkgDir);
    return;
  }
  await stat(versionDir(l, version)); // never point at something that is not there
  await replaceSymlink(l.current, path.join('versions', version));
}

type LinkState = 'ours' | 'absent' | 'foreign-file' | 'foreign-dir';

interface ResolvedLink {
  readonly hostPath: string;
  /** The manifest's host path (for the adoption allow-list and messages). */
  readonly linkPath: string;
  readonly target: string;
  /** What the symlink must contain (relative). */
  readonly expected: string;
  readonly state: LinkState;
}

async function resolveLinks(l: PackageLayout, manifest: PackageManifest): Promise<ResolvedLink[]> {
  const out: ResolvedLink[] = [];
  await mkdir(l.pkgDir, { recursive: true });
  const realPkgDir = await realpath(l.pkgDir);
  for (const link of manifest.links) {
    // Parents are made and checked one by one, never through a symlink (confine.ts).
    const { dir, file: hostPath } = await safeLinkParent(l.hostRoot, link.path);
    const expected = path.relative(dir, path.join(realPkgDir, 'current', link.target)) || '.';
    let state: LinkState;
    try {
      const st = await lstat(hostPath);
      if (st.isSymbolicLink() && (await readlink(hostPath)) === expected) state = 'ours';
      else if (st.isDirectory()) state = 'foreign-dir';
      else state = 'foreign-file';
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      state = 'absent';
    }
    out.push({ hostPath, linkPath: link.path, target: link.target, expected, state });
  }
  return out;
}

/** Suffix of a directory moved aside while its link takes its place (see placeLink). */
const ASIDE = '.nk-adopted';

/**
 * Makes every manifest link a symlink into `current` (idempotent). A foreign file or
 * directory at a link path is refused unless `allowReplace` (adoption has copied it).
 */
export async function ensureLinks(l: PackageLayout, manifest: PackageManifest, allowReplace = false): Promise<void> {
  // Whatever the manifest's text says, a link leads into the active version and nowhere else.
  for (const link of manifest.links) await checkTargetInside(l.current, link.target);
  for (const link of await resolveLinks(l, manifest)) {
    if (link.state === 'ours') continue;
    if (link.state !== 'absent' && !allowReplace) {
      throw Object.assign(new Error(`${link.hostPath} is a ${link.state === 'foreign-dir' ? 'directory' : 'file'} not managed by nodekeeper`), { code: 'ELINKCONFLICT' });
    }
    await placeLink(link);
  }
}

async function placeLink(link: ResolvedLink): Promise<void> {
  if (link.state === 'foreign-dir') {
    // rename(2) cannot put a symlink over a directory: move it aside, then link. A crash
    // between the two leaves the path absent, which the next ensureLinks repairs.
    await rm(`${link.hostPath}${ASIDE}`, { recursive: true, force: true });
    await rename(link.hostPath, `${link.hostPath}${ASIDE}`);
  }
  await replaceSymlink(link.hostPath, link.expected);
  await rm(`${link.hostPath}${ASIDE}`, { recursive: true, force: true });
}

/** A short content hash of what sits at the link paths, naming an adopted version. */
async function contentHash(paths: readonly string[]): Promise<string> {
  const h = createHash('sha256');
  const walk = async (p: string): Promise<void> => {
    const st = await stat(p);
    h.update(`${p}\0${st.isDirectory() ? 'd' : 'f'}${st.size}\0`);
    if (st.isDirectory()) for (const name of (await readdir(p)).sort()) await walk(path.join(p, name));
    else if (st.isFile()) h.update(await readFile(p));
  };
  for (const p of paths) await walk(p);
  return h.digest('hex').slice(0, 12);
}

/**
 * First install on a node where the link paths hold files of their own (installed by
 * apt): copies them into `versions/adopted-<hash>`, points `current` there, and puts the
 * links in place, so a rollback can return to exactly what was there. The content a
 * service runs is the same before and after. Returns the adopted version, or null when
 * there was nothing to adopt or `current` already exists.
 */
export async function adoptExisting(l: PackageLayout, manifest: PackageManifest, policy: InstallPolicy): Promise<string | null> {
  if ((await readCurrent(l)) !== null) return null;
  const links = await resolveLinks(l, manifest);
  const foreign = links.filter((k) => k.state === 'foreign-file' || k.state === 'foreign-dir');
  if (foreign.length === 0) return null;
  // Only a built-in package's own binaries, put there by apt, are moved into a version.
  for (const k of foreign) checkAdoptable(policy, l.pkg, k.linkPath);
  const name = `adopted-${await contentHash(foreign.map((k) => k.hostPath))}`;
  const dest = versionDir(l, name);
  await mkdir(l.versionsDir, { recursive: true });
  try {
    await stat(dest);
  } catch {
    const staging = stagingDir(l, name);
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging, { recursive: true });
    for (const k of foreign) {
      const to = path.join(staging, k.target);
      await mkdir(path.dirname(to), { recursive: true });
      // dereference: a link path that is itself a foreign symlink is adopted by content.
      await cp(k.hostPath, to, { recursive: true, dereference: true, preserveTimestamps: true });
    }
    await fsyncTree(staging);
    await rename(staging, dest);
    await fsyncPath(l.versionsDir);
  }
  await switchCurrent(l, name);
  await ensureLinks(l, manifest, true);
  return name;
}

/** fsyncs every file and directory under `dir` (after unpacking, before the rename). */
export async function fsyncTree(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) await fsyncTree(p);
    else if (entry.isFile()) await fsyncPath(p);
  }
  await fsyncPath(dir);
}
