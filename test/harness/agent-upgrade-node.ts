/**
 * One booted node (test/harness/systemd.ts) whose agent is the real release, installed by
 * the release's own install-agent as an operator does (--root, then `systemctl enable
 * --now`), with its coordinator on the host's loopback; and the steps of an agent rollout
 * to the release's variants (agent-tarball.ts) and what the node then runs, for the
 * self-upgrade tests (test/systemd-agent-upgrade*.test.ts). Nothing of the checkout is
 * inside the node: the release carries its Node, bundle, units and guard.
 */
import { appendFile, mkdtemp, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { stringify } from 'yaml';
import { AGENT_PKG_DIR, agentTarball, shippedAgentTarball, type AgentTarball, type AgentVariant } from './agent-tarball.ts';
import { createToken, nkctl, nkctlOk, startCoordinator, waitFor, type CoordinatorProc } from './processes.ts';
import { installAgentRelease, showResult } from './release.ts';
import { BootedSystemd } from './systemd.ts';

export const AGENT = 'nodekeeper-agent.service';

/** Everything one booted node with its coordinator needs. */
export interface UpgradeNode {
  dir: string;
  coord: CoordinatorProc;
  sd: BootedSystemd;
  machine: string;
  /** The shipped release's version: what install-agent installed first. */
  first: string;
  /** The shipped tarball (under `first`) and the variants to roll out, by version. */
  tarballs: Map<string, AgentTarball>;
}

/**
 * Boots a node with the shipped release installed and its agent enrolled and running;
 * `builds` are the variants to roll out later (made while the node boots).
 */
export async function bootUpgradeNode(prefix: string, builds: ReadonlyArray<readonly [string, AgentVariant]>, agentEnv = ''): Promise<UpgradeNode> {
  const shipped = await shippedAgentTarball();
  for (const [version] of builds) if (version === shipped.version) throw new Error(`variant ${version} has the shipped release's version; pick another`);
  // One after the other (gzip is single-threaded and the machine shared), beside the boot.
  const variants = builds.reduce<Promise<AgentTarball[]>>(async (acc, [version, variant]) => [...(await acc), await agentTarball(version, variant)], Promise.resolve([]));
  variants.catch(() => {});
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  const coord = await startCoordinator(path.join(dir, 'coordinator'));
  const token = await createToken(coord.nkctlConfig, 1);
  const sd = await BootedSystemd.boot({
    prepare: async (upper) => {
      // The operator's install, into the overlay's upper dir (the root view's writable layer).
      const r = await installAgentRelease(['--root', upper, '--server', coord.url, '--token', token.token, '--discovery-ca-hash', token.caCertHash!]);
      if (r.code !== 0) throw new Error(`install-agent: ${showResult(r)}`);
      // What an operator may add to agent.yaml: faster probes (reports) for the test's pace.
      await appendFile(path.join(upper, 'etc/nodekeeper/agent.yaml'), 'probeInterval: 1000\n');
      if (agentEnv !== '') await writeFile(path.join(upper, 'etc/nodekeeper/agent.env'), agentEnv, { mode: 0o600 });
    },
  }).catch(async (err) => {
    await coord.stop();
    throw err;
  });
  try {
    await sd.systemctl('enable', '--now', AGENT);
    const items = await waitFor('the agent to enroll', async () => {
      const r = await nkctl(coord.nkctlConfig, ['get', 'machines', '-o', 'json']);
      const list = r.code === 0 ? (JSON.parse(r.stdout) as { items: Array<{ metadata: { name: string }; status: { agentVersion: string | null } }> }).items : [];
      return list.length === 1 && list[0]!.status.agentVersion === shipped.version && list;
    }, 90_000, 250);
    const tarballs = new Map<string, AgentTarball>([[shipped.version, shipped]]);
    for (const t of await variants) tarballs.set(t.version, t);
    return { dir, coord, sd, machine: items[0]!.metadata.name, first: shipped.version, tarballs };
  } catch (err) {
    const journal = await sd.journal(AGENT);
    await sd.close();
    await coord.stop();
    if (process.env['NK_KEEP_TEST_DIRS'] === undefined) await rm(dir, { recursive: true, force: true });
    throw new Error(`${(err as Error).message}\n${journal}`);
  }
}

export async function closeUpgradeNode(n: UpgradeNode | undefined): Promise<void> {
  await n?.sd.close();
  await n?.coord.stop();
  if (n !== undefined && process.env['NK_KEEP_TEST_DIRS'] === undefined) await rm(n.dir, { recursive: true, force: true });
}

/** Pushes the version's tarball, makes it the desired version (with a deadline of `healthTimeoutMs`) and starts a one-machine rollout. */
export async function startAgentRollout(n: UpgradeNode, version: string, healthTimeoutMs: number): Promise<string> {
  const t = n.tarballs.get(version)!;
  const pushed = JSON.parse(await nkctlOk(n.coord.nkctlConfig, ['artifact', 'push', t.file, '--package', 'nodekeeper-agent', '--version', version, '-o', 'json'])) as { url: string; sha256: string; size: number };
  const manifest = { name: 'nodekeeper-agent', format: 'tar.gz', links: [], service: AGENT, healthProbe: 'agent', healthTimeoutMs };
  const cpv = { apiVersion: 'nodekeeper.io/v1alpha1', kind: 'ClusterPackageVersion', metadata: { name: 'cluster' }, spec: { packages: [{ name: 'nodekeeper-agent', version, artifact: { url: pushed.url, sha256: pushed.sha256, size: pushed.size }, manifest }] } };
  await writeFile(path.join(n.dir, 'cpv.yaml'), stringify(cpv));
  await nkctlOk(n.coord.nkctlConfig, ['apply', '-f', path.join(n.dir, 'cpv.yaml')]);
  const name = `agent-${version.replace(/\./g, '-')}`;
  await nkctlOk(n.coord.nkctlConfig, ['rollout', 'create', name, '--package', `nodekeeper-agent=${version}`, '--canary', '1', '--soak', '2s', '--batches', '100']);
  return name;
}

/** The rollout's status once it reached one of `phases`. */
export function rolloutIn(n: UpgradeNode, name: string, phases: readonly string[], timeoutMs: number): Promise<Record<string, any>> {
  return waitFor(`rollout ${name} in ${phases.join('|')}`, async () => {
    const r = await nkctl(n.coord.nkctlConfig, ['rollout', 'list', '-o', 'json']);
    if (r.code !== 0) return undefined;
    const ro = (JSON.parse(r.stdout) as { items: Array<{ metadata: { name: string }; status: Record<string, any> }> }).items.find((x) => x.metadata.name === name);
    return ro !== undefined && phases.includes(ro.status['phase']) && ro.status;
  }, timeoutMs, 500);
}

/** The install commands of a rollout, oldest first, from the coordinator's store. */
export function installCommands(n: UpgradeNode, rollout: string): Array<{ id: string; state: string; error: string | null }> {
  const d = new Database(path.join(n.coord.dataDir, 'state.db'), { readonly: true });
  try {
    return d.prepare("SELECT id, state, error FROM commands WHERE owner = ? AND kind = 'package.install' ORDER BY rowid").all(`rollout/${rollout}`) as Array<{ id: string; state: string; error: string | null }>;
  } finally {
    d.close();
  }
}

/** The machine's events, oldest first, from the coordinator's store. */
export function machineEvents(n: UpgradeNode): Array<{ object: string; reason: string; message: string }> {
  const d = new Database(path.join(n.coord.dataDir, 'state.db'), { readonly: true });
  try {
    return d.prepare('SELECT object, reason, message FROM events WHERE object = ? ORDER BY rowid').all(`machine/${n.machine}`) as Array<{ object: string; reason: string; message: string }>;
  } finally {
    d.close();
  }
}

/** What the node runs: `current`, `previous`, whether an upgrade is pending, and the agent's unit state. */
export async function nodeState(n: UpgradeNode): Promise<{ current: string; previous: string | null; pending: boolean; active: string; reported: string | null }> {
  const pkg = path.join(n.sd.upper, AGENT_PKG_DIR);
  const current = path.basename(await readlink(path.join(pkg, 'current')));
  const previous = await readlink(path.join(pkg, 'previous')).then((t) => path.basename(t), () => null);
  const pending = await stat(path.join(pkg, 'upgrade.pending')).then(() => true, () => false);
  const active = (await n.sd.show(AGENT, 'ActiveState'))['ActiveState'] ?? '';
  const m = await nkctl(n.coord.nkctlConfig, ['get', 'machine', n.machine, '-o', 'json']);
  const reported = m.code === 0 ? ((JSON.parse(m.stdout) as { status: { agentVersion: string | null } }).status.agentVersion) : null;
  return { current, previous, pending, active, reported };
}

/** Waits until the node settled on `version`: current names it, nothing pending, the unit active, the coordinator told. */
export function settledOn(n: UpgradeNode, version: string, timeoutMs = 90_000): Promise<Awaited<ReturnType<typeof nodeState>>> {
  return waitFor(`the node settled on ${version}`, async () => {
    const s = await nodeState(n);
    return s.current === version && !s.pending && s.active === 'active' && s.reported === version && s;
  }, timeoutMs, 500).catch(async (err) => {
    throw new Error(`${(err as Error).message}\nnow: ${JSON.stringify(await nodeState(n).catch((e) => String(e)))}\nagent journal:\n${(await n.sd.journal(AGENT)).slice(-6000)}`);
  });
}


/** The processes in the agent unit's cgroup (inside the booted node): pid, parent pid and command line. */
export async function agentProcesses(n: UpgradeNode): Promise<Array<{ pid: number; ppid: number; cmd: string }>> {
  const script = 'for p in $(cat "$1"); do [ -r /proc/$p/stat ] && printf "%s %s %s\\n" "$p" "$(sed "s/.*) //" /proc/$p/stat | cut -d" " -f2)" "$(tr "\\0" " " </proc/$p/cmdline)"; done';
  const r = await n.sd.exec(['sh', '-c', script, 'sh', `/sys/fs/cgroup/system.slice/${AGENT}/cgroup.procs`]);
  return r.stdout.split('\n').filter((x) => x.trim() !== '').map((l) => {
    const [pid, ppid, ...cmd] = l.split(' ');
    return { pid: Number(pid), ppid: Number(ppid), cmd: cmd.join(' ').trim() };
  });
}

/** Sets the agent's environment file inside the node (read at each start of the unit). */
export async function setAgentEnv(n: UpgradeNode, text: string): Promise<void> {
  const r = await n.sd.exec(['sh', '-c', 'umask 077; printf "%s" "$1" > /etc/nodekeeper/agent.env', 'sh', text]);
  if (r.code !== 0) throw new Error(`writing agent.env: ${r.stderr}`);
}
