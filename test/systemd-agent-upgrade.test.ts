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
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { AGENT_PKG_DIR } from './harness/agent-tarball.ts';
import { AGENT, bootUpgradeNode, closeUpgradeNode, installCommands, machineEvents, rolloutIn, settledOn, startAgentRollout, type UpgradeNode } from './harness/agent-upgrade-node.ts';
import { nkctlOk } from './harness/processes.ts';
import { systemdUnavailable } from './harness/systemd.ts';
const skip = await systemdUnavailable();

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
