import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { defaultProbeConfig } from './config.ts';
import { createProbeContext } from './context.ts';
import type { CommandResult, CommandRunner } from './run-command.ts';
import { probeService } from './service.ts';
import { parseSystemctlShow, serviceStateFromProps } from '../services/systemd-show.ts';

// Real `systemctl show --property=ActiveState,SubState,NRestarts` output (systemd 252).
const RUNNING = 'NRestarts=0\nActiveState=active\nSubState=running\n';
const CRASH_LOOPING = 'NRestarts=17\nActiveState=activating\nSubState=auto-restart\n';
const NOT_FOUND = 'NRestarts=0\nActiveState=inactive\nSubState=dead\n';
const OLD_SYSTEMD = 'ActiveState=failed\nSubState=failed\nNRestarts=\n';

const ok = (stdout: string): CommandResult => ({ code: 0, signal: null, stdout, stderr: '', timedOut: false, truncated: false, spawnError: null });

test('parseSystemctlShow reads Key=Value lines in any order', () => {
  const props = parseSystemctlShow(`${RUNNING}Description=a=b\n\ngarbage line\n`);
  assert.equal(props.get('ActiveState'), 'active');
  assert.equal(props.get('SubState'), 'running');
  assert.equal(props.get('NRestarts'), '0');
  assert.equal(props.get('Description'), 'a=b');
});

test('serviceStateFromProps maps samples to ServiceState', () => {
  assert.deepEqual(serviceStateFromProps('kubelet.service', parseSystemctlShow(CRASH_LOOPING)), {
    unit: 'kubelet.service', manager: 'systemd', activeState: 'activating', subState: 'auto-restart', restarts: 17,
  });
  assert.deepEqual(serviceStateFromProps('x.service', parseSystemctlShow(NOT_FOUND)), {
    unit: 'x.service', manager: 'systemd', activeState: 'inactive', subState: 'dead', restarts: 0,
  });
  // systemd before 235 has no NRestarts: unknown, not zero.
  assert.equal(serviceStateFromProps('x.service', parseSystemctlShow(OLD_SYSTEMD)).restarts, null);
  assert.equal(serviceStateFromProps('x.service', parseSystemctlShow('NRestarts=-1\n')).restarts, null);
});

async function withRoot(booted: boolean, fn: (root: string) => Promise<void>): Promise<void> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'nk-svc-'));
  try {
    if (booted) await mkdir(path.join(root, 'run/systemd/system'), { recursive: true });
    await fn(root);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

test('probeService asks systemctl where systemd runs', async () => {
  await withRoot(true, async (root) => {
    const calls: string[][] = [];
    const run: CommandRunner = async (file, args) => { calls.push([file, ...args]); return ok(RUNNING); };
    const ctx = createProbeContext({ ...defaultProbeConfig, hostRoot: root }, { run });
    const state = await probeService('containerd.service', ctx);
    assert.deepEqual(state, { unit: 'containerd.service', manager: 'systemd', activeState: 'active', subState: 'running', restarts: 0 });
    assert.deepEqual(calls, [['/usr/bin/systemctl', 'show', '--property=ActiveState,SubState,NRestarts', '--', 'containerd.service']]);
  });
});

test('probeService reports unknown fields when systemctl fails', async () => {
  await withRoot(true, async (root) => {
    const run: CommandRunner = async () => ({ ...ok(''), code: 1, stderr: 'Failed to connect to bus' });
    const state = await probeService('kubelet.service', createProbeContext({ ...defaultProbeConfig, hostRoot: root }, { run }));
    assert.deepEqual(state, { unit: 'kubelet.service', manager: 'systemd', activeState: null, subState: null, restarts: null });
  });
});

test('probeService says "no service manager" without systemd and runs nothing', async () => {
  await withRoot(false, async (root) => {
    const run: CommandRunner = async () => assert.fail('systemctl must not run without systemd');
    const state = await probeService('kubelet.service', createProbeContext({ ...defaultProbeConfig, hostRoot: root }, { run }));
    assert.deepEqual(state, { unit: 'kubelet.service', manager: 'none', activeState: null, subState: null, restarts: null });
  });
});
