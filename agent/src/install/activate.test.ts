/**
 * The shared switch -> restart -> health -> commit routine on a real package tree and a
 * real journal, with the service manager and health check injected: each step is durable
 * in the journal before it acts, a failure names its step and leaves the undo to the
 * caller, and revert returns to a version and records it whatever its health.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { AppError } from '@nodekeeper/common';
import type { PackageManifest, ServiceState } from '@nodekeeper/protocol';
import type { ServiceManager } from '../services/service-manager.ts';
import { activate, revert, stepLog, type ActivateDeps } from './activate.ts';
import { InstallErrorCode } from './codes.ts';
import { Journal, type JournalRecord, type JournalStep } from './journal.ts';
import { packageLayout, readCurrent, switchCurrent, versionDir, type PackageLayout } from './layout.ts';

const VA = '1.31.2';
const VB = '1.32.0';
const RECORDED = '/var/lib/nodekeeper/packages.json';
const manifest: PackageManifest = { name: 'kubelet', format: 'tar.gz', links: [{ path: '/usr/bin/kubelet', target: 'kubelet' }], service: 'kubelet.service', healthProbe: 'kubelet', healthTimeoutMs: 200 };

async function fixture(t: { after(fn: () => Promise<void>): void }) {
  const hostRoot = await mkdtemp(path.join(os.tmpdir(), 'nk-activate-'));
  t.after(() => rm(hostRoot, { recursive: true, force: true }));
  const l: PackageLayout = packageLayout(hostRoot, '/var/lib/nodekeeper/packages', 'kubelet');
  for (const v of [VA, VB]) {
    await mkdir(versionDir(l, v), { recursive: true });
    await writeFile(path.join(versionDir(l, v), 'kubelet'), `kubelet ${v}`);
  }
  await switchCurrent(l, VA);
  const journal = new Journal(path.join(hostRoot, 'state'));
  const onDisk = async (): Promise<JournalStep> => (JSON.parse(await readFile(path.join(journal.dir, 'c-1.json'), 'utf8')) as JournalRecord).step;
  const acts: string[] = [];
  const sick = new Set<string>();
  const services: ServiceManager = {
    kind: 'supervisor',
    restart: async (unit) => void acts.push(`restart ${unit} at ${await readCurrent(l)} (journal: ${await onDisk()})`),
    stop: async (unit) => void acts.push(`stop ${unit}`),
    state: async (unit): Promise<ServiceState> => ({ unit, manager: 'none', activeState: null, subState: null, restarts: null }),
  };
  const d: ActivateDeps = {
    hostRoot,
    recordedVersionsFile: RECORDED,
    services,
    health: async (_probe, version) => {
      acts.push(`health ${version} (journal: ${await onDisk()})`);
      return sick.has(version) ? { healthy: false, message: `${version} answers 500` } : { healthy: true, message: 'ok' };
    },
    healthIntervalMs: 50,
  };
  const entered: string[] = [];
  const base = { commandId: 'c-1', params: { package: 'kubelet', version: VB, manifest } as JournalRecord['params'], previousVersion: VA };
  const first = await journal.enter(base, null, 'switch');
  const steps = stepLog(first, (prior, step) => journal.enter(base, prior, step), { beforeStep: async (s) => void entered.push(`before ${s} (journal: ${await onDisk()})`), afterStep: (s) => void entered.push(`after ${s}`) }, () => {});
  const recorded = async (): Promise<unknown> => (JSON.parse(await readFile(path.join(hostRoot, RECORDED), 'utf8')) as Record<string, { version: string | null }>)['kubelet']?.version;
  return { l, d, steps, acts, entered, sick, recorded };
}

test('activate switches, restarts, waits for health and commits, each step in the journal before it acts', async (t) => {
  const f = await fixture(t);
  const commits: string[] = [];
  const done = await activate(f.d, f.steps, { layout: f.l, manifest, version: VB, switch: { record: null }, reportSwitch: true, commitMessage: 'commit', commit: async () => void commits.push(await readCurrent(f.l) ?? 'none') });
  assert.deepEqual(done, { ok: true });
  assert.equal(await readCurrent(f.l), VB);
  assert.deepEqual(commits, [VB]);
  assert.equal(await f.recorded(), VB);
  assert.deepEqual(f.acts, [`restart kubelet.service at ${VB} (journal: restart)`, `health ${VB} (journal: health)`]);
  assert.deepEqual(f.entered, ['after switch', 'before restart (journal: restart)', 'after restart', 'before health (journal: health)', 'after health', 'before commit (journal: commit)', 'after commit']);
  assert.deepEqual(f.steps.rec.history.map((h) => h.step), ['switch', 'restart', 'health', 'commit']);
});

test('a version that is not healthy stops activate at health: nothing committed, the undo is the caller’s', async (t) => {
  const f = await fixture(t);
  f.sick.add(VB);
  let committed = false;
  const done = await activate(f.d, f.steps, { layout: f.l, manifest, version: VB, switch: { record: null }, reportSwitch: false, commitMessage: 'commit', commit: async () => void (committed = true) });
  assert.equal(done.ok, false);
  assert.equal(!done.ok && done.step, 'health');
  assert.equal(!done.ok && done.err instanceof AppError && done.err.code, InstallErrorCode.healthTimeout);
  assert.equal(committed, false);
  assert.equal(await readCurrent(f.l), VB, 'activate leaves the switch for the caller to undo');
  assert.equal(f.entered.includes('after switch'), false, 'reportSwitch: false hides the switch from the hooks');
});

test('revert switches back, restarts and records the version it returns to, healthy or not', async (t) => {
  const f = await fixture(t);
  await switchCurrent(f.l, VB);
  f.sick.add(VA);
  const verdict = await revert(f.d, f.steps, { layout: f.l, manifest, version: VA, switchMessage: 'back' });
  assert.equal(verdict.healthy, false);
  assert.equal(await readCurrent(f.l), VA);
  assert.equal(await f.recorded(), VA, 'the recorded version is the one `current` names');
  assert.deepEqual(f.steps.rec.history.map((h) => h.step), ['switch', 'rollback-switch', 'rollback-restart', 'rollback-health']);
  assert.equal(f.acts[0], `restart kubelet.service at ${VA} (journal: rollback-restart)`);
});

test('revert to nothing stops the service and records no version', async (t) => {
  const f = await fixture(t);
  const verdict = await revert(f.d, f.steps, { layout: f.l, manifest, version: null, switchMessage: 'back' });
  assert.equal(verdict.healthy, true);
  assert.equal(await readCurrent(f.l), null);
  assert.deepEqual(f.acts, ['stop kubelet.service']);
  assert.equal(await f.recorded(), undefined);
});
