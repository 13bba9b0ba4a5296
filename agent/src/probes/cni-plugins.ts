/**
 * Talking to CNI plugin binaries: finding one in the bin dirs, asking which spec
 * versions it supports (CNI_COMMAND=VERSION, per the CNI spec), and reading its release
 * from the "about" text it prints when run without a command.
 */
import { constants } from 'node:fs';
import { access, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { versionInfo } from '@nodekeeper/common';
import type { VersionInfo } from '@nodekeeper/protocol';
import { resolveHostPath } from './config.ts';
import { describeFailure, firstLine, type CommandRunner } from './run-command.ts';
import { dpkgOwner, recordedVersion } from './package-versions.ts';

export type BinaryLookup =
  | { readonly kind: 'found'; readonly file: string; readonly hostPath: string }
  | { readonly kind: 'missing'; readonly searched: readonly string[]; readonly notExecutable: readonly string[] };

/** The first bin dir (host paths, in order) holding an executable regular file named `type`. */
export async function findPluginBinary(hostRoot: string, binDirs: readonly string[], type: string): Promise<BinaryLookup> {
  const notExecutable: string[] = [];
  for (const dir of binDirs) {
    const hostPath = path.posix.join(dir, type);
    const file = resolveHostPath(hostRoot, hostPath);
    try {
      if (!(await stat(file)).isFile()) continue;
    } catch {
      continue;
    }
    try {
      await access(file, constants.X_OK);
      return { kind: 'found', file, hostPath };
    } catch {
      notExecutable.push(hostPath);
    }
  }
  return { kind: 'missing', searched: binDirs, notExecutable };
}

export type VersionQuery =
  | { readonly kind: 'ok'; readonly supportedVersions: readonly string[] }
  | { readonly kind: 'failed'; readonly detail: string };

/** Parses a VERSION answer: `{"cniVersion":"1.0.0","supportedVersions":[...]}` or a CNI error object. */
export function parseVersionAnswer(stdout: string): VersionQuery {
  let doc: unknown;
  try {
    doc = JSON.parse(stdout);
  } catch {
    return { kind: 'failed', detail: `answer is not JSON: ${firstLine(stdout) || '(empty)'}` };
  }
  const o = (typeof doc === 'object' && doc !== null ? doc : {}) as Record<string, unknown>;
  if (typeof o['code'] === 'number') return { kind: 'failed', detail: `CNI error ${o['code']}: ${String(o['msg'] ?? '')}` };
  const list = o['supportedVersions'];
  if (!Array.isArray(list) || !list.every((v) => typeof v === 'string')) {
    return { kind: 'failed', detail: 'answer has no supportedVersions list' };
  }
  return { kind: 'ok', supportedVersions: (list as string[]).slice(0, 32).map((v) => v.slice(0, 256)) };
}

/** Asks a plugin which CNI spec versions it supports, as a runtime would before ADD. */
export async function queryPluginVersions(run: CommandRunner, file: string, cniVersion: string, timeoutMs: number): Promise<VersionQuery> {
  const r = await run(file, [], {
    timeoutMs,
    // The CNI spec passes everything through CNI_* variables; nothing of ours leaks in.
    env: { CNI_COMMAND: 'VERSION', CNI_PATH: path.dirname(file) },
    input: JSON.stringify({ cniVersion }),
    maxBytes: 16 * 1024,
  });
  if (r.spawnError !== null || r.timedOut || r.truncated || r.signal !== null) return { kind: 'failed', detail: describeFailure(file, r) };
  const answer = parseVersionAnswer(r.stdout);
  if (r.code !== 0 && answer.kind === 'ok') return { kind: 'failed', detail: describeFailure(file, r) };
  return answer;
}

/**
 * The release in a plugin's about line (`CNI bridge plugin v1.4.0`), or null when it
 * has none (`CNI bridge plugin version unknown`). Only the first line counts: the
 * second lists protocol versions, which are not the release.
 */
export function parseAboutLine(text: string): string | null {
  const line = firstLine(text);
  return /^CNI\b.*\bv?\d+\.\d+/.test(line) && !/version unknown/i.test(line) ? line : null;
}

/** Runs a plugin without CNI_COMMAND; plugins built on skel print their about text. */
export async function readAboutLine(run: CommandRunner, file: string, timeoutMs: number): Promise<string | null> {
  const r = await run(file, [], { timeoutMs, env: {}, maxBytes: 4096 });
  if (r.spawnError !== null || r.timedOut) return null;
  // skel prints the about text on stderr; some third-party plugins use stdout.
  return parseAboutLine(r.stderr) ?? parseAboutLine(r.stdout);
}

/** Package name nodekeeper records CNI plugin installs under. */
export const CNI_PACKAGE = 'cni-plugins';

/**
 * A plugin's release: its about line (source 'binary'), else the Debian package that
 * installed it (source 'dpkg'), else what nodekeeper recorded (source 'nodekeeper').
 */
export async function pluginRelease(
  run: CommandRunner,
  lookup: { file: string; hostPath: string },
  opts: { hostRoot: string; recordedVersionsFile: string; timeoutMs: number },
): Promise<VersionInfo | null> {
  const about = await readAboutLine(run, lookup.file, opts.timeoutMs);
  if (about !== null) return versionInfo(about, 'binary');
  for (const candidate of await dpkgCandidates(opts.hostRoot, lookup)) {
    const owner = await dpkgOwner(opts.hostRoot, candidate);
    if (owner !== null) return versionInfo(owner.version, 'dpkg');
  }
  return recordedVersion(opts.hostRoot, opts.recordedVersionsFile, CNI_PACKAGE);
}

/**
 * Host paths dpkg may list the binary under: as found, and through symlinks
 * (/opt/cni/bin -> /usr/lib/cni) when the real path stays inside the host root.
 */
async function dpkgCandidates(hostRoot: string, lookup: { file: string; hostPath: string }): Promise<string[]> {
  const candidates = [lookup.hostPath];
  try {
    const real = await realpath(lookup.file);
    const rootReal = await realpath(hostRoot);
    const rel = path.relative(rootReal, real);
    const inside = rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
    if (inside) candidates.push(`/${rel}`);
    else if (rootReal === '/') candidates.push(real);
  } catch {
    // realpath failing just means no extra candidate.
  }
  return [...new Set(candidates)];
}
