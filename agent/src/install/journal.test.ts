/**
 * The journal: each step appended durably, unfinished installs listed in id order, a
 * corrupt record reported rather than skipped (skipping would lose an install in flight).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { hasCode } from '@nodekeeper/common';
import type { InstallParams } from '@nodekeeper/protocol';
import { Journal } from './journal.ts';

const params: InstallParams = {
  package: 'kubelet',
  version: '1.32.0',
  artifact: { url: 'https://x/k.tgz', sha256: 'a'.repeat(64), size: 10 },
  manifest: { name: 'kubelet', format: 'tar.gz', links: [{ path: '/usr/bin/kubelet', target: 'kubelet' }], service: 'kubelet.service', healthProbe: 'kubelet', healthTimeoutMs: 5000 },
};

test('steps are appended, listed while unfinished, and gone once removed', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'nk-journal-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const j = new Journal(dir);
  assert.deepEqual(await j.unfinished(), []);
  const base = { commandId: 'c-2', params, previousVersion: '1.31.2' };
  let rec = await j.enter(base, null, 'download');
  rec = await j.enter(base, rec, 'verify');
  rec = await j.enter({ ...base, failure: { step: 'health', code: 'NK_INSTALL_HEALTH_TIMEOUT', message: 'x' } }, rec, 'rollback-switch');
  await j.enter({ commandId: 'c-1', params, previousVersion: null }, null, 'switch');
  const open = await j.unfinished();
  assert.deepEqual(open.map((r) => [r.commandId, r.step]), [['c-1', 'switch'], ['c-2', 'rollback-switch']]);
  assert.deepEqual(open[1]?.history.map((h) => h.step), ['download', 'verify', 'rollback-switch']);
  assert.equal(open[1]?.failure?.step, 'health');
  const c2 = open[1];
  assert.ok(c2 !== undefined && c2.kind !== 'rollback');
  assert.equal(c2.previousVersion, '1.31.2');
  await j.remove('c-1');
  await j.remove('c-2');
  assert.deepEqual(await j.unfinished(), []);
  assert.deepEqual(await readdir(j.dir), [], 'no temp files are left behind');
  await assert.rejects(j.remove('../escape'), TypeError);
});

test('a corrupt journal record is quarantined and reported, not silently skipped, and the others are listed', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'nk-journal-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const j = new Journal(dir);
  await j.enter({ commandId: 'c-1', params, previousVersion: null }, null, 'download');
  await j.enter({ commandId: 'c-2', params, previousVersion: null }, null, 'download');
  await writeFile(path.join(j.dir, 'c-1.json'), '{"commandId": "c-1", "par');
  const { records, quarantined } = await j.scan();
  assert.deepEqual(records.map((r) => r.commandId), ['c-2']);
  assert.deepEqual(quarantined.map((q) => q.commandId), ['c-1']);
  assert.match(quarantined[0]?.file ?? '', /quarantine\/c-1\.json\./);
  assert.deepEqual((await j.scan()).quarantined, [], 'moved aside once');
});

test('a rollback record lives in the same journal, told apart by its kind', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'nk-journal-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const j = new Journal(dir);
  const rb = { kind: 'rollback' as const, commandId: 'r-1', params: { package: 'kubelet', manifest: params.manifest, expectedVersion: null }, fromVersion: '1.32.0', toVersion: 'adopted-0123456789ab' };
  let rec = await j.enterRollback(rb, null, 'switch');
  rec = await j.enterRollback({ ...rb, failure: { step: 'health', code: 'NK_INSTALL_HEALTH_TIMEOUT', message: 'x' } }, rec, 'rollback-switch');
  await j.enter({ commandId: 'c-1', params, previousVersion: null }, null, 'stage');
  const open = await j.unfinished();
  assert.deepEqual(open.map((r) => [r.commandId, r.kind ?? 'install', r.step]), [['c-1', 'install', 'stage'], ['r-1', 'rollback', 'rollback-switch']]);
  const r1 = open[1];
  assert.ok(r1 !== undefined && r1.kind === 'rollback');
  assert.equal(r1.toVersion, 'adopted-0123456789ab');
  assert.equal(r1.fromVersion, '1.32.0');
  assert.deepEqual(r1.history.map((h) => h.step), ['switch', 'rollback-switch']);
});
