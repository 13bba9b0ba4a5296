/**
 * The agent's own upgrade on a real package tree, with systemctl and the process exit
 * injected (the real ones run in test/systemd-agent-upgrade*.test.ts): the switch writes
 * the record before it flips anything; the new version confirms only once reported; the
 * old version, switched back by the guard, fails the command with the guard's reason; an
 * agent not in the layout, or a manifest not the agent's own, changes nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger } from '@nodekeeper/common';
import type { InstallParams, PackageManifest } from '@nodekeeper/protocol';
import { Installer } from '../install/installer.ts';
import { Journal, type JournalRecord } from '../install/journal.ts';
import { readCurrent, switchCurrent, versionDir } from '../install/layout.ts';
import { readPrevious } from '../install/previous-version.ts';
import type { ServiceManager } from '../services/service-manager.ts';
import { readPending, upgradeFiles } from './record.ts';
import { HANDOVER_EXIT_CODE, SelfUpgrade } from './self-upgrade.ts';

const PKGS = '/var/lib/nodekeeper/packages';
const manifest: PackageManifest = { name: 'nodekeeper-agent', format: 'tar.gz', links: [], service: 'nodekeeper-agent.service', healthProbe: 'agent', healthTimeoutMs: 30_000 };
const params: InstallParams = { package: 'nodekeeper-agent', version: '2.0.0', artifact: { url: 'https://artifacts.invalid/a.tgz', sha256: 'a'.repeat(64), size: 10 }, manifest };
const log = createLogger({ name: 'self-upgrade-test', level: 'silent' });

async function tree(t: { after(fn: () => Promise<void>): void }) {
  const hostRoot = await mkdtemp(path.join(os.tmpdir(), 'nk-selfup-'));
  t.after(() => rm(hostRoot, { recursive: true, force: true }));
  const calls: string[] = [];
  const exits: number[] = [];
  const make = (running: string) => {
    const installDir = path.join(hostRoot, PKGS, 'nodekeeper-agent/versions', running);
    return new SelfUpgrade({ hostRoot, packagesDir: PKGS, running, installDir, systemctl: async (a) => void calls.push(a.join(' ')), exit: (c) => void exits.push(c), killAt: null, log });
  };
  const first = make('1.0.0');
  for (const v of ['1.0.0', '2.0.0']) {
    await mkdir(path.join(versionDir(first.layout, v), 'systemd'), { recursive: true });
    await writeFile(path.join(versionDir(first.layout, v), 'systemd/nodekeeper-agent-guard'), `#!/bin/sh\n# guard of ${v}\n`);
  }
  await switchCurrent(first.layout, '1.0.0');
  return { hostRoot, calls, exits, make, l: first.layout };
}

const rec = (step: JournalRecord['step'] = 'switch'): JournalRecord => ({ commandId: 'ro-1', params, previousVersion: '1.0.0', step, history: [] });

test('the switch records, arms the timer, flips previous then current, and hands over; the new version confirms once reported', async (t) => {
  const f = await tree(t);
  const old = f.make('1.0.0');
  await old.start();
  assert.equal(await readFile(upgradeFiles(f.l).guard, 'utf8'), '#!/bin/sh\n# guard of 1.0.0\n', 'a first start puts its guard in place');
  void old.switchTo('ro-1', params, '1.0.0');
  await sleep(100);
  assert.deepEqual(f.exits, [HANDOVER_EXIT_CODE]);
  assert.deepEqual(f.calls, ['start --no-block nodekeeper-agent-rollback.timer']);
  assert.equal(await readCurrent(f.l), '2.0.0');
  assert.equal(await readPrevious(f.l), '1.0.0');
  const pending = await readPending(f.l);
  assert.ok(pending !== null && pending !== 'corrupt' && pending.to === '2.0.0' && pending.commandId === 'ro-1');

  const fresh = f.make('2.0.0');
  await fresh.start();
  let settled = false;
  const outcome = fresh.recover(rec()).then((o) => ((settled = true), o));
  await sleep(100);
  assert.equal(settled, false, 'not confirmed before the first report');
  assert.notEqual(await readPending(f.l), null);
  fresh.reportedHealthy();
  const o = await outcome;
  assert.equal(o.error, null);
  assert.equal(o.result.outcome, 'installed');
  assert.equal(o.result.activeVersion, '2.0.0');
  assert.equal(await readPending(f.l), null, 'the record is gone: committed');
  assert.equal(await readFile(upgradeFiles(f.l).guard, 'utf8'), '#!/bin/sh\n# guard of 2.0.0\n', 'the confirmed version\'s guard replaces the old one');
  assert.equal(f.calls.at(-1), 'stop --no-block nodekeeper-agent-rollback.timer');
});

test('switched back by the guard: the old agent fails the command NK_AGENT_UPGRADE_REVERTED with the reason, and clears the record', async (t) => {
  const f = await tree(t);
  void f.make('1.0.0').switchTo('ro-1', params, '1.0.0');
  await sleep(100);
  // What the guard does: current back, then the reason.
  await switchCurrent(f.l, '1.0.0');
  await writeFile(upgradeFiles(f.l).reverted, 'reason=crash loop: 3 starts of 2.0.0 without a confirm\nat=1\n');
  const back = f.make('1.0.0');
  await back.start();
  const o = await back.recover(rec());
  assert.equal(o.error?.code, 'NK_AGENT_UPGRADE_REVERTED');
  assert.match(o.error?.message ?? '', /crash loop/);
  assert.equal(o.result.outcome, 'rolled-back');
  assert.equal(o.result.activeVersion, '1.0.0');
  assert.equal(await readPending(f.l), null);
  await assert.rejects(stat(upgradeFiles(f.l).reverted));
});

test('an agent that does not run the version current names refuses to switch; nothing is written', async (t) => {
  const f = await tree(t);
  const o = await f.make('0.1.0').switchTo('ro-1', params, '1.0.0');
  assert.equal(o.error?.code, 'NK_AGENT_UPGRADE_NOT_IN_LAYOUT');
  assert.equal(o.result.outcome, 'refused');
  assert.equal(await readPending(f.l), null);
  assert.equal(await readCurrent(f.l), '1.0.0');
  assert.deepEqual(f.exits, []);
});

test('an agent not under systemd refuses to switch: nothing would restart it, no guard would take it back', async (t) => {
  const f = await tree(t);
  const bare = new SelfUpgrade({ hostRoot: f.hostRoot, packagesDir: PKGS, running: '1.0.0', installDir: null, systemctl: null, exit: (c) => void f.exits.push(c), killAt: null, log });
  const o = await bare.switchTo('ro-1', params, '1.0.0');
  assert.equal(o.error?.code, 'NK_AGENT_UPGRADE_NEEDS_SYSTEMD');
  assert.equal(await readPending(f.l), null);
  assert.equal(await readCurrent(f.l), '1.0.0');
  assert.deepEqual(f.exits, []);
});

test('the installer refuses a nodekeeper-agent manifest that is not the agent\'s own, before fetching anything', async (t) => {
  const f = await tree(t);
  const services: ServiceManager = { kind: 'supervisor', restart: async () => {}, stop: async () => {}, state: async (unit) => ({ unit, manager: 'none', activeState: null, subState: null, restarts: null }) };
  const installer = new Installer({
    hostRoot: f.hostRoot, packagesDir: PKGS, recordedVersionsFile: '/var/lib/nodekeeper/packages.json', journal: new Journal(path.join(f.hostRoot, 'state')), services,
    health: async () => ({ healthy: true, message: '' }), trustedKeys: [], download: { timeoutMs: 1000, idleTimeoutMs: 1000, allowHttp: true },
    selfUpgrade: f.make('1.0.0'), log,
  });
  for (const bad of [{ ...manifest, service: 'kubelet.service' }, { ...manifest, healthProbe: 'none' as const }]) {
    const o = await installer.install('ro-2', { ...params, manifest: bad });
    assert.equal(o.error?.code, 'NK_AGENT_UPGRADE_MANIFEST_INVALID', JSON.stringify(o));
    assert.equal(o.result.outcome, 'refused');
  }
  const other = await installer.install('ro-3', { ...params, package: 'kubelet', manifest: { ...manifest, name: 'kubelet', links: [{ path: '/usr/bin/kubelet', target: 'kubelet' }] } });
  assert.equal(other.error?.code, 'NK_AGENT_UPGRADE_MANIFEST_INVALID', 'no other package restarts the agent');
  const rb = await installer.rollbackPackage('ro-4', { package: 'nodekeeper-agent', manifest, expectedVersion: '1.0.0' });
  assert.equal(rb.error?.code, 'NK_AGENT_UPGRADE_MANIFEST_INVALID', 'package.rollback of the agent is refused');
  assert.equal(await readCurrent(f.l), '1.0.0');
  assert.equal(await readPending(f.l), null);
});
