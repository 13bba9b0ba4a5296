/**
 * The supervisor adapter with real processes: restart replaces the process, stop ends
 * it, and a pid file naming a recycled pid (another start time) is never signalled.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { hasCode } from '@nodekeeper/common';
import { SupervisorServiceManager } from './supervisor.ts';
import { probeService } from '../probes/service.ts';
import { createProbeContext } from '../probes/context.ts';
import { defaultProbeConfig } from '../probes/config.ts';

test('restart starts, replaces and stop ends a supervised process; state follows', async (t) => {
  const hostRoot = await mkdtemp(path.join(os.tmpdir(), 'nk-supervise-'));
  const sup = new SupervisorServiceManager(hostRoot);
  t.after(async () => {
    await sup.stop('sleeper.service');
    await rm(hostRoot, { recursive: true, force: true });
  });
  // argv[0] is a host path: /bin/sleep resolves under the host root, so link the real one in.
  await writeFile(path.join(hostRoot, 'sleep.sh'), '#!/bin/sh\necho started "$GREETING"\nexec /bin/sleep 30\n', { mode: 0o755 });
  await sup.define('sleeper.service', { argv: ['/sleep.sh'], env: { GREETING: 'hi' } });
  assert.equal((await sup.state('sleeper.service')).activeState, 'inactive');
  await sup.restart('sleeper.service');
  const first = await sup.running('sleeper.service');
  assert.ok(first !== null);
  await sup.restart('sleeper.service');
  const second = await sup.running('sleeper.service');
  assert.ok(second !== null && second.pid !== first.pid);
  assert.throws(() => process.kill(first.pid, 0), { code: 'ESRCH' }, 'the first process is gone');
  assert.equal((await sup.state('sleeper.service')).activeState, 'active');
  await sup.stop('sleeper.service');
  assert.equal(await sup.running('sleeper.service'), null);
  assert.match(await readFile(path.join(hostRoot, 'var/log/nodekeeper/sleeper.service.log'), 'utf8'), /started hi/);
});

test('a pid file whose start time does not match is not signalled', async (t) => {
  const hostRoot = await mkdtemp(path.join(os.tmpdir(), 'nk-supervise-'));
  const bystander = spawn('/bin/sleep', ['30'], { stdio: 'ignore' });
  t.after(async () => {
    bystander.kill('SIGKILL');
    await rm(hostRoot, { recursive: true, force: true });
  });
  const sup = new SupervisorServiceManager(hostRoot);
  await sup.define('x.service', { argv: ['/nonexistent'] });
  await mkdir(path.join(hostRoot, 'run/nodekeeper'), { recursive: true });
  await writeFile(path.join(hostRoot, 'run/nodekeeper/x.service.pid'), JSON.stringify({ pid: bystander.pid, startTime: '1' }));
  await sup.stop('x.service');
  assert.equal(bystander.exitCode, null);
  assert.doesNotThrow(() => process.kill(bystander.pid ?? -1, 0), 'the recycled pid was left alone');
  await assert.rejects(sup.restart('x.service'), (e) => hasCode(e, 'NK_SERVICE_START_FAILED'));
});

test('starts are counted durably; state and the service probe report restarts', async (t) => {
  const hostRoot = await mkdtemp(path.join(os.tmpdir(), 'nk-supervise-'));
  const sup = new SupervisorServiceManager(hostRoot);
  t.after(async () => {
    await sup.stop('counted.service');
    await rm(hostRoot, { recursive: true, force: true });
  });
  await writeFile(path.join(hostRoot, 'sleep.sh'), '#!/bin/sh\nexec /bin/sleep 30\n', { mode: 0o755 });
  const ctx = createProbeContext({ ...defaultProbeConfig, hostRoot });
  // Not defined: the probe knows no manager, as before.
  assert.deepEqual(await probeService('counted.service', ctx), { unit: 'counted.service', manager: 'none', activeState: null, subState: null, restarts: null });
  await sup.define('counted.service', { argv: ['/sleep.sh'] });
  assert.equal((await sup.state('counted.service')).restarts, 0);
  await sup.restart('counted.service');
  assert.equal((await sup.state('counted.service')).restarts, 0, 'the first start is not a restart');
  // Planned restarts (of a running unit, or a start after a stop) are not counted, as systemd's NRestarts ignores systemctl restart.
  await sup.restart('counted.service');
  await sup.stop('counted.service');
  await sup.restart('counted.service');
  assert.equal((await sup.state('counted.service')).restarts, 0, 'an install switch or a repair of a running unit is no crash');
  // Killed twice, and started again each time: those are restarts after a crash.
  for (let i = 0; i < 2; i++) {
    const rec = await sup.running('counted.service');
    assert.ok(rec !== null);
    process.kill(rec.pid, 'SIGKILL');
    for (let t = 0; t < 200 && (await sup.running('counted.service')) !== null; t++) await new Promise((r) => setTimeout(r, 25));
    await sup.restart('counted.service');
  }
  // A fresh adapter (an agent restart) reads the same count.
  assert.equal((await new SupervisorServiceManager(hostRoot).state('counted.service')).restarts, 2);
  assert.deepEqual(await probeService('counted.service', ctx), { unit: 'counted.service', manager: 'none', activeState: 'active', subState: 'running', restarts: 2 });
  assert.equal(await sup.starts('counted.service'), 5, 'every start is still counted');
  await sup.stop('counted.service');
  assert.equal((await probeService('counted.service', ctx)).activeState, 'inactive');
});
