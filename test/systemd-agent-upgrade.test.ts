/**
 * The agent upgrading itself through a rollout, under a real systemd (issue 11, item 4):
 * systemd boots as PID 1 in namespaces of its own (test/harness/systemd.ts), the real
 * release (scripts/release) is installed by its own install-agent as an operator does, and
 * a real coordinator runs on the host's loopback. The versions rolled out are the same
 * tarball with only VERSION changed, the bad ones also their launcher
 * (test/harness/agent-tarball.ts; the first test checks that nothing else differs).
 *
 * - a rollout moves the agent from the shipped release (0.2.0) to 2.0.0: the new agent
 *   reconnects reporting 2.0.0;
 * - a bad 3.0.0 that exits at start is switched back to 2.0.0 by the node itself (the
 *   ExecStartPre= guard counts its starts), and the rollout halts;
 * - a bad 3.0.1 that runs but never connects is switched back by the rollback timer.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { AGENT_PKG_DIR, listTarball } from './harness/agent-tarball.ts';
import { AGENT, bootUpgradeNode, closeUpgradeNode, installCommands, machineEvents, rolloutIn, settledOn, startAgentRollout, type UpgradeNode } from './harness/agent-upgrade-node.ts';
import { nkctlOk } from './harness/processes.ts';
import { run } from './harness/systemd.ts';
import { systemdUnavailable } from './harness/systemd.ts';
const skip = await systemdUnavailable();

describe('the agent upgrades itself through a rollout, under a real systemd', { skip: skip ?? false, timeout: 600_000 }, () => {
  let n: UpgradeNode | undefined;
  const diag = async () => `agent journal:\n${(await n!.sd.journal(AGENT)).slice(-8000)}\nrollback journal:\n${await n!.sd.journal('nodekeeper-agent-rollback.service')}`;

  before(async () => {
    n = await bootUpgradeNode('nk-sd-selfup-', [['2.0.0', 'good'], ['3.0.0', 'exit-at-start'], ['3.0.1', 'never-connects']]);
  });
  after(async () => closeUpgradeNode(n));

  test('the node runs the shipped release; the rolled-out versions differ from it only in VERSION (and the bad ones\' launcher)', async () => {
    const shipped = n!.tarballs.get(n!.first)!;
    const member = async (file: string, name: string) => (await run('tar', ['-xOzf', file, name])).stdout;
    const shippedList = await listTarball(shipped.file);
    assert.ok(shippedList.some((l) => l.endsWith(' lib/nodekeeper-agent.mjs')) && shippedList.some((l) => l.endsWith(' node/bin/node')), shippedList.join('\n'));
    const shippedLauncher = await member(shipped.file, 'bin/nodekeeper-agent');
    for (const [version, t] of n!.tarballs) {
      if (version === n!.first) continue;
      const bad = version.startsWith('3.');
      const changed = new Set(['VERSION', ...(bad ? ['bin/nodekeeper-agent'] : [])]);
      const list = await listTarball(t.file);
      const name = (l: string) => l.slice(l.lastIndexOf(' ') + 1);
      assert.deepEqual(list.map(name), shippedList.map(name), `${version}: the same entries in the same order`);
      assert.deepEqual(list.filter((l) => !changed.has(name(l))), shippedList.filter((l) => !changed.has(name(l))), `${version}: modes, owners, sizes, times of the unchanged entries`);
      assert.equal(await member(t.file, 'VERSION'), `${version}\n`);
      const launcher = await member(t.file, 'bin/nodekeeper-agent');
      if (bad) assert.notEqual(launcher, shippedLauncher);
      else assert.equal(launcher, shippedLauncher);
    }
    // Installed as shipped: the unpacked release under versions/<v>, the shipped unit as is.
    const pkg = path.join(n!.sd.upper, AGENT_PKG_DIR);
    assert.equal(await readFile(path.join(pkg, 'versions', n!.first, 'bin/nodekeeper-agent'), 'utf8'), shippedLauncher);
    const unit = await readFile(path.join(n!.sd.upper, 'etc/systemd/system', AGENT), 'utf8');
    assert.equal(unit, await member(shipped.file, `systemd/${AGENT}`));
    // The agent installed its own guard at its first start (install-agent put one there too).
    assert.equal(await readFile(path.join(pkg, 'guard'), 'utf8'), await member(shipped.file, 'systemd/nodekeeper-agent-guard'));
  });

  test('a rollout upgrades the agent from the shipped release to 2.0.0: the new agent reconnects, reports 2.0.0, and the command succeeds', async () => {
    const pkg = path.join(n!.sd.upper, AGENT_PKG_DIR);
    const guardBefore = await stat(path.join(pkg, 'guard'));
    const name = await startAgentRollout(n!, '2.0.0', 60_000);
    const status = await rolloutIn(n!, name, ['Completed', 'Paused', 'Failed', 'RolledBack', 'Aborted'], 120_000).catch(async (err) => {
      throw new Error(`${(err as Error).message}\n${await diag()}`);
    });
    assert.equal(status['phase'], 'Completed', `${JSON.stringify(status)}\n${await diag()}`);
    const s = await settledOn(n!, '2.0.0');
    assert.equal(s.previous, n!.first, 'previous names the version to go back to');
    const cmds = installCommands(n!, name);
    assert.deepEqual(cmds.map((c) => c.state), ['Succeeded']);
    // The guard at its fixed place is the confirmed version's: the bundle found it through
    // the launcher's NK_AGENT_INSTALL_DIR and put a new copy there (a new inode: temp + rename).
    assert.equal(await readFile(path.join(pkg, 'guard'), 'utf8'), await readFile(path.join(pkg, 'versions/2.0.0/systemd/nodekeeper-agent-guard'), 'utf8'));
    assert.notEqual((await stat(path.join(pkg, 'guard'))).ino, guardBefore.ino, 'the confirmed agent installed its guard');
    assert.doesNotMatch(await n!.sd.journal(AGENT), /could not install the (new|self-upgrade) guard/);
    // The shipped unit's compile cache took the old agent's code when it handed over (exit 75).
    const cache = path.join(n!.sd.upper, 'var/cache/nodekeeper-agent');
    const entries = (await readdir(cache, { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
    assert.ok(entries.length > 0, `Node's compile cache in ${cache} is empty`);
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
