/**
 * package.rollback's decisions on a real package tree, with the health check and the
 * service manager injected (the real ones run in test/install-rollback.test.ts): back to
 * `previous`; already there; nothing to return to; a previous version that fails is
 * undone (switched forward again) with the truth in activeVersion; recovery from a
 * journal record carries a rollback through, or finishes its undo.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '@nodekeeper/common';
import type { PackageManifest, RollbackParams, ServiceState } from '@nodekeeper/protocol';
import type { ServiceManager } from '../services/service-manager.ts';
import type { HealthCheck } from './health.ts';
import { Installer } from './installer.ts';
import { Journal, type JournalStep } from './journal.ts';
import { packageLayout, readCurrent, switchCurrent, versionDir, type PackageLayout } from './layout.ts';
import { expectationMismatch } from './package-rollback.ts';
import { readPrevious, writePrevious } from './previous-version.ts';

const VA = '1.31.2';
const VB = '1.32.0';
const manifest: PackageManifest = { name: 'kubelet', format: 'tar.gz', links: [{ path: '/usr/bin/kubelet', target: 'kubelet' }], service: 'kubelet.service', healthProbe: 'kubelet', healthTimeoutMs: 1000 };
const params: RollbackParams = { package: 'kubelet', manifest, expectedVersion: `Kubernetes v${VA}` };
const RECORDED = '/var/lib/nodekeeper/packages.json';

/** Records what it was asked; `failRestartOf` makes restarting while that version is active fail. */
class RecordingServices implements ServiceManager {
  readonly kind = 'supervisor' as const;
  readonly calls: string[] = [];
  failRestartOf: string | null = null;
  private readonly l: PackageLayout;
  constructor(l: PackageLayout) {
    this.l = l;
  }
  async restart(unit: string): Promise<void> {
    const active = await readCurrent(this.l);
    this.calls.push(`restart ${unit} at ${active}`);
    if (active === this.failRestartOf) throw new Error(`${unit} exited at once`);
  }
  async stop(unit: string): Promise<void> {
    this.calls.push(`stop ${unit}`);
  }
  async state(unit: string): Promise<ServiceState> {
    return { unit, manager: 'none', activeState: null, subState: null, restarts: null };
  }
}

interface Fixture {
  readonly hostRoot: string;
  readonly l: PackageLayout;
  readonly installer: Installer;
  readonly journal: Journal;
  readonly services: RecordingServices;
  /** Versions whose health check fails. */
  readonly sick: Set<string>;
  readonly steps: JournalStep[];
}

/** A kubelet tree with vA and vB unpacked, `current` at `at`, `previous` at `previous`. */
async function fixture(t: { after(fn: () => Promise<void>): void }, at: string | null, previous: string | null): Promise<Fixture> {
  const hostRoot = await mkdtemp(path.join(os.tmpdir(), 'nk-rollback-'));
  t.after(() => rm(hostRoot, { recursive: true, force: true }));
  const l = packageLayout(hostRoot, '/var/lib/nodekeeper/packages', 'kubelet');
  for (const v of [VA, VB]) {
    await mkdir(versionDir(l, v), { recursive: true });
    await writeFile(path.join(versionDir(l, v), 'kubelet'), `kubelet ${v}`);
  }
  if (at !== null) await switchCurrent(l, at);
  await writePrevious(l, previous);
  const sick = new Set<string>();
  // The health check looks at what is really active, as the real probe does through the link.
  const health: HealthCheck = async (_probe, version) => {
    const active = await readCurrent(l);
    if (active !== version) return { healthy: false, message: `${active} is active, not ${version}` };
    return sick.has(version) ? { healthy: false, message: `${version} answers 500` } : { healthy: true, message: 'ok' };
  };
  const journal = new Journal(path.join(hostRoot, 'state'));
  const services = new RecordingServices(l);
  const steps: JournalStep[] = [];
  const installer = new Installer({
    hostRoot,
    packagesDir: '/var/lib/nodekeeper/packages',
    recordedVersionsFile: RECORDED,
    journal,
    services,
    health,
    trustedKeys: [],
    download: { timeoutMs: 1000, idleTimeoutMs: 1000, allowHttp: true },
    healthIntervalMs: 50,
    hooks: { beforeStep: (s) => void steps.push(s) },
    log: createLogger({ name: 'rollback-test', level: 'silent' }),
  });
  return { hostRoot, l, installer, journal, services, sick, steps };
}

const recorded = async (hostRoot: string): Promise<unknown> => (JSON.parse(await readFile(path.join(hostRoot, RECORDED), 'utf8')) as Record<string, { version: string }>)['kubelet']?.version;

test('rolls back to previous, links it, restarts it, and a second rollback finds it already active', async (t) => {
  const f = await fixture(t, VB, VA);
  const o = await f.installer.rollbackPackage('r-1', params);
  assert.equal(o.error, null, JSON.stringify(o));
  assert.deepEqual({ ...o.result, message: '' }, { package: 'kubelet', activeVersion: VA, previousVersion: VB, outcome: 'rolled-back', message: '' });
  assert.equal(await readCurrent(f.l), VA);
  assert.equal(await readlink(path.join(f.hostRoot, 'usr/bin/kubelet')), '../../var/lib/nodekeeper/packages/kubelet/current/kubelet');
  assert.equal(await readPrevious(f.l), VA, 'previous now names the version rolled back to');
  assert.equal(await recorded(f.hostRoot), VA);
  assert.deepEqual(f.services.calls, [`restart kubelet.service at ${VA}`]);
  assert.deepEqual(f.steps, ['switch', 'restart', 'health', 'commit']);

  const again = await f.installer.rollbackPackage('r-2', params);
  assert.equal(again.error, null);
  assert.equal(again.result.outcome, 'already-installed');
  assert.equal(again.result.activeVersion, VA);
  assert.equal(await readCurrent(f.l), VA, 'no ping-pong back to vB');
  assert.equal(f.services.calls.length, 1, 'nothing was restarted');
});

test('nothing to return to is refused with NK_INSTALL_NO_PREVIOUS, and nothing changes', async (t) => {
  for (const [name, at, previous, gone] of [['no previous link', VA, null, false], ['nothing installed', null, null, false], ['previous dir deleted', VB, VA, true]] as const) {
    const f = await fixture(t, at, previous);
    if (gone) await rm(versionDir(f.l, VA), { recursive: true });
    const o = await f.installer.rollbackPackage('r-1', params);
    assert.equal(o.error?.code, 'NK_INSTALL_NO_PREVIOUS', name);
    assert.equal(o.result.outcome, 'refused', name);
    assert.equal(o.result.failedStep, 'switch', name);
    assert.equal(o.result.activeVersion, at, name);
    assert.equal(await readCurrent(f.l), at, name);
    assert.deepEqual(f.services.calls, [], name);
    assert.deepEqual(await f.journal.unfinished(), [], `${name}: nothing journaled`);
  }
});

test('a previous version that does not come up healthy is undone: vB active again, NK_INSTALL_ROLLBACK_FAILED', async (t) => {
  const f = await fixture(t, VB, VA);
  f.sick.add(VA);
  const o = await f.installer.rollbackPackage('r-1', params);
  assert.equal(o.error?.code, 'NK_INSTALL_ROLLBACK_FAILED');
  assert.equal(o.result.outcome, 'refused');
  assert.equal(o.result.failedStep, 'health');
  assert.equal(o.result.activeVersion, VB, 'activeVersion tells the truth');
  assert.match(o.result.message, /switched forward again to 1\.32\.0, healthy/);
  assert.equal(await readCurrent(f.l), VB);
  assert.equal(await readPrevious(f.l), VA, 'previous is untouched: the rollback can be retried');
  assert.deepEqual(f.services.calls, [`restart kubelet.service at ${VA}`, `restart kubelet.service at ${VB}`]);
  assert.deepEqual(f.steps, ['switch', 'restart', 'health', 'rollback-switch', 'rollback-restart', 'rollback-health']);
});

test('a restart failure is undone too, and a vB that then fails as well is reported as such', async (t) => {
  const f = await fixture(t, VB, VA);
  f.services.failRestartOf = VA;
  f.sick.add(VB);
  const o = await f.installer.rollbackPackage('r-1', params);
  assert.equal(o.error?.code, 'NK_INSTALL_ROLLBACK_FAILED');
  assert.equal(o.result.failedStep, 'restart');
  assert.equal(o.result.activeVersion, VB);
  assert.match(o.result.message, /exited at once.*not healthy either/);
});

test('recovery carries an interrupted rollback through, and finishes an interrupted undo', async (t) => {
  const base = { kind: 'rollback' as const, commandId: 'r-1', params, fromVersion: VB, toVersion: VA };
  // Killed before the switch acted: current still vB.
  const f1 = await fixture(t, VB, VA);
  const rec1 = await f1.journal.enterRollback(base, null, 'switch');
  const o1 = await f1.installer.recover(rec1);
  assert.equal(o1.result.outcome, 'rolled-back');
  assert.equal(await readCurrent(f1.l), VA);
  assert.equal(await readPrevious(f1.l), VA);

  // Killed after the commit wrote previous: the commit is repeated, with the same result.
  const f2 = await fixture(t, VA, VA);
  const rec2 = await f2.journal.enterRollback(base, null, 'commit');
  const o2 = await f2.installer.recover(rec2);
  assert.equal(o2.result.outcome, 'rolled-back');
  assert.equal(o2.result.activeVersion, VA);

  // Killed while switching forward again: the undo is run again, ending at vB.
  const f3 = await fixture(t, VA, VA);
  f3.sick.add(VA);
  const rec3 = await f3.journal.enterRollback({ ...base, failure: { step: 'health', code: 'NK_INSTALL_HEALTH_TIMEOUT', message: 'x' } }, null, 'rollback-restart');
  const o3 = await f3.installer.recover(rec3);
  assert.equal(o3.error?.code, 'NK_INSTALL_ROLLBACK_FAILED');
  assert.equal(o3.result.activeVersion, VB);
  assert.equal(await readCurrent(f3.l), VB);
});

test('expectedVersion is compared as a version, informational only', () => {
  assert.equal(expectationMismatch('Kubernetes v1.31.2', '1.31.2'), null);
  assert.equal(expectationMismatch(null, '1.31.2'), null);
  assert.equal(expectationMismatch('Kubernetes v1.31.2', 'adopted-0123456789ab'), null);
  assert.equal(expectationMismatch('gibberish', '1.31.2'), null);
  assert.match(expectationMismatch('v1.30.0', '1.31.2') ?? '', /expected v1\.30\.0/);
});
