/**
 * The CRI probe against a real containerd (Debian's 1.6.x), started by the harness
 * with its own root, state, socket and CNI dirs.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execFileSync } from 'node:child_process';
import { toSemver } from '@nodekeeper/common';
import { createProbeContext } from '../agent/src/probes/context.ts';
import { probeRuntime } from '../agent/src/probes/cri.ts';
import type { RuntimeStatus } from '@nodekeeper/protocol';
import { CONTAINERD_BIN, startContainerd, type RunningContainerd } from './harness/containerd.ts';
import { bridgeConflist, DEBIAN_CNI_BIN_DIR, makeHostRoot, type HostRoot } from './harness/host-root.ts';

const ID = 'c0ffee00c0ffee00c0ffee00c0ffee00';
let dir = '';
let cniConfDir = '';
let ctd: RunningContainerd;
let node: HostRoot;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'nk-cri-'));
  cniConfDir = path.join(dir, 'net.d');
  await mkdir(cniConfDir);
  ctd = await startContainerd({ dir: path.join(dir, 'ctd'), cniConfDir, cniBinDir: DEBIAN_CNI_BIN_DIR });
  node = await makeHostRoot(path.join(dir, 'node'), { machineId: ID, hostname: 'node-a', cniConfig: 'none', runtimeSocket: ctd.socket });
});
after(async () => {
  await ctd?.stop();
  await rm(dir, { recursive: true, force: true });
});

const condition = (s: RuntimeStatus, type: string) => s.conditions.find((c) => c.type === type);

test('containerd is healthy over CRI and says the network is not ready without a CNI config', async () => {
  const s = await probeRuntime(createProbeContext(node.config));
  assert.equal(s.health, 'healthy', s.message);
  assert.equal(s.reason, 'RuntimeReady');
  assert.equal(s.runtimeName, 'containerd');
  assert.equal(s.runtimeApiVersion, 'v1');
  assert.equal(s.version?.source, 'cri');
  // The same release the binary reports (`containerd github.com/containerd/containerd 1.6.20~ds1 ...`).
  const binary = execFileSync(CONTAINERD_BIN, ['--version'], { encoding: 'utf8' }).split(' ')[2] ?? '';
  assert.equal(s.version?.raw, binary);
  assert.equal(s.version?.semver, toSemver(binary));
  assert.match(s.version?.semver ?? '', /^1\.6\.\d+$/);
  assert.equal(condition(s, 'RuntimeReady')?.status, true);
  const net = condition(s, 'NetworkReady');
  assert.equal(net?.status, false);
  assert.equal(net?.reason, 'NetworkPluginNotReady');
  assert.match(s.message, /network not ready \(NetworkPluginNotReady/);
  assert.deepEqual(s.service, { unit: 'containerd.service', manager: 'none', activeState: null, subState: null, restarts: null });
});

test('NetworkReady becomes true once a valid conflist appears in containerd\'s conf dir', async () => {
  await writeFile(path.join(cniConfDir, '10-nodekeeper.conflist'), bridgeConflist());
  let s = await probeRuntime(createProbeContext(node.config));
  // containerd watches the dir (fsnotify) and reloads; give it a few seconds.
  for (let i = 0; i < 50 && condition(s, 'NetworkReady')?.status !== true; i++) {
    await sleep(100);
    s = await probeRuntime(createProbeContext(node.config));
  }
  assert.equal(condition(s, 'NetworkReady')?.status, true, JSON.stringify(s.conditions));
  assert.equal(s.health, 'healthy');
  assert.match(s.message, /network ready/);
});

test('probes leave no HTTP/2 session or socket open behind them', async () => {
  // Count descriptors: an idle socket may be unref'd and hide from getActiveResourcesInfo.
  const sockets = (): number => readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:');
    } catch {
      return false;
    }
  }).length;
  const before = sockets();
  for (let i = 0; i < 5; i++) assert.equal((await probeRuntime(createProbeContext(node.config))).health, 'healthy');
  // Closing a channel finishes on a later tick; a leak keeps five sockets open for good.
  for (let i = 0; i < 50 && sockets() > before; i++) await sleep(20);
  assert.equal(sockets(), before);
});

test('a socket path with nothing behind it is SocketNotFound', async () => {
  const config = { ...node.config, runtime: { ...node.config.runtime, socket: '/run/nope/containerd.sock' } };
  const s = await probeRuntime(createProbeContext(config));
  assert.equal(s.health, 'unhealthy');
  assert.equal(s.reason, 'SocketNotFound');
  assert.equal(s.runtimeName, null);
});

test('a containerd stopped cleanly removes its socket: SocketNotFound', async () => {
  const other = await startContainerd({ dir: path.join(dir, 'ctd2'), cniConfDir, cniBinDir: DEBIAN_CNI_BIN_DIR });
  const config = { ...node.config, hostRoot: '/', runtime: { ...node.config.runtime, socket: other.socket } };
  try {
    assert.equal((await probeRuntime(createProbeContext(config))).health, 'healthy');
  } finally {
    await other.stop();
  }
  const s = await probeRuntime(createProbeContext(config));
  assert.equal(s.reason, 'SocketNotFound', s.message);
});

test('a crashed containerd leaves a stale socket: ConnectionRefused', async () => {
  await ctd.stop({ kill: true });
  const s = await probeRuntime(createProbeContext(node.config));
  assert.equal(s.health, 'unhealthy');
  assert.equal(s.reason, 'ConnectionRefused', s.message);
  assert.deepEqual(s.conditions, []);
});
