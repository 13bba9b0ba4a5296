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
