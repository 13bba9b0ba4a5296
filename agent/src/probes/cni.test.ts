import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { defaultProbeConfig, type ProbeConfig } from './config.ts';
import { createProbeContext } from './context.ts';
import { probeCni } from './cni.ts';
import { parseAboutLine, parseVersionAnswer } from './cni-plugins.ts';

// Plugins written as scripts stand for third-party plugins whose behaviour Debian's
// binaries cannot show: an about line with a release, a failing VERSION call.
const SUPPORTED = '{"cniVersion":"1.0.0","supportedVersions":["0.3.1","0.4.0","1.0.0"]}';
const PLUGINS: Record<string, string> = {
  // skel-style: about text on stderr without CNI_COMMAND, VERSION answer on stdout.
  released: `if [ "$CNI_COMMAND" = VERSION ]; then cat >/dev/null; echo '${SUPPORTED}'; else echo "CNI released plugin v1.4.0" >&2; fi`,
  anonymous: `if [ "$CNI_COMMAND" = VERSION ]; then cat >/dev/null; echo '${SUPPORTED}'; else echo "CNI anonymous plugin version unknown" >&2; fi`,
  broken: `cat >/dev/null; echo '{"code":4,"msg":"incompatible CNI versions"}'; exit 1`,
  // Echoes what it sees of the agent's environment into its answer.
  leaky: `cat >/dev/null; echo "{\\"cniVersion\\":\\"1.0.0\\",\\"supportedVersions\\":[\\"1.0.0\\",\\"$NK_SECRET$HOME\\"]}"`,
};

let root = '';
const conf = (name: string, types: string[], cniVersion = '1.0.0'): string =>
  JSON.stringify({ cniVersion, name, plugins: types.map((type) => ({ type })) });

function config(confDir: string): ProbeConfig {
  return {
    ...defaultProbeConfig,
    hostRoot: root,
    cni: { ...defaultProbeConfig.cni, confDir, binDirs: ['/opt/cni/bin', '/usr/lib/cni'], timeoutMs: 5000 },
  };
}

async function netd(files: Record<string, string>): Promise<string> {
  const rel = `/etc/cni/net-${Math.random().toString(36).slice(2)}`;
  await mkdir(path.join(root, rel), { recursive: true });
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(root, rel, name), text);
  return rel;
}

before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'nk-cni-'));
  await mkdir(path.join(root, 'opt/cni/bin'), { recursive: true });
  for (const [name, body] of Object.entries(PLUGINS)) {
    await writeFile(path.join(root, 'opt/cni/bin', name), `#!/bin/sh\n${body}\n`);
    await chmod(path.join(root, 'opt/cni/bin', name), 0o755);
  }
  // Present but not executable: must be skipped in favour of the next dir.
  await writeFile(path.join(root, 'opt/cni/bin/bridge'), 'not a program');
  await mkdir(path.join(root, 'usr/lib'), { recursive: true });
  await symlink('/usr/lib/cni', path.join(root, 'usr/lib/cni'));
  await mkdir(path.join(root, 'var/lib/nodekeeper'), { recursive: true });
  await writeFile(path.join(root, 'var/lib/nodekeeper/packages.json'), '{"cni-plugins":{"version":"1.4.1"}}');
});
after(async () => { await rm(root, { recursive: true, force: true }); });

test('parseAboutLine takes a release only from the first line', () => {
  assert.equal(parseAboutLine('CNI bridge plugin v1.4.0\nCNI protocol versions supported: 0.1.0, 1.0.0\n'), 'CNI bridge plugin v1.4.0');
  assert.equal(parseAboutLine('CNI bridge plugin version unknown\nCNI protocol versions supported: 0.1.0, 1.0.0\n'), null);
  assert.equal(parseAboutLine(''), null);
});

test('parseVersionAnswer reads supportedVersions or the CNI error', () => {
  assert.deepEqual(parseVersionAnswer(SUPPORTED), { kind: 'ok', supportedVersions: ['0.3.1', '0.4.0', '1.0.0'] });
  assert.deepEqual(parseVersionAnswer('{"code":4,"msg":"incompatible"}'), { kind: 'failed', detail: 'CNI error 4: incompatible' });
  assert.equal(parseVersionAnswer('garbage').kind, 'failed');
  assert.equal(parseVersionAnswer('{"cniVersion":"1.0.0"}').kind, 'failed');
});

test('the about line gives the release (source binary); the CniStatus version is the main plugin\'s', async () => {
  const dir = await netd({ '10-a.conflist': conf('a', ['released', 'bridge']) });
  const s = await probeCni(createProbeContext(config(dir)));
  assert.equal(s.reason, 'ConfigValid', s.message);
  assert.equal(s.health, 'healthy');
  assert.deepEqual(s.version, { raw: 'CNI released plugin v1.4.0', semver: '1.4.0', source: 'binary' });
  const bridge = s.plugins.find((p) => p.type === 'bridge');
  // The non-executable /opt/cni/bin/bridge was passed over for Debian's. This root has
  // no dpkg database, so Debian's "version unknown" falls through to the recorded one.
  assert.equal(bridge?.binary, '/usr/lib/cni/bridge');
  assert.deepEqual(bridge?.supportedVersions, ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0']);
  assert.equal(bridge?.version?.source, 'nodekeeper');
  assert.equal(s.configFile, `${dir}/10-a.conflist`);
});

test('without an about release or a dpkg owner, the recorded version is used (source nodekeeper)', async () => {
  const dir = await netd({ '10-a.conflist': conf('a', ['anonymous']) });
  const s = await probeCni(createProbeContext(config(dir)));
  assert.deepEqual(s.plugins[0]?.version, { raw: '1.4.1', semver: '1.4.1', source: 'nodekeeper' });
});

test('a failing VERSION call is PluginFailed with the plugin\'s error', async () => {
  const dir = await netd({ '10-a.conflist': conf('a', ['bridge', 'broken']) });
  const s = await probeCni(createProbeContext(config(dir)));
  assert.equal(s.health, 'unhealthy');
  assert.equal(s.reason, 'PluginFailed');
  assert.match(s.message, /plugin broken .*CNI error 4: incompatible CNI versions/);
});

test('plugins run with a clean environment', async () => {
  process.env['NK_SECRET'] = 'do-not-pass';
  try {
    const dir = await netd({ '10-a.conflist': conf('a', ['leaky']) });
    const s = await probeCni(createProbeContext(config(dir)));
    assert.equal(s.reason, 'ConfigValid', s.message);
    assert.deepEqual(s.plugins[0]?.supportedVersions, ['1.0.0', '']);
  } finally {
    delete process.env['NK_SECRET'];
  }
});

test('the worst problem names the reason; all problems are in the message', async () => {
  const dir = await netd({ '10-a.conflist': conf('a', ['broken', 'nosuch']) });
  const s = await probeCni(createProbeContext(config(dir)));
  assert.equal(s.reason, 'PluginNotFound');
  assert.match(s.message, /plugin nosuch not found in \/opt\/cni\/bin, \/usr\/lib\/cni/);
  assert.match(s.message, /plugin broken/);
  assert.equal(s.plugins.find((p) => p.type === 'nosuch')?.binary, null);
});

test('an invalid file before the chosen one is named in the message', async () => {
  const dir = await netd({ '05-bad.conflist': '{', '10-a.conflist': conf('a', ['bridge']) });
  const s = await probeCni(createProbeContext(config(dir)));
  assert.equal(s.reason, 'ConfigValid');
  assert.equal(s.networkName, 'a');
  assert.match(s.message, /passed over invalid 05-bad.conflist: not valid JSON/);
});

test('an unreadable host root path is a TypeError, not a result', async () => {
  await assert.rejects(probeCni(createProbeContext(config('/../etc'))), TypeError);
});
