/**
 * node.reboot (never the test machine's: the runner is injected) and the config
 * allow-list's pure check.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '@nodekeeper/common';
import type { CommandRunner } from '../probes/run-command.ts';
import { REBOOT_REQUEST, SupervisorServiceManager } from '../services/supervisor.ts';
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

test('without systemd: the supervisor takes the reboot request; the boot id is read under the host root', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'nk-repairer-sv-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const bootFile = path.join(dir, 'proc/sys/kernel/random/boot_id');
  await mkdir(path.dirname(bootFile), { recursive: true });
  await writeFile(bootFile, '11111111-2222-3333-4444-555555555555\n');
  const services = new SupervisorServiceManager(dir);
  const calls: string[][] = [];
  const r = new Repairer({
    hostRoot: dir,
    stateDir: path.join(dir, 'state'),
    services,
    health: async () => ({ healthy: true, message: 'ok' }),
    units: { kubelet: 'kubelet.service', runtime: 'containerd.service' },
    configDirs: ['/etc/cni/net.d'],
    allowReboot: true,
    run: async (file, args) => {
      calls.push([file, ...args]);
      return { code: 0, signal: null, stdout: '', stderr: '', timedOut: false, truncated: false, spawnError: null };
    },
    record: new RepairLog(path.join(dir, 'state')),
    log: createLogger({ name: 'repairer-test', level: 'silent' }),
    rebootNode: (reason) => services.requestReboot(reason),
  });
  const o = await r.reboot('rb-sv', { reason: 'reboot rollout kernel' });
  assert.equal(o.result.outcome, 'rebooting');
  assert.deepEqual(calls, [], 'systemctl is not run');
  const request = JSON.parse(await readFile(path.join(dir, REBOOT_REQUEST), 'utf8')) as { reason: string };
  assert.equal(request.reason, 'reboot rollout kernel');
  // The node "rebooted": a new boot id under the host root; the re-delivered command answers, never reboots again.
  await rm(path.join(dir, REBOOT_REQUEST));
  await writeFile(bootFile, '66666666-2222-3333-4444-555555555555\n');
  const again = await r.reboot('rb-sv', { reason: 'again' });
  assert.equal(again.result.outcome, 'healthy');
  assert.match(again.result.message, /boot 11111111-2222-3333-4444-555555555555 -> 66666666/);
  await assert.rejects(readFile(path.join(dir, REBOOT_REQUEST)), 'no second request');
});
