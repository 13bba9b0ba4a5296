/**
 * The agent upgrading itself through a rollout, under a real systemd (issue 11, item 4):
 * systemd boots as PID 1 in namespaces of its own (test/harness/systemd.ts), the agent is
 * installed from a release tarball into the shared package layout with the shipped units
 * (test/harness/agent-tarball.ts), and a real coordinator runs on the host's loopback.
 *
 * - a rollout moves the agent 1.0.0 -> 2.0.0: the new agent reconnects reporting 2.0.0;
 * - a bad 3.0.0 that exits at start is switched back to 2.0.0 by the node itself (the
 *   ExecStartPre= guard counts its starts), and the rollout halts;
 * - a bad 3.0.1 that runs but never connects is switched back by the rollback timer.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { stringify } from 'yaml';
import { AGENT_PKG_DIR, buildAgentTarball, installAgentRelease, placeAgentRuntime, type AgentTarball } from './harness/agent-tarball.ts';
import { createToken, nkctl, nkctlOk, startCoordinator, waitFor, type CoordinatorProc } from './harness/processes.ts';
import { BootedSystemd, systemdUnavailable } from './harness/systemd.ts';

const AGENT = 'nodekeeper-agent.service';
const skip = await systemdUnavailable();

/** Everything one booted node with its coordinator needs; `versions` are built before boot. */
export interface UpgradeNode {
  dir: string;
  coord: CoordinatorProc;
  sd: BootedSystemd;
  machine: string;
  tarballs: Map<string, AgentTarball>;
}

/** Boots a node with `first` installed from its tarball and the agent enrolled and running. */
export async function bootUpgradeNode(prefix: string, builds: ReadonlyArray<[string, Parameters<typeof buildAgentTarball>[2]]>, agentEnv = ''): Promise<UpgradeNode> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  const coord = await startCoordinator(path.join(dir, 'coordinator'));
  const tarballs = new Map<string, AgentTarball>();
  for (const [version, variant] of builds) tarballs.set(version, await buildAgentTarball(dir, version, variant));
  const token = await createToken(coord.nkctlConfig, 1);
  const first = tarballs.get(builds[0]![0])!;
  const sd = await BootedSystemd.boot({
    prepare: async (upper) => {
      await placeAgentRuntime(upper);
      await installAgentRelease(upper, first, { server: coord.url, token: token.token, caHash: token.caCertHash!, extraConfig: 'probeInterval: 1000\n' });
      if (agentEnv !== '') await writeFile(path.join(upper, 'etc/nodekeeper/agent.env'), agentEnv);
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
      return list.length === 1 && list[0]!.status.agentVersion === first.version && list;
    }, 90_000, 250);
    return { dir, coord, sd, machine: items[0]!.metadata.name, tarballs };
  } catch (err) {
    const journal = await sd.journal(AGENT);
    await sd.close();
    await coord.stop();
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

describe('the agent upgrades itself through a rollout, under a real systemd', { skip: skip ?? false, timeout: 600_000 }, () => {
  let n: UpgradeNode | undefined;
  const diag = async () => `agent journal:\n${(await n!.sd.journal(AGENT)).slice(-8000)}\nrollback journal:\n${await n!.sd.journal('nodekeeper-agent-rollback.service')}`;

  before(async () => {
    n = await bootUpgradeNode('nk-sd-selfup-', [['1.0.0', 'good'], ['2.0.0', 'good'], ['3.0.0', 'exit-at-start'], ['3.0.1', 'never-connects']]);
  });
  after(async () => closeUpgradeNode(n));

  test('a rollout upgrades the agent 1.0.0 -> 2.0.0: the new agent reconnects, reports 2.0.0, and the command succeeds', async () => {
    const name = await startAgentRollout(n!, '2.0.0', 60_000);
    const status = await rolloutIn(n!, name, ['Completed', 'Paused', 'Failed', 'RolledBack', 'Aborted'], 120_000).catch(async (err) => {
      throw new Error(`${(err as Error).message}\n${await diag()}`);
    });
    assert.equal(status['phase'], 'Completed', `${JSON.stringify(status)}\n${await diag()}`);
    const s = await settledOn(n!, '2.0.0');
    assert.equal(s.previous, '1.0.0', 'previous names the version to go back to');
    const cmds = installCommands(n!, name);
    assert.deepEqual(cmds.map((c) => c.state), ['Succeeded']);
    // The guard at its fixed place is the confirmed version's.
    const pkg = path.join(n!.sd.upper, AGENT_PKG_DIR);
    assert.equal(await readFile(path.join(pkg, 'guard'), 'utf8'), await readFile(path.join(pkg, 'versions/2.0.0/systemd/nodekeeper-agent-guard'), 'utf8'));
    const wide = await nkctlOk(n!.coord.nkctlConfig, ['get', 'machines', '-o', 'wide']);
    const [header, row] = wide.trim().split('\n').map((l) => l.trim().split(/\s{2,}/));
    assert.equal(row![header!.indexOf('AGENT')], '2.0.0', wide);
  });

  for (const [version, how, deadlineMs] of [['3.0.0', 'exits at start (crash loop: the ExecStartPre= guard)', 120_000], ['3.0.1', 'runs but never connects (the rollback timer, past the deadline)', 20_000]] as const) {
    test(`a bad ${version} that ${how} is switched back to 2.0.0 by the node itself; the rollout halts`, async () => {
      const name = await startAgentRollout(n!, version, deadlineMs);
      const status = await rolloutIn(n!, name, ['Paused', 'Failed', 'RolledBack', 'Completed'], 180_000).catch(async (err) => {
        throw new Error(`${(err as Error).message}\n${await diag()}`);
      });
      assert.notEqual(status['phase'], 'Completed', `${JSON.stringify(status)}\n${await diag()}`);
      await settledOn(n!, '2.0.0');
      const cmds = installCommands(n!, name);
      assert.equal(cmds.length, 1, 'one machine, one install: the rollout halted on its canary');
      assert.equal(cmds[0]!.state, 'Failed');
      assert.match(cmds[0]!.error ?? '', /NK_AGENT_UPGRADE_REVERTED/, `${JSON.stringify(cmds)}\n${await diag()}`);
      const items = machineEvents(n!);
      assert.ok(items.some((e) => e.object === `machine/${n!.machine}` && e.reason === 'InstallFailed' && e.message.includes(name) && /switched back to 2\.0\.0/.test(e.message)), JSON.stringify(items.slice(-5)));
      // The way back was taken once: the unit runs the old version, nothing half-done.
      const pkg = path.join(n!.sd.upper, AGENT_PKG_DIR);
      for (const f of ['upgrade.boots', 'upgrade.reverted']) await assert.rejects(stat(path.join(pkg, f)), `${f} is cleared`);
      // Halted: the next rollout may go ahead once this one is aborted.
      if (status['phase'] === 'Paused') await nkctlOk(n!.coord.nkctlConfig, ['rollout', 'abort', name]);
    });
  }
});
