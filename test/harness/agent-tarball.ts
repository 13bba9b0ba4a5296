/**
 * The agent release tarballs the self-upgrade tests install and roll out: the real ones.
 *
 * - The first install is the release exactly as shipped: `scripts/release`'s agent tarball
 *   (release.ts `agentRelease()`, built once per content and cached), installed into the
 *   booted node's root view by its own `install-agent` (agent-upgrade-node.ts).
 * - An upgrade version is that same tarball with ONE change, its `VERSION` file (e.g.
 *   2.0.0), repacked with scripts/release's own options (scripts/lib/release-archive.ts),
 *   so the bundle, the launcher, the Node, the units and the guard are the shipped ones.
 * - A bad variant has ONE more change, `bin/nodekeeper-agent` replaced by a launcher that
 *   exports NK_AGENT_INSTALL_DIR as the real one does, then `exit-at-start` exits 1 at
 *   once; `never-connects` runs (sleeps) and never dials the coordinator.
 *
 * Nothing else differs (test/systemd-agent-upgrade.test.ts checks the listings). Repacking
 * gzips ~110 MB (tens of seconds on a shared machine), so each variant is kept beside the
 * release in its cache, keyed like it by content: a rerun, or another test file, reuses it.
 */
import { execFile } from 'node:child_process';
import { chmod, cp, mkdir, mkdtemp, rename, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { packTarball, sha256File } from '../../scripts/lib/release-archive.ts';
import { agentRelease } from './release.ts';

const execFileP = promisify(execFile);

export type AgentVariant = 'good' | 'exit-at-start' | 'never-connects';

export const AGENT_PKG_DIR = '/var/lib/nodekeeper/packages/nodekeeper-agent';

export interface AgentTarball {
  readonly file: string;
  readonly version: string;
  readonly sha256: string;
  readonly size: number;
}

/** The bad variants' launchers: the real launcher's first lines, then the fault. */
const BAD_LAUNCHER: Readonly<Record<Exclude<AgentVariant, 'good'>, string>> = {
  'exit-at-start': 'echo "nodekeeper-agent (test variant): broken at start" >&2\nexit 1',
  'never-connects': 'echo "nodekeeper-agent (test variant): running, never connecting" >&2\nexec sleep 100000',
};

function badLauncher(variant: Exclude<AgentVariant, 'good'>): string {
  return [
    '#!/bin/sh',
    '# Test variant of the release launcher (test/harness/agent-tarball.ts): same install root export, then a fault.',
    'here="$(dirname "$(readlink -f "$0")")"',
    'NK_AGENT_INSTALL_DIR="$(dirname "$here")"',
    'export NK_AGENT_INSTALL_DIR',
    BAD_LAUNCHER[variant],
    '',
  ].join('\n');
}

async function describeFile(file: string, version: string): Promise<AgentTarball> {
  return { file, version, sha256: await sha256File(file), size: (await stat(file)).size };
}

/** The release's agent tarball as scripts/release made it. */
export async function shippedAgentTarball(): Promise<AgentTarball> {
  const rel = await agentRelease();
  return describeFile(rel.agentTarball, rel.version);
}

/**
 * `nodekeeper-agent-<version>-linux-x64.tar.gz`: the shipped tarball with VERSION set to
 * `version` and, for a bad variant, its launcher replaced. Built once per release content.
 */
export async function agentTarball(version: string, variant: AgentVariant = 'good'): Promise<AgentTarball> {
  const rel = await agentRelease();
  if (!/^[0-9A-Za-z][0-9A-Za-z.+~_-]{0,63}$/.test(version)) throw new Error(`not a release version: ${version}`);
  const variants = path.join(path.dirname(rel.dist), 'variants');
  const file = path.join(variants, variant, `nodekeeper-agent-${version}-linux-x64.tar.gz`);
  if (existsSync(file)) return describeFile(file, version);
  await mkdir(path.dirname(file), { recursive: true });
  const work = await mkdtemp(path.join(variants, '.build-'));
  try {
    const root = path.join(work, 'root');
    // A copy, not hard links: a link made by another test process building its own variant
    // changes the shared inodes' ctime, and tar then fails "file changed as we read it".
    await cp(rel.agentDir, root, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
    // The release's time stamp: every entry carries it (tar restored it on unpacking).
    const epoch = Math.round((await stat(path.join(rel.agentDir, 'VERSION'))).mtimeMs / 1000);
    await rm(path.join(root, 'VERSION'));
    await writeFile(path.join(root, 'VERSION'), `${version}\n`);
    await chmod(path.join(root, 'VERSION'), 0o644);
    if (variant !== 'good') {
      const launcher = path.join(root, 'bin/nodekeeper-agent');
      await rm(launcher);
      await writeFile(launcher, badLauncher(variant));
      await chmod(launcher, 0o755);
    }
    const tmp = path.join(work, 'out.tar.gz');
    await packTarball(root, tmp, epoch);
    // Atomic: a concurrent builder of the same variant writes the same bytes.
    await rename(tmp, file);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return describeFile(file, version);
}

/** `tar -tv` of a tarball, one entry a line (mode, owner, size, time, name). */
export async function listTarball(file: string): Promise<string[]> {
  const { stdout } = await execFileP('tar', ['-tvzf', file, '--numeric-owner', '--full-time'], { maxBuffer: 16 * 1024 * 1024, env: { ...process.env, LC_ALL: 'C' } });
  return stdout.split('\n').filter((l) => l !== '');
}
