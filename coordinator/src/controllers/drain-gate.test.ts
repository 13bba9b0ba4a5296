/**
 * An install held behind a drain belongs to its rollout: when the rollout is aborted
 * while the drain is still going, the install is cancelled and never sent, the drain
 * stops, and the Node is uncordoned (issue 10, item 4). The store, fleet view,
 * dispatcher, drain gate and rollout controller are the real ones on a real SQLite
 * file; only the member cluster's API (the edge) is a stand-in that records what was
 * asked of it and drains when the test says.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { AppError, createLogger } from '@nodekeeper/common';
import type { Command } from '@nodekeeper/protocol';
import { SharedBudget } from '../budget/shared-budget.ts';
import { CommandDispatcher } from '../commands/dispatcher.ts';
import { FleetView } from '../fleet/fleet-view.ts';
import type { MemberCluster } from '../member/member-cluster.ts';
import { ROLLOUT_API_VERSION } from '../rollout/spec.ts';
import type { RolloutState } from '../rollout/types.ts';
import { enrolledStore, sampleReport, tempDir } from '../store/test-support.ts';
import { WriteBatcher } from '../store/write-batcher.ts';
import { DrainGate } from './drain-gate.ts';
import { RolloutController } from './rollout-controller.ts';

const log = createLogger({ name: 'test', level: 'silent' });
const NODES = ['node-a', 'node-b'];
const tmp = tempDir('nk-drain-gate-');
after(() => tmp.remove());

/** The member cluster's API as the gate uses it; drain() waits until the test releases it. */
function memberStandIn() {
  const calls: string[] = [];
  let release: () => void = () => {};
  const drained = new Promise<void>((resolve) => (release = resolve));
  const member = {
    synced: async () => {},
    findNode: (machine: string) => ({ metadata: { name: machine } }),
    cordon: async (node: string) => (calls.push(`cordon ${node}`), 'cordoned' as const),
    uncordon: async (node: string) => (calls.push(`uncordon ${node}`), 'uncordoned' as const),
    drain: async (node: string, opts: { stop?: () => string | null }) => {
      calls.push(`drain ${node}`);
      await drained;
      // As the real drain: asked before each round of evictions.
      const why = opts.stop?.() ?? null;
      if (why !== null) throw new AppError('NK_DRAIN_CANCELLED', `drain of ${node} stopped: ${why}`);
      return { evicted: [`default/web-${node}`], skipped: [], refused: [] };
    },
    cordonedByUs: () => [],
  };
  return { member: member as unknown as MemberCluster, calls, release };
}

test('an install held behind a drain is cancelled when its rollout is aborted, and never sent', async () => {
  const now = { t: 1_000_000 };
  const clock = () => now.t;
  const store = enrolledStore(tmp.file('abort.db'), NODES, { now: clock, log });
  store.putClusterPackageVersion([{ name: 'kubelet', version: '1.31.3', artifact: { url: 'https://artifacts.example/k', sha256: 'a'.repeat(64), size: 1000 } }]);
  const batcher = new WriteBatcher(store, { intervalMs: 3_600_000, log, autoStart: false });
  const fleet = new FleetView({ store, batcher, clock, log }, { livenessGraceMs: 40_000, livenessRecoverMs: 0 });
  const sent: Command[] = [];
  const sentIds = () => sent.map((c) => c.commandId);
  const link = { resync() {}, close() {}, sendCommand: (c: Command) => (sent.push(c), true) };
  for (const n of NODES) {
    fleet.attach(n, link, 't');
    fleet.report(n, true, sampleReport(n));
  }
  const commands = new CommandDispatcher({ store, clock, log });
  commands.setTransport((machine, command) => fleet.deliver(machine, command));
  const { member, calls, release } = memberStandIn();
  const gate = new DrainGate({ store, fleet, commands, member, log }, ['kubelet'], 60_000);
  commands.setGate((c) => gate.allows(c));
  const rollouts = new RolloutController({ store, fleet, commands, clock, log, budget: new SharedBudget(2) }, { controlPlaneVersion: 'v1.32.1' });
  try {
    rollouts.create({
      apiVersion: ROLLOUT_API_VERSION, kind: 'Rollout', metadata: { name: 'k' },
      spec: { packages: [{ package: 'kubelet', version: '1.31.3' }], selector: {}, strategy: { canary: { count: 1 }, soakSeconds: 0, batches: [100], maxUnavailable: 1 } },
    });
    const [install] = store.commandsByOwner('rollout/k');
    assert.ok(install !== undefined, 'the canary install is recorded');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(calls, [`cordon ${install.machine}`, `drain ${install.machine}`], 'held behind the drain');
    assert.deepEqual(sent, []);

    rollouts.request('k', 'abort');
    // The drain finishes after the abort: before the fix, the install was sent now.
    release();
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));

    assert.deepEqual(sentIds(), [], 'the install of an aborted rollout is never sent');
    const after = store.getCommand(install.id);
    assert.equal(after?.state, 'Failed');
    assert.equal(after?.sentAt, null);
    assert.equal(after?.error?.code, 'NK_ROLLOUT_STOPPED');
    assert.deepEqual(calls, [`cordon ${install.machine}`, `drain ${install.machine}`, `uncordon ${install.machine}`], 'the node is uncordoned once');
    const state = store.getRollout('k')?.state as RolloutState;
    assert.equal(state.phase, 'Failed');
    assert.equal(state.reason, 'Aborted');
    const m = state.machines[install.machine];
    assert.equal(m?.phase, 'Skipped');
    assert.equal(m?.reason, 'Aborted');
    assert.match(m?.message ?? '', /not installed: the install was never sent; the rollout stopped \(Aborted\) first/);
    assert.deepEqual(m?.changed, [], 'nothing changed on the machine');
    // A reconnect re-delivers open commands: there is none left to send.
    commands.machineConnected(install.machine);
    assert.deepEqual(sent, []);
    const events = store.listEvents({ object: `machine/${install.machine}`, limit: 100 }).map((e) => `${e.reason}: ${e.message}`);
    assert.ok(events.some((e) => /^DrainStopped: .*the install was cancelled.*node uncordoned/.test(e)), events.join('\n'));
    assert.ok(!events.some((e) => e.startsWith('Drained:')), events.join('\n'));
  } finally {
    gate.stop();
    store.close();
  }
});

test("a remediation reinstall drains first with its rule's mark and options, and its cordon stays when the ladder has cordoned the node for a human", async () => {
  const now = { t: 1_000_000 };
  const clock = () => now.t;
  const store = enrolledStore(tmp.file('remediation.db'), NODES, { now: clock, log });
  const batcher = new WriteBatcher(store, { intervalMs: 3_600_000, log, autoStart: false });
  const fleet = new FleetView({ store, batcher, clock, log }, { livenessGraceMs: 40_000, livenessRecoverMs: 0 });
  const sent: Command[] = [];
  const link = { resync() {}, close() {}, sendCommand: (c: Command) => (sent.push(c), true) };
  for (const n of NODES) {
    fleet.attach(n, link, 't');
    fleet.report(n, true, sampleReport(n));
  }
  const commands = new CommandDispatcher({ store, clock, log });
  commands.setTransport((machine, command) => fleet.deliver(machine, command));
  const calls: string[] = [];
  const seen: { opts?: { force: boolean; timeoutMs: number; gracePeriodSeconds: number | null } } = {};
  let humanNeeded: string | null = null;
  const member = {
    synced: async () => {},
    findNode: (machine: string) => ({ metadata: { name: machine } }),
    cordon: async (node: string, by: string) => (calls.push(`cordon ${node} ${by}`), 'cordoned' as const),
    uncordon: async (node: string, by: string, keep: () => string | null = () => null) => {
      const kept = keep() !== null;
      calls.push(`uncordon ${node} ${by}${kept ? ' kept' : ''}`);
      return kept ? 'kept' as const : 'uncordoned' as const;
    },
    drain: async (node: string, opts: { force: boolean; timeoutMs: number; gracePeriodSeconds: number | null }) => {
      calls.push(`drain ${node}`);
      seen.opts = opts;
      return { evicted: [`default/web-${node}`], skipped: [], refused: [] };
    },
    cordonedByUs: () => [],
  } as unknown as MemberCluster;
  const remediation = {
    drainFor: () => ({ by: 'remediation-drain/kubelet-down', drain: { force: true, deleteEmptyDirData: false, timeoutSeconds: 7 } }),
    keepCordon: () => humanNeeded,
  };
  const gate = new DrainGate({ store, fleet, commands, member, log, remediation }, ['kubelet'], 60_000);
  commands.setGate((c) => gate.allows(c));
  try {
    const install = (id: string) => commands.record({ id, machine: 'node-a', kind: 'package.install', params: { package: 'kubelet', version: '1.31.3' }, owner: 'remediation', timeoutMs: 60_000 });
    const finish = async (id: string, ok: boolean) => {
      commands.result('node-a', { type: 'command.result', commandId: id, ok, result: { outcome: ok ? 'installed' : 'failed' }, ...(ok ? {} : { error: { code: 'NK_X', message: 'still broken' } }) } as never);
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    };
    install('rm-1');
    commands.sendById('rm-1');
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    assert.deepEqual(calls, ['cordon node-a remediation-drain/kubelet-down', 'drain node-a'], 'cordoned with the rule mark, drained, before the install is sent');
    assert.equal(seen.opts?.force, true, "the rule's drain options");
    assert.equal(seen.opts?.timeoutMs, 7000);
    assert.equal(seen.opts?.gracePeriodSeconds, null);
    assert.deepEqual(sent.map((c) => c.commandId), ['rm-1'], 'sent once drained');
    await finish('rm-1', true);
    assert.equal(calls.at(-1), 'uncordon node-a remediation-drain/kubelet-down', 'uncordoned after the install');

    // The next reinstall fails and the ladder reaches CordonAndNotify: the cordon stays for the human.
    install('rm-2');
    commands.sendById('rm-2');
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    humanNeeded = 'remediation holds the node for a human (CordonedNeedsHuman)';
    await finish('rm-2', false);
    assert.equal(calls.at(-1), 'uncordon node-a remediation-drain/kubelet-down kept');
    const events = store.listEvents({ object: 'machine/node-a', limit: 100 }).map((e) => `${e.reason}: ${e.message}`);
    assert.ok(events.some((e) => /^Drained: remediation-drain\/kubelet-down: reinstall: Node node-a cordoned and drained before installing kubelet \(1 pods evicted\)/.test(e)), events.join('\n'));
    assert.ok(events.some((e) => /^Cordoned: remediation-drain\/kubelet-down: reinstall: Node node-a cordoned; draining before installing kubelet/.test(e)), events.join('\n'));
  } finally {
    gate.stop();
    store.close();
  }
});

test('after a restart the sweep uncordons a remediation reinstall cordon that no open reinstall explains, unless a human needs the node', async () => {
  const clock = () => 1_000_000;
  const store = enrolledStore(tmp.file('sweep.db'), NODES, { now: clock, log });
  const batcher = new WriteBatcher(store, { intervalMs: 3_600_000, log, autoStart: false });
  const fleet = new FleetView({ store, batcher, clock, log }, { livenessGraceMs: 40_000, livenessRecoverMs: 0 });
  const commands = new CommandDispatcher({ store, clock, log });
  const calls: string[] = [];
  const cordoned = [
    { node: { metadata: { name: 'node-a' } }, by: 'remediation-drain/kubelet-down' },
    { node: { metadata: { name: 'node-b' } }, by: 'remediation/kubelet-down' }, // CordonAndNotify's: the human's to undo
  ];
  let humanNeeded: string | null = null;
  const member = {
    synced: async () => {},
    findNode: (machine: string) => ({ metadata: { name: machine } }),
    uncordon: async (node: string, by: string, keep: () => string | null = () => null) => (calls.push(`uncordon ${node} ${by}${keep() === null ? '' : ' kept'}`), 'uncordoned' as const),
    cordonedByUs: () => cordoned,
  } as unknown as MemberCluster;
  const remediation = { drainFor: () => ({ by: 'remediation-drain/kubelet-down', drain: undefined }), keepCordon: () => humanNeeded };
  const gate = new DrainGate({ store, fleet, commands, member, log, remediation }, ['kubelet'], 60_000);
  try {
    // An open reinstall explains the cordon: left alone.
    commands.record({ id: 'rm-open', machine: 'node-a', kind: 'package.install', params: { package: 'kubelet', version: '1.31.3' }, owner: 'remediation', timeoutMs: 60_000 });
    await gate.sweep();
    assert.equal(calls.length, 0);
    humanNeeded = 'a human is needed';
    // The reinstall ends (its own uncordon is kept too), then the sweep comes by.
    commands.fail('rm-open', { code: 'NK_X', message: 'gone' });
    await gate.sweep();
    assert.ok(calls.length >= 1 && calls.every((c) => c === 'uncordon node-a remediation-drain/kubelet-down kept'), `a human needs it: kept (${calls.join('; ')})`);
    humanNeeded = null;
    await gate.sweep();
    assert.deepEqual(calls.at(-1), 'uncordon node-a remediation-drain/kubelet-down', 'left behind: uncordoned');
    assert.ok(!calls.some((c) => c.includes('node-b')), "CordonAndNotify's cordon is never swept");
  } finally {
    gate.stop();
    store.close();
  }
});
