/**
 * The executor's dispatch of `probe.now` and `package.rollback`: answered, stored by id,
 * a re-delivered id answered from the store without running again; bad params and a
 * missing capability answered with their codes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '@nodekeeper/common';
import type { AgentMessage, Command, PackageManifest } from '@nodekeeper/protocol';
import { Installer } from '../install/installer.ts';
import { Journal } from '../install/journal.ts';
import { SupervisorServiceManager } from '../services/supervisor.ts';
import { CommandStore } from './command-store.ts';
import { CommandExecutor } from './executor.ts';

const manifest: PackageManifest = { name: 'kubelet', format: 'tar.gz', links: [{ path: '/usr/bin/kubelet', target: 'kubelet' }], service: null, healthProbe: 'none', healthTimeoutMs: 1000 };

async function executor(t: { after(fn: () => Promise<void>): void }, probeNow?: () => Promise<string>) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'nk-executor-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const hostRoot = path.join(dir, 'root');
  const journal = new Journal(path.join(dir, 'state'));
  const store = new CommandStore(path.join(dir, 'state'));
  const log = createLogger({ name: 'executor-test', level: 'silent' });
  const installer = new Installer({
    hostRoot,
    packagesDir: '/var/lib/nodekeeper/packages',
    recordedVersionsFile: '/var/lib/nodekeeper/packages.json',
    journal,
    services: new SupervisorServiceManager(hostRoot),
    health: async () => ({ healthy: true, message: 'ok' }),
    trustedKeys: [],
    download: { timeoutMs: 1000, idleTimeoutMs: 1000, allowHttp: true },
    log,
  });
  const sent: AgentMessage[] = [];
  const ex = new CommandExecutor({ installer, journal, store, log, send: (m) => (sent.push(m), true), ...(probeNow === undefined ? {} : { probeNow }) });
  return { ex, sent, store };
}

const cmd = (commandId: string, kind: string, params: Record<string, unknown> = {}): Command => ({ type: 'command', commandId, kind, params, timeoutMs: 60_000 });

test('probe.now probes once, answers ok with the message, and a re-delivered id does not probe again', async (t) => {
  let probes = 0;
  const { ex, sent, store } = await executor(t, async () => `probed now (#${++probes}); a full report was sent`);
  const r = await ex.handle(cmd('p-1', 'probe.now'));
  assert.deepEqual(r, { type: 'command.result', commandId: 'p-1', ok: true, result: { message: 'probed now (#1); a full report was sent' } });
  assert.deepEqual(sent, [r]);
  assert.equal((await store.get('p-1'))?.kind, 'probe.now');
  assert.deepEqual(await ex.handle(cmd('p-1', 'probe.now')), r);
  assert.equal(probes, 1);
});

test('probe.now that throws is answered NK_AGENT_PROBE_FAILED; without the capability it is unsupported', async (t) => {
  const { ex } = await executor(t, async () => {
    throw new Error('boom');
  });
  const r = await ex.handle(cmd('p-1', 'probe.now'));
  assert.equal(r?.ok, false);
  assert.equal(r?.error?.code, 'NK_AGENT_PROBE_FAILED');
  const plain = await executor(t);
  assert.equal((await plain.ex.handle(cmd('p-2', 'probe.now')))?.error?.code, 'NK_AGENT_COMMAND_UNSUPPORTED');
  assert.equal((await plain.ex.handle(cmd('x-1', 'service.restart')))?.error?.code, 'NK_AGENT_COMMAND_UNSUPPORTED');
});

test('package.rollback: bad params are NK_INSTALL_BAD_PARAMS; nothing to return to is refused, stored, and re-delivered as is', async (t) => {
  const { ex, store } = await executor(t);
  const bad = await ex.handle(cmd('r-0', 'package.rollback', { package: 'kubelet', manifest }));
  assert.equal(bad?.error?.code, 'NK_INSTALL_BAD_PARAMS');
  const mismatch = await ex.handle(cmd('r-1', 'package.rollback', { package: 'containerd', manifest, expectedVersion: null }));
  assert.equal(mismatch?.error?.code, 'NK_INSTALL_BAD_PARAMS');
  const r = await ex.handle(cmd('r-2', 'package.rollback', { package: 'kubelet', manifest, expectedVersion: null }));
  assert.equal(r?.ok, false);
  assert.equal(r?.error?.code, 'NK_INSTALL_NO_PREVIOUS');
  assert.equal(r?.result?.['outcome'], 'refused');
  assert.equal((await store.get('r-2'))?.kind, 'package.rollback');
  assert.deepEqual(await ex.handle(cmd('r-2', 'package.rollback', { package: 'kubelet', manifest, expectedVersion: null })), r);
});

test('settle: names the commands still running after the grace, and resolves at once when none is', async (t) => {
  let release!: () => void;
  let started!: () => void;
  const held = new Promise<void>((resolve) => { release = resolve; });
  const probing = new Promise<void>((resolve) => { started = resolve; });
  const { ex } = await executor(t, async () => {
    started();
    await held;
    return 'probed';
  });
  const running = ex.handle(cmd('p-1', 'probe.now'));
  await probing;
  const t0 = Date.now();
  assert.deepEqual(await ex.settle(100), ['p-1']);
  assert.ok(Date.now() - t0 >= 90, 'it waited for the grace');
  release();
  await running;
  const t1 = Date.now();
  assert.deepEqual(await ex.settle(10_000), []);
  assert.ok(Date.now() - t1 < 1000, 'nothing running: no wait');
});

test('settle: an install still being recovered at a stop is named too', async (t) => {
  let release!: () => void;
  const held = new Promise<void>((resolve) => { release = resolve; });
  const rec = { commandId: 'ro-1', params: { package: 'kubelet', version: '1.0.0' }, previousVersion: null, step: 'health', history: [] };
  let recovering!: () => void;
  const started = new Promise<void>((resolve) => { recovering = resolve; });
  const installer = { recover: async () => { recovering(); await held; return { result: { package: 'kubelet', activeVersion: '1.0.0', previousVersion: null, outcome: 'installed', message: 'ok' }, error: null }; } } as unknown as Installer;
  const journal = { scan: async () => ({ records: [rec], quarantined: [] }), remove: async () => {} } as unknown as Journal;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'nk-executor-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const ex = new CommandExecutor({ installer, journal, store: new CommandStore(dir), log: createLogger({ name: 'executor-test', level: 'silent' }), send: () => true });
  const done = ex.recover();
  await started;
  assert.deepEqual(await ex.settle(50), ['ro-1']);
  release();
  await done;
  assert.deepEqual(await ex.settle(1000), []);
});
