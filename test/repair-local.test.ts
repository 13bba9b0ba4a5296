/**
 * Local self-repair with a real kubelet stand-in under the supervisor: the coordinator
 * unreachable (no connection), the kubelet SIGKILLed -> restarted by the agent's local
 * repairer, healthy again; within the budget (2 per hour) and not beyond it; the actions
 * are recorded durably and summarised for the next report, then marked reported.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../packages/common/src/index.ts';
import { probeHealthCheck } from '../agent/src/install/health.ts';
import { createProbeContext } from '../agent/src/probes/context.ts';
import { defaultProbeConfig } from '../agent/src/probes/config.ts';
import { probeKubelet } from '../agent/src/probes/kubelet.ts';
import { probeRuntime } from '../agent/src/probes/cri.ts';
import { runCommand } from '../agent/src/probes/run-command.ts';
import { LocalRepairer, summarizeLocalRepairs } from '../agent/src/repair/local-repair.ts';
import { RepairLog } from '../agent/src/repair/repair-log.ts';
import { Repairer } from '../agent/src/repair/repairer.ts';
import { waitFor } from './harness/processes.ts';
import { makeSupervisedNode, type SupervisedNode } from './harness/supervised-node.ts';

let work: string;
let node: SupervisedNode | undefined;
before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'nk-repair-local-'));
});
after(async () => {
  await node?.services.stop('kubelet.service');
  await rm(work, { recursive: true, force: true });
});

test('coordinator unreachable + kubelet killed: restarted locally within the budget, not beyond, and reported', async () => {
  node = await makeSupervisedNode(work, { name: 'local-node', machineId: 'a1'.repeat(16), kubeletVersion: '1.31.2' });
  const n = node;
  const ctx = createProbeContext({ ...defaultProbeConfig, hostRoot: n.root, kubelet: { ...defaultProbeConfig.kubelet, healthzUrl: n.kubeletUrl, timeoutMs: 2000 }, runtime: { ...defaultProbeConfig.runtime, timeoutMs: 1000 } });
  const log = createLogger({ name: 'repair-local', level: 'silent' });
  const record = new RepairLog(n.stateDir);
  const repairer = new Repairer({
    hostRoot: n.root, stateDir: n.stateDir, services: n.services, health: probeHealthCheck(ctx),
    units: { kubelet: 'kubelet.service', runtime: 'containerd.service' }, configDirs: ['/etc/cni/net.d'],
    allowReboot: false, run: runCommand, record, log, healthIntervalMs: 100,
  });
  const local = new LocalRepairer({ policy: { afterMs: 60_000, budget: { count: 2, periodMs: 3_600_000 } }, repairer, record, log, timeoutMs: 15_000 });
  const report = async () => ({ kubelet: await probeKubelet(ctx), runtime: await probeRuntime(ctx) });
  await waitFor('kubelet healthy', async () => (await probeKubelet(ctx)).health === 'healthy', 15_000, 100);

  const killKubelet = async (): Promise<void> => {
    const rec = await n.services.running('kubelet.service');
    assert.ok(rec !== null);
    process.kill(rec.pid, 'SIGKILL');
    await waitFor('kubelet down', async () => {
      const k = await probeKubelet(ctx);
      return k.health !== 'healthy' && k.service?.activeState === 'inactive';
    }, 10_000, 100);
  };

  await killKubelet();
  // Connected (or not unreachable for long enough): nothing is done locally.
  assert.deepEqual(await local.tick(await report(), 1000), { act: 'none', why: 'connected' });
  assert.equal(await n.services.running('kubelet.service'), null);

  for (let i = 1; i <= 2; i++) {
    if (i > 1) await killKubelet();
    assert.deepEqual(await local.tick(await report(), 120_000), { act: 'restart', unit: 'kubelet.service' });
    const k = await probeKubelet(ctx);
    assert.equal(k.health, 'healthy', k.message);
    assert.equal(k.service?.restarts, i, 'the supervisor counts each restart');
  }

  await killKubelet();
  assert.deepEqual(await local.tick(await report(), 120_000), { act: 'none', why: 'budget-spent' });
  assert.equal(await n.services.running('kubelet.service'), null, 'beyond the budget the kubelet stays down');
  // A new repairer (an agent restart) reads the same spent budget from disk.
  const again = new LocalRepairer({ policy: { afterMs: 60_000, budget: { count: 2, periodMs: 3_600_000 } }, repairer, record: new RepairLog(n.stateDir), log });
  assert.deepEqual(await again.tick(await report(), 120_000), { act: 'none', why: 'budget-spent' });

  const pending = await again.unreported();
  assert.equal(pending.length, 2);
  assert.ok(pending.every((r) => r.target === 'kubelet.service' && r.outcome === 'healthy'));
  assert.match(summarizeLocalRepairs(pending), /local repairs while the coordinator was unreachable \(2\): .*restarted kubelet\.service: healthy/);
  await again.markReported(pending);
  assert.deepEqual(await again.unreported(), []);
});
