/**
 * A real containerd killed (SIGKILL, leaving its stale socket as a crash does) under the
 * supervisor service manager: the CRI probe says unhealthy, `service.restart` of
 * containerd.service through the real executor restarts it, the result waits for the
 * runtime probe, containerd is healthy over CRI again, and the restart is counted (in the
 * supervisor's state and in the runtime probe's service section).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../packages/common/src/index.ts';
import type { CommandResult } from '../packages/protocol/src/index.ts';
import { CommandExecutor } from '../agent/src/commands/executor.ts';
import { probeHealthCheck } from '../agent/src/install/health.ts';
import { createProbeContext } from '../agent/src/probes/context.ts';
import { probeRuntime } from '../agent/src/probes/cri.ts';
import { RepairLog } from '../agent/src/repair/repair-log.ts';
import { Repairer } from '../agent/src/repair/repairer.ts';
import { runCommand } from '../agent/src/probes/run-command.ts';
import { CONTAINERD_BIN, containerdConfig } from './harness/containerd.ts';
import { DEBIAN_CNI_BIN_DIR, makeHostRoot } from './harness/host-root.ts';
import { waitFor } from './harness/processes.ts';
import { nodeProbeConfig, testNode, type TestNode } from './fixtures/install-node.ts';

let work: string;
let node: TestNode | undefined;

before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'nk-repair-rt-'));
});

after(async () => {
  await node?.services.stop('containerd.service');
  await rm(work, { recursive: true, force: true });
});

test('containerd killed -> service.restart -> healthy over CRI again, restart counted', async () => {
  const hostRoot = path.join(work, 'root');
  await makeHostRoot(hostRoot, { machineId: 'e'.repeat(32), hostname: 'rt-node' });
  await symlink(CONTAINERD_BIN, path.join(hostRoot, 'usr/bin/containerd'));
  const configFile = path.join(work, 'containerd.toml');
  await writeFile(configFile, containerdConfig(path.join(hostRoot, 'run/containerd'), path.join(hostRoot, 'etc/cni/net.d'), DEBIAN_CNI_BIN_DIR));
  const spec = { hostRoot, stateDir: path.join(work, 'state') };
  node = testNode(spec);
  await node.services.define('containerd.service', { argv: ['/usr/bin/containerd', '--config', configFile] });
  await node.services.restart('containerd.service');
  const ctx = createProbeContext(nodeProbeConfig(spec));
  await waitFor('containerd healthy', async () => (await probeRuntime(ctx)).health === 'healthy', 30_000, 200);
  assert.equal((await probeRuntime(ctx)).service?.restarts, 0);

  const log = createLogger({ name: 'repair-runtime', level: 'silent' });
  const repairer = new Repairer({
    hostRoot,
    stateDir: spec.stateDir,
    services: node.services,
    health: probeHealthCheck(ctx),
    units: { kubelet: 'kubelet.service', runtime: 'containerd.service' },
    configDirs: ['/etc/cni/net.d'],
    allowReboot: false,
    run: runCommand,
    record: new RepairLog(spec.stateDir),
    log,
    healthIntervalMs: 200,
  });
  const sent: CommandResult[] = [];
  const executor = new CommandExecutor({ installer: node.installer, journal: node.journal, store: node.store, log, repair: repairer, send: (m) => (m.type === 'command.result' && sent.push(m), true) });

  const killed = await node.services.running('containerd.service');
  assert.ok(killed !== null);
  process.kill(killed.pid, 'SIGKILL');
  const down = await waitFor('runtime unhealthy after SIGKILL', async () => {
    const s = await probeRuntime(ctx);
    // The CRI call may fail a moment before the kernel has reaped the process.
    return s.health !== 'healthy' && s.service?.activeState === 'inactive' ? s : undefined;
  }, 10_000, 100);
  assert.notEqual(down.health, 'healthy');

  const r = await executor.handle({ type: 'command', commandId: 'rs-1', kind: 'service.restart', params: { unit: 'containerd.service', timeoutMs: 30_000 }, timeoutMs: 60_000 });
  assert.equal(r?.ok, true, JSON.stringify(r));
  assert.equal(r?.result?.['outcome'], 'healthy');
  assert.equal(r?.result?.['probe'], 'runtime');
  assert.deepEqual(sent, [r]);

  const up = await probeRuntime(ctx);
  assert.equal(up.health, 'healthy', up.message);
  const now = await node.services.running('containerd.service');
  assert.ok(now !== null && now.pid !== killed.pid);
  assert.equal(up.service?.restarts, 1, 'the supervisor counted the restart and the probe reports it');
  assert.equal((await new RepairLog(spec.stateDir).all()).at(-1)?.outcome, 'healthy');
  // At most once per id: a re-delivery answers from the store and restarts nothing.
  assert.deepEqual(await executor.handle({ type: 'command', commandId: 'rs-1', kind: 'service.restart', params: { unit: 'containerd.service' }, timeoutMs: 60_000 }), r);
  assert.equal((await node.services.running('containerd.service'))?.pid, now.pid);
});
