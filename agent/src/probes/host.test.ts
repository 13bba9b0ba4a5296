import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { defaultProbeConfig, type ProbeConfig } from './config.ts';
import { createProbeContext } from './context.ts';
import { diskUsage, parseMeminfo, pidUsage, prettyName, probeHost } from './host.ts';

let root = '';
before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'nk-host-'));
  await mkdir(path.join(root, 'var/lib/kubelet'), { recursive: true });
  await mkdir(path.join(root, 'etc'), { recursive: true });
  await writeFile(path.join(root, 'etc/os-release'), 'NAME="Debian GNU/Linux"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n');
});
after(async () => { await rm(root, { recursive: true, force: true }); });

const config = (host: Partial<ProbeConfig['host']> = {}): ProbeConfig => ({
  ...defaultProbeConfig,
  hostRoot: root,
  host: { ...defaultProbeConfig.host, ...host },
});

test('prettyName reads os-release', () => {
  assert.equal(prettyName('ID=debian\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'), 'Debian GNU/Linux 12 (bookworm)');
  assert.equal(prettyName("PRETTY_NAME='Ubuntu 24.04 LTS'"), 'Ubuntu 24.04 LTS');
  assert.equal(prettyName('ID=alpine\n'), null);
});

test('parseMeminfo takes MemTotal and MemAvailable, in bytes', () => {
  const text = 'MemTotal:        8041316 kB\nMemFree:          512000 kB\nMemAvailable:    6123456 kB\nBuffers:           10000 kB\nCached:          2000000 kB\nSwapCached:            0 kB\n';
  assert.deepEqual(parseMeminfo(text), { total: 8041316 * 1024, available: 6123456 * 1024 });
});

test('parseMeminfo without MemAvailable (kernels before 3.14) counts free, buffers, page cache and slab', () => {
  const text = 'MemTotal:  1000 kB\nMemFree:  100 kB\nBuffers:  20 kB\nCached:  300 kB\nSwapCached:  7 kB\nSlab:  40 kB\n';
  assert.deepEqual(parseMeminfo(text), { total: 1000 * 1024, available: (100 + 20 + 300 + 40) * 1024 });
});

test('parseMeminfo falls back to os.totalmem() and os.freemem() for missing fields', () => {
  const m = parseMeminfo('garbage\n');
  assert.equal(m.total, os.totalmem());
  assert.ok(m.available > 0 && m.available <= m.total);
});

test('parseMeminfo on this machine agrees with os.totalmem()', async () => {
  const m = parseMeminfo(await readFile('/proc/meminfo', 'utf8'));
  assert.equal(m.total, os.totalmem());
  assert.ok(m.available > 0 && m.available <= m.total);
});

test('diskUsage is df-like for an existing dir and null for a missing one', async () => {
  const d = await diskUsage(path.join(root, 'var/lib/kubelet'), '/var/lib/kubelet');
  assert.ok(d !== null);
  assert.equal(d.path, '/var/lib/kubelet');
  assert.ok(d.totalBytes > 0 && d.usedBytes <= d.totalBytes);
  assert.ok(d.usedPercent >= 0 && d.usedPercent <= 100);
  assert.equal(await diskUsage(path.join(root, 'nope'), '/nope'), null);
});

test('pidUsage counts processes against pid_max', async () => {
  const p = await pidUsage('/proc');
  assert.ok(p !== null && p.count > 0 && p.max >= p.count);
  assert.equal(await pidUsage(path.join(root, 'proc')), null);
});

test('probeHost reports the host with no pressure at default thresholds, missing dirs named', async () => {
  const s = await probeHost(createProbeContext(config(), { clock: () => new Date('2026-01-01T00:00:00Z') }));
  assert.equal(s.os, 'Debian GNU/Linux 12 (bookworm)');
  assert.equal(s.kernel, os.release());
  assert.ok(s.cpus > 0 && s.memoryTotalBytes > 0 && s.uptimeSeconds > 0);
  assert.deepEqual(s.disks.map((d) => d.path), ['/var/lib/kubelet']);
  assert.match(s.message, /data dirs not present: \/var\/lib\/containerd/);
  assert.equal(s.observedAt, '2026-01-01T00:00:00.000Z');
  // This machine is assumed not to be under pressure; if it were, the reason says which.
  if (s.health === 'healthy') assert.equal(s.reason, 'NoPressure');
});

test('probeHost raises each pressure when its threshold is crossed', async () => {
  const disk = await probeHost(createProbeContext(config({ diskPressurePercent: 0 })));
  assert.equal(disk.pressure.disk, true);
  assert.equal(disk.reason, 'DiskPressure');
  assert.equal(disk.health, 'unhealthy');

  const memory = await probeHost(createProbeContext(config({ memoryPressureAvailablePercent: 101, diskPressurePercent: 101 })));
  assert.equal(memory.pressure.memory, true);
  assert.equal(memory.reason, 'MemoryPressure');
  assert.match(memory.message, /of memory available/);

  const pid = await probeHost(createProbeContext(config({ pidPressurePercent: 0, diskPressurePercent: 101 })));
  assert.equal(pid.pressure.pid, true);
  assert.match(pid.message, /PIDs in use/);
});
