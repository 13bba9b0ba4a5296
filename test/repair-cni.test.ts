/**
 * A node's CNI config deleted: the real CNI probe (Debian's plugins) says
 * NoNetworkConfig; `config.restore` through the real executor writes the desired content
 * atomically and waits for the probe: ConfigValid again. Paths outside the allow-list,
 * climbing out with `..`, or through a symlinked dir are refused with
 * NK_REPAIR_PATH_NOT_ALLOWED and nothing is written.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../packages/common/src/index.ts';
import { CommandExecutor } from '../agent/src/commands/executor.ts';
import { probeHealthCheck } from '../agent/src/install/health.ts';
import { createProbeContext } from '../agent/src/probes/context.ts';
import { probeCni } from '../agent/src/probes/cni.ts';
import { runCommand } from '../agent/src/probes/run-command.ts';
import { RepairLog } from '../agent/src/repair/repair-log.ts';
import { Repairer } from '../agent/src/repair/repairer.ts';
import { bridgeConflist, CNI_CONFIG_NAME, makeHostRoot, type HostRoot } from './harness/host-root.ts';
import { testNode } from './fixtures/install-node.ts';

let work: string;
before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'nk-repair-cni-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

let n = 0;
async function cniNode(): Promise<{ h: HostRoot; executor: CommandExecutor }> {
  n += 1;
  const h = await makeHostRoot(path.join(work, `node-${n}`), { machineId: 'f'.repeat(32), hostname: `cni-${n}` });
  const stateDir = path.join(work, `state-${n}`);
  const node = testNode({ hostRoot: h.root, stateDir });
  const log = createLogger({ name: 'repair-cni', level: 'silent' });
  const repairer = new Repairer({
    hostRoot: h.root,
    stateDir,
    services: node.services,
    health: probeHealthCheck(createProbeContext(h.config)),
    units: { kubelet: 'kubelet.service', runtime: 'containerd.service' },
    configDirs: [h.config.cni.confDir],
    allowReboot: false,
    run: runCommand,
    record: new RepairLog(stateDir),
    log,
    healthIntervalMs: 100,
  });
  return { h, executor: new CommandExecutor({ installer: node.installer, journal: node.journal, store: node.store, log, repair: repairer, send: () => true }) };
}

const restore = (commandId: string, params: Record<string, unknown>) => ({ type: 'command' as const, commandId, kind: 'config.restore', params, timeoutMs: 60_000 });

test('a deleted CNI config: NoNetworkConfig -> config.restore -> ConfigValid again', async () => {
  const { h, executor } = await cniNode();
  const file = path.join(h.root, 'etc/cni/net.d', CNI_CONFIG_NAME);
  const desired = await readFile(file, 'utf8');
  await unlink(file);
  const broken = await probeCni(createProbeContext(h.config));
  assert.equal(broken.reason, 'NoNetworkConfig');

  const r = await executor.handle(restore('cr-1', { path: `/etc/cni/net.d/${CNI_CONFIG_NAME}`, content: desired, mode: 0o644, healthProbe: 'cni', timeoutMs: 10_000 }));
  assert.equal(r?.ok, true, JSON.stringify(r));
  assert.equal(r?.result?.['outcome'], 'healthy');
  assert.equal(r?.result?.['probe'], 'cni');
  assert.equal(await readFile(file, 'utf8'), desired);
  assert.equal((await stat(file)).mode & 0o777, 0o644);
  assert.deepEqual(await readdir(path.dirname(file)), [CNI_CONFIG_NAME], 'no temp file left behind');
  const fixed = await probeCni(createProbeContext(h.config));
  assert.equal(fixed.reason, 'ConfigValid', fixed.message);
});

test('the whole conf dir deleted is re-created; an invalid restore is answered unhealthy with the probe reason', async () => {
  const { h, executor } = await cniNode();
  await rm(path.join(h.root, 'etc/cni/net.d'), { recursive: true });
  const bad = await executor.handle(restore('cr-2', { path: '/etc/cni/net.d/05-bad.conf', content: '{"cniVersion":"1.0.0","name":', mode: 0o644, healthProbe: 'cni', timeoutMs: 1000 }));
  assert.equal(bad?.ok, false);
  assert.equal(bad?.error?.code, 'NK_REPAIR_UNHEALTHY');
  assert.equal(bad?.result?.['outcome'], 'unhealthy');
  assert.match(String(bad?.result?.['message']), /InvalidNetworkConfig|not valid JSON/);
  const good = await executor.handle(restore('cr-3', { path: `/etc/cni/net.d/${CNI_CONFIG_NAME}`, content: bridgeConflist(), mode: 0o600, healthProbe: 'cni', timeoutMs: 10_000 }));
  assert.equal(good?.result?.['outcome'], 'healthy', JSON.stringify(good));
});

test('outside the allow-list, climbing out, through a symlink, or a writable mode: refused, nothing written', async () => {
  const { h, executor } = await cniNode();
  const outside = path.join(work, 'outside');
  await mkdir(outside);
  await symlink(outside, path.join(h.root, 'etc/cni/net.d/escape'));
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['o-1', { path: '/etc/kubernetes/kubelet.conf', content: 'x', mode: 0o644 }, 'NK_REPAIR_PATH_NOT_ALLOWED'],
    ['o-2', { path: '/etc/cni/net.d/../../shadow', content: 'x', mode: 0o644 }, 'NK_REPAIR_PATH_NOT_ALLOWED'],
    ['o-3', { path: '/etc/cni/net.d', content: 'x', mode: 0o644 }, 'NK_REPAIR_PATH_NOT_ALLOWED'],
    ['o-4', { path: '/etc/cni/net.d/escape/evil.conf', content: 'x', mode: 0o644 }, 'NK_REPAIR_PATH_NOT_ALLOWED'],
    ['o-5', { path: '/etc/cni/net.d/escape/deeper/evil.conf', content: 'x', mode: 0o644 }, 'NK_REPAIR_PATH_NOT_ALLOWED'],
    ['o-6', { path: '/etc/cni/net.d/x.conf', content: 'x', mode: 0o666 }, 'NK_REPAIR_BAD_PARAMS'],
    ['o-7', { path: '/etc/cni/net.d/x.conf', content: 'x'.repeat(64 * 1024 + 1), mode: 0o644 }, 'NK_REPAIR_BAD_PARAMS'],
    ['o-8', { path: 'etc/cni/net.d/x.conf', content: 'x', mode: 0o644 }, 'NK_REPAIR_BAD_PARAMS'],
  ];
  for (const [id, params, code] of cases) {
    const r = await executor.handle(restore(id, params));
    assert.equal(r?.ok, false, id);
    assert.equal(r?.error?.code, code, `${id}: ${JSON.stringify(r)}`);
  }
  assert.deepEqual(await readdir(outside), [], 'nothing written through the symlink');
  await assert.rejects(stat(path.join(h.root, 'etc/kubernetes')), { code: 'ENOENT' });
  await assert.rejects(stat(path.join(h.root, 'shadow')), { code: 'ENOENT' });
  assert.deepEqual((await readdir(path.join(h.root, 'etc/cni/net.d'))).sort(), [CNI_CONFIG_NAME, 'escape']);
});
