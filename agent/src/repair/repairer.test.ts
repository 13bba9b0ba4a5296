/**
 * node.reboot (never the test machine's: the runner is injected) and the config
 * allow-list's pure check.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '@nodekeeper/common';
import type { CommandRunner } from '../probes/run-command.ts';
import { SupervisorServiceManager } from '../services/supervisor.ts';
import { allowedDirOf } from './config-path.ts';
import { RepairLog } from './repair-log.ts';
import { Repairer } from './repairer.ts';

async function repairer(t: { after(fn: () => Promise<void>): void }, allowReboot: boolean, exit = 0) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'nk-repairer-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const calls: string[][] = [];
  let boot = 'boot-1';
  const run: CommandRunner = async (file, args) => {
    calls.push([file, ...args]);
    return { code: exit, signal: null, stdout: '', stderr: exit === 0 ? '' : 'Failed to reboot', timedOut: false, truncated: false, spawnError: null };
  };
  const record = new RepairLog(path.join(dir, 'state'));
  const r = new Repairer({
    hostRoot: dir,
    stateDir: path.join(dir, 'state'),
    services: new SupervisorServiceManager(dir),
    health: async () => ({ healthy: true, message: 'ok' }),
    units: { kubelet: 'kubelet.service', runtime: 'containerd.service' },
    configDirs: ['/etc/cni/net.d'],
    allowReboot,
    run,
    record,
    log: createLogger({ name: 'repairer-test', level: 'silent' }),
    bootId: async () => boot,
  });
  return { r, calls, record, reboot: (id: string) => { boot = id; } };
}

test('node.reboot is refused unless the agent allows it, and runs nothing', async (t) => {
  const { r, calls, record } = await repairer(t, false);
  const o = await r.reboot('rb-1', { reason: 'NeedsReboot' });
  assert.equal(o.error?.code, 'NK_REPAIR_REBOOT_NOT_ALLOWED');
  assert.equal(o.result.outcome, 'refused');
  assert.deepEqual(calls, []);
  assert.equal((await record.all())[0]?.kind, 'node.reboot');
});

test('allowed: systemctl reboot once; the same command after the reboot answers rebooted, not again', async (t) => {
  const { r, calls, reboot } = await repairer(t, true);
  const o = await r.reboot('rb-2', { reason: 'kernel hung tasks' });
  assert.equal(o.error, null);
  assert.equal(o.result.outcome, 'rebooting');
  assert.deepEqual(calls, [['/usr/bin/systemctl', 'reboot']]);
  assert.equal((await r.reboot('rb-2', { reason: 'again' })).result.outcome, 'rebooting');
  reboot('boot-2');
  const after = await r.reboot('rb-2', { reason: 'again' });
  assert.equal(after.result.outcome, 'healthy');
  assert.match(after.result.message, /boot-1 -> boot-2/);
  assert.equal(calls.length, 1);
});

test('a failing systemctl reboot is NK_REPAIR_REBOOT_FAILED and may be retried', async (t) => {
  const { r, calls } = await repairer(t, true, 1);
  assert.equal((await r.reboot('rb-3', { reason: 'x' })).error?.code, 'NK_REPAIR_REBOOT_FAILED');
  assert.equal((await r.reboot('rb-3', { reason: 'x' })).error?.code, 'NK_REPAIR_REBOOT_FAILED');
  assert.equal(calls.length, 2);
});

test('allowedDirOf: strictly below an allowed dir, no dot segments', () => {
  const dirs = ['/etc/cni/net.d', '/etc/containerd/'];
  assert.equal(allowedDirOf('/etc/cni/net.d/10.conflist', dirs), '/etc/cni/net.d');
  assert.equal(allowedDirOf('/etc/containerd/config.toml', dirs), '/etc/containerd');
  for (const bad of ['/etc/cni/net.d', '/etc/cni/net.d/', '/etc/cni/net.dx/a', '/etc/cni/net.d/../x', '/etc/cni/net.d/./x', '/etc/cni/net.d//x', 'etc/cni/net.d/x', '/etc/passwd']) {
    assert.equal(allowedDirOf(bad, dirs), null, bad);
  }
});
