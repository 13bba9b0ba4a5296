import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeAgentMessage } from '@nodekeeper/protocol';
import fc from 'fast-check';
import { compareReleases, installedKernels, newestRelease, probeBoot, readOnlyDirs, resetRebootCheckCache } from './boot.ts';
import { defaultProbeConfig, type ProbeConfig } from './config.ts';
import { createProbeContext } from './context.ts';
import { probeHost } from './host.ts';

let root = '';
before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'nk-boot-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});
beforeEach(async () => {
  resetRebootCheckCache();
  for (const d of ['boot', 'lib', 'var', 'proc', 'bin']) await rm(path.join(root, d), { recursive: true, force: true });
});

const config = (host: Partial<ProbeConfig['host']> = {}): ProbeConfig => ({ ...defaultProbeConfig, hostRoot: root, host: { ...defaultProbeConfig.host, ...host } });
/** Whether a report (a delta: only the sections given) passes the protocol's decoder, as the coordinator runs it. */
const checkNodeReport = (report: object) => {
  const d = decodeAgentMessage(JSON.stringify({ type: 'report', seq: 1, full: false, report }));
  return { ok: d.ok, error: d.ok ? null : d.error };
};
const put = async (rel: string, text: string) => {
  await mkdir(path.dirname(path.join(root, rel)), { recursive: true });
  await writeFile(path.join(root, rel), text);
};

test('kernel releases sort as versions: -9 before -25, rc and el9 releases too', () => {
  assert.equal(newestRelease(['6.1.0-9-amd64', '6.1.0-25-amd64', '6.1.0-10-amd64']), '6.1.0-25-amd64');
  assert.equal(newestRelease(['5.14.0-70.13.1.el9_0.x86_64', '5.14.0-362.8.1.el9_3.x86_64']), '5.14.0-362.8.1.el9_3.x86_64');
  assert.equal(newestRelease(['6.10.0-1-amd64', '6.9.0-3-amd64']), '6.10.0-1-amd64');
  assert.equal(newestRelease([]), null);
});

test('compareReleases orders release strings as the numeric Intl.Collator it replaces', () => {
  const collator = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });
  const sign = (n: number) => Math.sign(n);
  // Release-like strings: digits, letters of both cases, and the punctuation kernel releases use.
  const release = fc.string({ unit: fc.constantFrom(...'0123456789012345abcelmxyzABCZ.-_+~'.split('')), maxLength: 16 });
  fc.assert(fc.property(release, release, (a, b) => {
    assert.equal(sign(compareReleases(a, b)), sign(collator.compare(a, b)), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
  }), { numRuns: 2000 });
  const real = ['6.1.0-9-amd64', '6.1.0-25-amd64', '6.1.0-10-amd64', '6.1.0-25-cloud-amd64', '5.14.0-70.13.1.el9_0.x86_64', '5.14.0-362.8.1.el9_3.x86_64', '6.8.0-1012-aws', '6.8.0-45-generic', '6.11.0-rc3', '6.11.0', '4.19.0-27-amd64'];
  assert.deepEqual([...real].sort(compareReleases), [...real].sort(collator.compare));
});

test('installed kernels come from /boot/vmlinuz-*, and from /lib/modules only when /boot has none', async () => {
  await put('lib/modules/6.1.0-20-amd64/modules.dep', '');
  assert.deepEqual(await installedKernels(root), ['6.1.0-20-amd64']);
  await put('boot/vmlinuz-6.1.0-25-amd64', 'k');
  await put('boot/config-6.1.0-25-amd64', 'c');
  await put('boot/vmlinuz-', 'no release');
  assert.deepEqual(await installedKernels(root), ['6.1.0-25-amd64']);
});

test('a node with nothing pending: its own boot id and kernel, no reboot required', async () => {
  await put('proc/sys/kernel/random/boot_id', '0F6C2A33-1111-4222-8333-444455556666\n');
  await put('proc/sys/kernel/osrelease', '6.1.0-25-amd64\n');
  await put('boot/vmlinuz-6.1.0-25-amd64', 'k');
  await put('boot/vmlinuz-6.1.0-20-amd64', 'k');
  const facts = await probeBoot(createProbeContext(config()));
  assert.equal(facts.bootId, '0f6c2a33-1111-4222-8333-444455556666');
  assert.equal(facts.kernel, '6.1.0-25-amd64');
  assert.equal(facts.newestKernel, '6.1.0-25-amd64');
  assert.deepEqual(facts.reboot, { required: false, reasons: [] });
});

test('without a boot id or kernel of its own, the host root falls back to this machine\'s', async () => {
  const facts = await probeBoot(createProbeContext(config()));
  assert.match(facts.bootId ?? '', /^[0-9a-f-]{36}$/);
  assert.equal(facts.kernel, os.release());
  assert.equal(facts.newestKernel, null);
});

test('a garbage boot id is not reported as one', async () => {
  await put('proc/sys/kernel/random/boot_id', '../../etc/passwd\n');
  // The fallback is this machine's own, well formed; the garbage never shows.
  const facts = await probeBoot(createProbeContext(config()));
  assert.doesNotMatch(facts.bootId ?? '', /passwd/);
});

test('the Debian sentinel, with the packages that asked, says a reboot is required', async () => {
  await put('var/run/reboot-required', '*** System restart required ***\n');
  await put('var/run/reboot-required.pkgs', 'linux-image-6.1.0-26-amd64\nlibc6\nlibc6\n');
  const facts = await probeBoot(createProbeContext(config()));
  assert.equal(facts.reboot.required, true);
  assert.deepEqual(facts.reboot.reasons, ['/var/run/reboot-required exists (packages: linux-image-6.1.0-26-amd64, libc6)']);
});

test('a configured sentinel path replaces the default one', async () => {
  await put('var/run/reboot-required', '');
  await put('etc/nk/reboot-now', '');
  const facts = await probeBoot(createProbeContext(config({ rebootSentinel: '/etc/nk/reboot-now' })));
  assert.deepEqual(facts.reboot.reasons, ['/etc/nk/reboot-now exists']);
});

test('a newer kernel installed than the one running says a reboot is required', async () => {
  await put('proc/sys/kernel/osrelease', '6.1.0-25-amd64');
  await put('boot/vmlinuz-6.1.0-25-amd64', 'k');
  await put('boot/vmlinuz-6.1.0-26-amd64', 'k');
  const facts = await probeBoot(createProbeContext(config()));
  assert.equal(facts.newestKernel, '6.1.0-26-amd64');
  assert.deepEqual(facts.reboot, { required: true, reasons: ['running kernel 6.1.0-25-amd64, newest installed 6.1.0-26-amd64'] });
});

test('a running kernel newer than any installed one (its package removed) needs no reboot', async () => {
  await put('proc/sys/kernel/osrelease', '6.1.0-27-amd64');
  await put('boot/vmlinuz-6.1.0-26-amd64', 'k');
  assert.equal((await probeBoot(createProbeContext(config()))).reboot.required, false);
});

test('the check command: exit 1 is required, exit 0 is not, a missing or crashing one says nothing; answers are cached', async () => {
  const script = path.join(root, 'bin/needs-restarting');
  const answer = async (code: number) => {
    await put('bin/needs-restarting', `#!/bin/sh\necho "Reboot is required to ensure that your system benefits from these updates."\nexit ${code}\n`);
    await chmod(script, 0o755);
  };
  await answer(1);
  const ctx = createProbeContext(config({ rebootCheckCommand: [script, '-r'] }));
  assert.deepEqual((await probeBoot(ctx)).reboot.reasons, [`${script} -r: exit 1 (a reboot is required)`]);
  await answer(0);
  assert.equal((await probeBoot(ctx)).reboot.required, true, 'the answer is reused for a while (the command is costly)');
  resetRebootCheckCache();
  assert.equal((await probeBoot(ctx)).reboot.required, false);
  resetRebootCheckCache();
  await answer(3);
  assert.equal((await probeBoot(ctx)).reboot.required, false);
  resetRebootCheckCache();
  assert.equal((await probeBoot(createProbeContext(config({ rebootCheckCommand: [path.join(root, 'bin/absent')] })))).reboot.required, false);
});

test('reasons are bounded so a report always fits the protocol', async () => {
  await put('var/run/reboot-required', '');
  await put('var/run/reboot-required.pkgs', Array.from({ length: 500 }, (_, i) => `package-${i}-${'x'.repeat(200)}`).join('\n'));
  const host = await probeHost(createProbeContext(config()));
  assert.ok(host.reboot!.reasons.every((r) => r.length <= 256));
  const report = { identity: { machineId: 'a'.repeat(32), hostname: 'n', addresses: [], zone: null, labels: {} }, host };
  assert.equal(checkNodeReport(report).ok, true, JSON.stringify(checkNodeReport(report)));
});

test('the protocol refuses hostile boot facts', () => {
  const host = (extra: object) => ({ identity: { machineId: 'a'.repeat(32), hostname: 'n', addresses: [], zone: null, labels: {} }, host: { health: 'healthy', reason: 'NoPressure', message: '', version: null, observedAt: new Date().toISOString(), os: 'x', kernel: 'k', arch: 'x64', cpus: 1, memoryTotalBytes: 1, memoryAvailableBytes: 1, uptimeSeconds: 1, disks: [], pressure: { disk: false, memory: false, pid: false }, ...extra } });
  assert.equal(checkNodeReport(host({})).ok, true, 'an older agent leaves them out');
  assert.equal(checkNodeReport(host({ bootId: null, newestKernel: null, readOnlyMounts: [], reboot: { required: false, reasons: [] } })).ok, true);
  assert.equal(checkNodeReport(host({ bootId: '$(reboot)' })).ok, false);
  assert.equal(checkNodeReport(host({ reboot: { required: 'yes', reasons: [] } })).ok, false);
  assert.equal(checkNodeReport(host({ reboot: { required: true, reasons: Array(9).fill('r') } })).ok, false);
  assert.equal(checkNodeReport(host({ reboot: { required: true, reasons: [], extra: 1 } })).ok, false);
  assert.equal(checkNodeReport(host({ readOnlyMounts: Array(17).fill('/') })).ok, false);
});

test('mountinfo: the longest mount prefix decides, later mounts hide earlier ones, escapes are read', () => {
  const info = [
    '27 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw',
    '40 27 8:2 / /var/lib/kubelet ro,relatime shared:2 - ext4 /dev/sda2 rw',
    '41 27 8:3 / /var/lib/containerd rw,relatime shared:3 - xfs /dev/sda3 ro',
    '42 27 0:50 / /var/lib/kubelet/pods/x rw - tmpfs tmpfs rw',
    '43 27 8:4 / /data\\040disk rw - ext4 /dev/sdb1 rw',
    '44 43 8:4 / /data\\040disk ro - ext4 /dev/sdb1 ro',
    'garbage line',
  ].join('\n');
  const dirs = ['/', '/var/lib/kubelet', '/var/lib/containerd', '/var/lib/kubelet/pods/x/volumes', '/data disk/a', '/var/lib/kubeletx'].map((d) => ({ shown: d, real: d }));
  assert.deepEqual(readOnlyDirs(info, dirs), ['/var/lib/kubelet', '/var/lib/containerd', '/data disk/a']);
  assert.deepEqual(readOnlyDirs('', dirs), []);
});

test('a data dir really mounted read-only is reported (a mount namespace of its own, a real tmpfs)', { skip: spawnSync('unshare', ['--mount', '--pid', '--fork', '--mount-proc', 'true']).status === 0 ? false : 'unshare --mount --pid is not possible here' }, async () => {
  await put('var/lib/containerd/keep', '');
  await mkdir(path.join(root, 'var/lib/kubelet'), { recursive: true });
  const probe = `import { probeBoot } from ${JSON.stringify(path.join(path.dirname(fileURLToPath(import.meta.url)), 'boot.ts'))};
    import { defaultProbeConfig } from ${JSON.stringify(path.join(path.dirname(fileURLToPath(import.meta.url)), 'config.ts'))};
    import { createProbeContext } from ${JSON.stringify(path.join(path.dirname(fileURLToPath(import.meta.url)), 'context.ts'))};
    const facts = await probeBoot(createProbeContext({ ...defaultProbeConfig, hostRoot: ${JSON.stringify(root)} }));
    process.stdout.write(JSON.stringify(facts.readOnlyMounts));`;
  // PID 1 of the new namespaces is the shell, so /proc/1/mountinfo is the view with the mount.
  const r = spawnSync('unshare', ['--mount', '--pid', '--fork', '--mount-proc', '--propagation', 'private', 'sh', '-c',
    `mount -t tmpfs -o ro tmpfs "$1" && "$2" --disable-warning=ExperimentalWarning --input-type=module -e "$3"`, 'sh', path.join(root, 'var/lib/kubelet'), process.execPath, probe], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), ['/var/lib/kubelet']);
});
