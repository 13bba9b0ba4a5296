/**
 * Where a binary's release comes from when the binary will not say (Debian builds of
 * the CNI plugins print "version unknown"): the host's Debian package database, then
 * the versions nodekeeper recorded when it installed packages itself.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { versionInfo } from '@nodekeeper/common';
import type { VersionInfo } from '@nodekeeper/protocol';
import { resolveHostPath } from './config.ts';

const DPKG_INFO = '/var/lib/dpkg/info';
const DPKG_STATUS = '/var/lib/dpkg/status';
const MAX_RECORDED_BYTES = 256 * 1024;

/** The package owning a file and its installed version, per dpkg. */
export interface DpkgOwner {
  readonly pkg: string;
  readonly version: string;
}

// Scanning every .list file is the expensive part; the answer only changes when dpkg
// rewrites its status file, so cache by (host root, path) and the status file's mtime.
const ownerCache = new Map<string, { mtimeMs: number; owner: DpkgOwner | null }>();

/**
 * The dpkg package that installed `hostPath` (host-relative, e.g. /usr/lib/cni/bridge)
 * and its version, or null when dpkg is absent or no installed package lists the file.
 */
export async function dpkgOwner(hostRoot: string, hostPath: string): Promise<DpkgOwner | null> {
  const statusFile = resolveHostPath(hostRoot, DPKG_STATUS);
  let mtimeMs: number;
  try {
    mtimeMs = (await stat(statusFile)).mtimeMs;
  } catch {
    return null;
  }
  const key = `${hostRoot}\0${hostPath}`;
  const cached = ownerCache.get(key);
  if (cached !== undefined && cached.mtimeMs === mtimeMs) return cached.owner;

  let owner: DpkgOwner | null = null;
  const pkgName = await findListingPackage(resolveHostPath(hostRoot, DPKG_INFO), hostPath);
  if (pkgName !== null) {
    const version = installedVersion(await readFile(statusFile, 'utf8'), pkgName);
    // A copy, not the substring itself: V8 keeps a substring as a slice of its parent,
    // so caching the slice would keep the whole status file (over 1 MB) alive per entry.
    if (version !== null) owner = { pkg: pkgName, version: Buffer.from(version, 'utf8').toString('utf8') };
  }
  ownerCache.set(key, { mtimeMs, owner });
  return owner;
}

/** Name (possibly `name:arch`) of the package whose .list names `hostPath`, or null. */
async function findListingPackage(infoDir: string, hostPath: string): Promise<string | null> {
  let names: string[];
  try {
    names = await readdir(infoDir);
  } catch {
    return null;
  }
  for (const name of names.filter((n) => n.endsWith('.list')).sort()) {
    let text: string;
    try {
      text = await readFile(path.join(infoDir, name), 'utf8');
    } catch {
      continue;
    }
    if (`\n${text}\n`.includes(`\n${hostPath}\n`)) return name.slice(0, -'.list'.length);
  }
  return null;
}

/**
 * The Version of an installed package in dpkg's status file (RFC-822-like paragraphs).
 * `pkg` may carry `:arch` (multi-arch .list names); then Architecture must match too.
 */
export function installedVersion(statusText: string, pkg: string): string | null {
  const [name, arch] = pkg.split(':');
  for (const paragraph of statusText.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    for (const line of paragraph.split('\n')) {
      const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
      if (m !== null && m[1] !== undefined && m[2] !== undefined) fields.set(m[1], m[2].trim());
    }
    if (fields.get('Package') !== name) continue;
    if (arch !== undefined && fields.get('Architecture') !== arch && fields.get('Architecture') !== 'all') continue;
    // Only an installed package counts: "deinstall ok config-files" leaves a paragraph behind.
    if (!/ ok installed$/.test(fields.get('Status') ?? '')) continue;
    return fields.get('Version') ?? null;
  }
  return null;
}

/**
 * The version nodekeeper recorded for `pkg` in its packages file
 * (`{"cni-plugins":{"version":"1.1.1"}}`), or null when absent or unreadable.
 */
export async function recordedVersion(hostRoot: string, file: string, pkg: string): Promise<VersionInfo | null> {
  try {
    const full = resolveHostPath(hostRoot, file);
    if ((await stat(full)).size > MAX_RECORDED_BYTES) return null;
    const doc: unknown = JSON.parse(await readFile(full, 'utf8'));
    const entry = typeof doc === 'object' && doc !== null ? (doc as Record<string, unknown>)[pkg] : undefined;
    const version = typeof entry === 'object' && entry !== null ? (entry as Record<string, unknown>)['version'] : undefined;
    return typeof version === 'string' && version !== '' ? versionInfo(version, 'nodekeeper') : null;
  } catch {
    // Missing or corrupt: the caller says "version unknown" rather than failing the probe.
    return null;
  }
}
