/**
 * Kill -9 at every step of the agent's own upgrade leaves one working agent (issue 11,
 * item 4), under a real systemd, with the real release installed by its install-agent and
 * rolled out with only VERSION changed (test/harness/agent-tarball.ts): the test-only hook NK_AGENT_TEST_SELF_UPGRADE_KILL makes
 * the agent SIGKILL itself once at the named step (agent/src/self-upgrade/self-upgrade.ts;
 * inert unless set), and systemd's Restart=always brings it back as it would after any
 * crash. Each step is one rollout of a new version on one node, which must end on exactly
 * one version, running, with one agent process, the coordinator told which:
 *
 *   before-record  old agent, nothing written          -> stays old, command Failed (interrupted)
 *   after-record   old agent, record written, no switch -> stays old, command Failed (interrupted)
 *   after-switch   old agent, current flipped           -> new version confirms, Succeeded
 *   new-start      new agent, before it connects        -> new version confirms, Succeeded
 *   confirm        new agent, reported, not committed   -> new version confirms, Succeeded
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { AGENT_PKG_DIR } from './harness/agent-tarball.ts';
import { agentProcesses, bootUpgradeNode, closeUpgradeNode, installCommands, rolloutIn, setAgentEnv, settledOn, startAgentRollout, AGENT, type UpgradeNode } from './harness/agent-upgrade-node.ts';
import { nkctlOk } from './harness/processes.ts';
import { systemdUnavailable } from './harness/systemd.ts';

const skip = await systemdUnavailable();

/** `ends: 'old'`: the version running before the step's rollout. */
const STEPS = [
  { step: 'before-record', version: '1.1.0', ends: 'old', state: 'Failed' },
  { step: 'after-record', version: '1.2.0', ends: 'old', state: 'Failed' },
  { step: 'after-switch', version: '1.3.0', ends: '1.3.0', state: 'Succeeded' },
  { step: 'new-start', version: '1.4.0', ends: '1.4.0', state: 'Succeeded' },
  { step: 'confirm', version: '1.5.0', ends: '1.5.0', state: 'Succeeded' },
] as const;

describe('kill -9 at every step of the agent\'s own upgrade leaves one working agent', { skip: skip ?? false, timeout: 900_000 }, () => {
  let n: UpgradeNode | undefined;
  let running = '';

  before(async () => {
    n = await bootUpgradeNode('nk-sd-selfup-kill-', STEPS.map((s) => [s.version, 'good'] as const));
    running = n.first;
  });
  after(async () => closeUpgradeNode(n));

  for (const s of STEPS) {
    test(`killed at ${s.step}: the node ends on ${s.ends === 'old' ? 'the old version' : 'the new version'}, one agent running`, async (t) => {
      const ends = s.ends === 'old' ? running : s.ends;
      // Where the time goes, in the test's output (a slow phase here is a finding).
      let mark = Date.now();
      const took = (what: string) => {
        t.diagnostic(`${what}: ${Date.now() - mark} ms`);
        mark = Date.now();
      };
      // The old agent reads the hook at its start; the new one at its own (the unit's EnvironmentFile=).
      await setAgentEnv(n!, `NK_AGENT_TEST_SELF_UPGRADE_KILL=${s.step}\n`);
      await n!.sd.systemctl('restart', AGENT);
      await settledOn(n!, running);
      took('restarted with the hook, settled');
      const name = await startAgentRollout(n!, s.version, 60_000);
      took('rollout created');
      const status = await rolloutIn(n!, name, ['Completed', 'Paused', 'Failed', 'RolledBack'], 180_000);
      took(`rollout ${status['phase']}`);
      const st = await settledOn(n!, ends);
      took('settled after');
      const cmds = installCommands(n!, name);
      assert.equal(cmds.length, 1, JSON.stringify(cmds));
      assert.equal(cmds[0]!.state, s.state, `${JSON.stringify(cmds)} ${JSON.stringify(status)}`);
      if (s.state === 'Failed') assert.match(cmds[0]!.error ?? '', /NK_INSTALL_INTERRUPTED/);
      assert.equal(status['phase'], s.state === 'Succeeded' ? 'Completed' : 'Paused');
      // The hook really fired (its once-only marker), and exactly one agent runs.
      await stat(path.join(n!.sd.upper, AGENT_PKG_DIR, `test-killed-${s.step}`));
      // Exactly one agent: the ended version's bundle under the release's Node with the
      // launcher's flags, as the shipped unit starts it. Anything else in the unit's cgroup
      // is its probe child (kubelet --version and the like), not a second agent nor an
      // orphan of the killed one.
      const procs = await agentProcesses(n!);
      const agents = procs.filter((p) => p.cmd.includes('/lib/nodekeeper-agent.mjs'));
      assert.equal(agents.length, 1, `one agent process: ${JSON.stringify(procs)}`);
      const vdir = `${AGENT_PKG_DIR}/versions/${ends}/`.replace(/[.]/g, '\\.') + '(bin/\\.\\./)?';
      assert.match(agents[0]!.cmd, new RegExp(`^${vdir}node/bin/node --max-old-space-size=160 --max-semi-space-size=1 --lite-mode ${vdir}lib/nodekeeper-agent\\.mjs --config /etc/nodekeeper/agent\\.yaml$`), JSON.stringify(procs));
      const byPid = new Map(procs.map((p) => [p.pid, p]));
      const descends = (p: { ppid: number }): boolean => p.ppid === agents[0]!.pid || (byPid.get(p.ppid) !== undefined && descends(byPid.get(p.ppid)!));
      for (const p of procs) if (p !== agents[0]) assert.ok(descends(p), `not the agent's child: ${JSON.stringify(p)} in ${JSON.stringify(procs)}`);
      assert.equal(st.active, 'active');
      if (status['phase'] === 'Paused') await nkctlOk(n!.coord.nkctlConfig, ['rollout', 'abort', name]);
      running = ends;
    });
  }
});
