/**
 * Agent release tarballs in the shared layout (docs/install-agent.md), for the
 * self-upgrade tests, and the first install of one into a booted node's root view.
 *
 * A tarball's root holds `VERSION`, `bin/nodekeeper-agent` (a POSIX sh launcher that
 * exports NK_AGENT_INSTALL_DIR, the resolved root, as the release launcher does) and
 * `systemd/` (the checkout's agent/systemd, guard included). Instead of a bundled agent and
 * its own Node, the launcher runs the test's Node on the checkout's agent sources, both
 * placed in the node by `placeAgentRuntime` (the lead switches these tests to the real
 * tarballs of scripts/release at merge). Bad variants: `exit-at-start` exits 1 at once;
 * `never-connects` runs (sleeps) and never dials the coordinator.
 */
import { createHash } from 'node:crypto';
import { chmod, copyFile, cp, link, mkdir, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { REPO } from './processes.ts';
import { run } from './systemd.ts';

export type AgentVariant = 'good' | 'exit-at-start' | 'never-connects';

/** Where a booted node finds the test's Node and a copy of the checkout (placeAgentRuntime). */
export const NODE_RUNTIME = { node: '/opt/nk-test/node', checkout: '/opt/nk-test/checkout' } as const;
export const AGENT_PKG_DIR = '/var/lib/nodekeeper/packages/nodekeeper-agent';
/** The shipped unit's ExecStart= in the shared release layout (helper "release" makes it the unit's own). */
export const RELEASE_EXEC_START = `ExecStart=${AGENT_PKG_DIR}/current/bin/nodekeeper-agent --config /etc/nodekeeper/agent.yaml`;

export interface AgentTarball {
  readonly file: string;
  readonly version: string;
  readonly sha256: string;
  readonly size: number;
}

function launcher(variant: AgentVariant): string {
  const head = [
    '#!/bin/sh',
    '# Test launcher in the release layout: the install root is the dir above bin/, symlinks resolved.',
    'here=$(cd "$(dirname "$0")" && pwd -P)',
    'NK_AGENT_INSTALL_DIR=$(dirname "$here")',
    'export NK_AGENT_INSTALL_DIR',
  ];
  const tail: Record<AgentVariant, string[]> = {
    good: [`exec ${NODE_RUNTIME.node} --max-old-space-size=160 --max-semi-space-size=1 ${NODE_RUNTIME.checkout}/agent/bin/nodekeeper-agent "$@"`],
    'exit-at-start': ['echo "nodekeeper-agent (test build): broken at start" >&2', 'exit 1'],
    'never-connects': ['echo "nodekeeper-agent (test build): running, never connecting" >&2', 'exec sleep 100000'],
  };
  return `${[...head, ...tail[variant]].join('\n')}\n`;
}

/** Builds `nodekeeper-agent-<version>-linux-x64.tar.gz` in `dir`. */
export async function buildAgentTarball(dir: string, version: string, variant: AgentVariant = 'good'): Promise<AgentTarball> {
  const root = path.join(dir, `agent-${version}-${variant}`);
  await rm(root, { recursive: true, force: true });
  await mkdir(path.join(root, 'bin'), { recursive: true });
  await writeFile(path.join(root, 'VERSION'), `${version}\n`);
  await writeFile(path.join(root, 'bin/nodekeeper-agent'), launcher(variant));
  await chmod(path.join(root, 'bin/nodekeeper-agent'), 0o755);
  await cp(path.join(REPO, 'agent/systemd'), path.join(root, 'systemd'), { recursive: true });
  const file = path.join(dir, `nodekeeper-agent-${version}-linux-x64.tar.gz`);
  // No top-level directory: the archive root is the install root.
  const r = await run('tar', ['-czf', file, '--owner=0', '--group=0', '-C', root, 'VERSION', 'bin', 'systemd']);
  if (r.code !== 0) throw new Error(`tar: ${r.stderr}`);
  const data = await readFile(file);
  return { file, version, sha256: createHash('sha256').update(data).digest('hex'), size: data.length };
}

/** Hard-links `src` to `dest` (same filesystem: instant, no space), else copies it. */
async function linkOrCopy(src: string, dest: string): Promise<void> {
  await mkdir(path.dirname(dest), { recursive: true });
  await link(src, dest).catch(() => copyFile(src, dest));
}

async function linkTree(src: string, dest: string): Promise<void> {
  const r = await run('cp', ['-al', src, dest]);
  if (r.code !== 0) await cp(src, dest, { recursive: true, verbatimSymlinks: true });
}

/**
 * Puts the test's Node and the agent's sources with their dependencies into the node
 * (`upper`, the overlay's writable layer), at NODE_RUNTIME: the checkout itself may sit
 * where the agent's unit cannot see it (/tmp is private to it, /root and /home hidden).
 * Hard links where the filesystem allows (a 170 MB copy per booted node otherwise): the
 * agent never writes its own sources, and neither may a test through the root view.
 */
export async function placeAgentRuntime(upper: string): Promise<void> {
  await linkOrCopy(process.execPath, path.join(upper, NODE_RUNTIME.node));
  const dest = path.join(upper, NODE_RUNTIME.checkout);
  await mkdir(dest, { recursive: true });
  for (const part of ['package.json', 'agent', 'packages', 'node_modules']) await linkTree(path.join(REPO, part), path.join(dest, part));
}

export interface FirstInstall {
  readonly server: string;
  readonly token: string;
  readonly caHash: string;
  /** More agent.yaml lines (camelCase keys). */
  readonly extraConfig?: string;
}

/**
 * The first install of `tarball` into the root view `upper`, in the shared layout:
 * versions/<v> unpacked, `current` pointing at it, the guard at its fixed place, every
 * unit of systemd/ in /etc/systemd/system (the main unit's ExecStart= the release one),
 * /etc/nodekeeper/agent.yaml. What scripts/install-agent does from a tarball.
 */
export async function installAgentRelease(upper: string, tarball: AgentTarball, o: FirstInstall): Promise<void> {
  const pkg = path.join(upper, AGENT_PKG_DIR);
  const vdir = path.join(pkg, 'versions', tarball.version);
  await mkdir(vdir, { recursive: true });
  const r = await run('tar', ['-xzf', tarball.file, '-C', vdir]);
  if (r.code !== 0) throw new Error(`tar -x: ${r.stderr}`);
  await writeFile(`${vdir}.artifact.json`, `${JSON.stringify({ sha256: tarball.sha256, size: tarball.size })}\n`);
  await symlink(path.join('versions', tarball.version), path.join(pkg, 'current'));
  await copyFile(path.join(vdir, 'systemd/nodekeeper-agent-guard'), path.join(pkg, 'guard'));
  const units = path.join(upper, 'etc/systemd/system');
  await mkdir(units, { recursive: true });
  for (const name of await readdir(path.join(vdir, 'systemd'))) {
    if (!/\.(service|timer)$/.test(name)) continue;
    let text = await readFile(path.join(vdir, 'systemd', name), 'utf8');
    if (name === 'nodekeeper-agent.service') text = text.replace(/^ExecStart=.*$/m, RELEASE_EXEC_START);
    await writeFile(path.join(units, name), text);
  }
  await mkdir(path.join(upper, 'etc/nodekeeper'), { recursive: true });
  await writeFile(
    path.join(upper, 'etc/nodekeeper/agent.yaml'),
    `server: ${JSON.stringify(o.server)}\ntoken: ${JSON.stringify(o.token)}\ndiscoveryCaHash: ${JSON.stringify(o.caHash)}\n${o.extraConfig ?? ''}`,
    { mode: 0o600 },
  );
}
