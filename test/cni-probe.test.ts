/**
 * The CNI probe against Debian's containernetworking-plugins binaries in /usr/lib/cni,
 * through a host root built by the harness: versions read (Debian's builds say
 * "version unknown", so the dpkg database answers), and each failure reported precisely.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { toSemver } from '@nodekeeper/common';
import { createProbeContext } from '../agent/src/probes/context.ts';
import { probeCni } from '../agent/src/probes/cni.ts';
import { bridgeConflist, CNI_CONFIG_NAME, makeHostRoot, type HostRoot } from './harness/host-root.ts';

const ID = 'c0ffee00c0ffee00c0ffee00c0ffee01';
let dir = '';
let n = 0;
before(async () => { dir = await mkdtemp(path.join(os.tmpdir(), 'nk-cni-')); });
after(async () => { await rm(dir, { recursive: true, force: true }); });

/** A fresh node per test, so one test's config files never leak into another's. */
async function node(cniConfig: 'bridge' | 'none' = 'bridge'): Promise<HostRoot> {
  n += 1;
  return makeHostRoot(path.join(dir, `node-${n}`), { machineId: ID, hostname: `node-${n}`, cniConfig });
}
const netd = (h: HostRoot, name: string): string => path.join(h.root, 'etc/cni/net.d', name);

test('a valid bridge config: plugins found, spec versions and the Debian release read', async () => {
  const debianVersion = execFileSync('dpkg-query', ['-W', '-f=${Version}', 'containernetworking-plugins'], { encoding: 'utf8' });
  const h = await node();
  const s = await probeCni(createProbeContext(h.config));
  assert.equal(s.health, 'healthy', s.message);
  assert.equal(s.reason, 'ConfigValid');
  assert.equal(s.configFile, `/etc/cni/net.d/${CNI_CONFIG_NAME}`);
  assert.equal(s.networkName, 'nodekeeper');
  assert.equal(s.cniVersion, '1.0.0');
  assert.deepEqual(s.plugins.map((p) => p.type), ['bridge', 'portmap', 'host-local']);
  for (const p of s.plugins) {
    assert.equal(p.binary, `/usr/lib/cni/${p.type}`);
    assert.ok(p.supportedVersions.includes('1.0.0'), `${p.type}: ${p.supportedVersions.join(',')}`);
    // Debian's build prints "version unknown": the version comes from dpkg.
    assert.deepEqual(p.version, { raw: debianVersion, semver: toSemver(debianVersion), source: 'dpkg' });
  }
  assert.deepEqual(s.version, { raw: debianVersion, semver: toSemver(debianVersion), source: 'dpkg' });
  // The package the brief was written against; a newer Debian point release moves these.
  if (debianVersion === '1.1.1+ds1-3+b5') assert.equal(s.version?.semver, '1.1.1');
});

test('no config at all: NoNetworkConfig', async () => {
  const h = await node('none');
  const s = await probeCni(createProbeContext(h.config));
  assert.equal(s.health, 'unhealthy');
  assert.equal(s.reason, 'NoNetworkConfig');
  assert.equal(s.configFile, null);
  await rm(path.join(h.root, 'etc/cni/net.d'), { recursive: true });
  const gone = await probeCni(createProbeContext(h.config));
  assert.equal(gone.reason, 'NoNetworkConfig');
  assert.match(gone.message, /does not exist/);
});

test('bad JSON: InvalidNetworkConfig naming the file and the problem', async () => {
  const h = await node();
  await writeFile(netd(h, CNI_CONFIG_NAME), '{"cniVersion": "1.0.0", "name": ');
  const s = await probeCni(createProbeContext(h.config));
  assert.equal(s.health, 'unhealthy');
  assert.equal(s.reason, 'InvalidNetworkConfig');
  assert.match(s.message, new RegExp(`${CNI_CONFIG_NAME}: not valid JSON`));
});

test('missing fields: InvalidNetworkConfig saying which', async () => {
  const h = await node();
  await writeFile(netd(h, CNI_CONFIG_NAME), JSON.stringify({ cniVersion: '1.0.0', plugins: [{ type: 'bridge' }] }));
  const s = await probeCni(createProbeContext(h.config));
  assert.equal(s.reason, 'InvalidNetworkConfig');
  assert.match(s.message, /missing "name"/);
});

test('a plugin binary missing from the bin dirs: PluginNotFound naming it and the dirs', async () => {
  const h = await node();
  const conf = JSON.parse(bridgeConflist()) as { plugins: Array<{ type: string }> };
  conf.plugins.push({ type: 'calico' });
  await writeFile(netd(h, CNI_CONFIG_NAME), JSON.stringify(conf));
  const s = await probeCni(createProbeContext(h.config));
  assert.equal(s.health, 'unhealthy');
  assert.equal(s.reason, 'PluginNotFound');
  assert.match(s.message, /plugin calico not found in \/usr\/lib\/cni/);
  assert.equal(s.plugins.find((p) => p.type === 'calico')?.binary, null);
  assert.equal(s.plugins.find((p) => p.type === 'bridge')?.version?.source, 'dpkg');
});

test('a cniVersion the plugins do not speak: UnsupportedCniVersion', async () => {
  const h = await node();
  await writeFile(netd(h, CNI_CONFIG_NAME), bridgeConflist({ cniVersion: '9.9.9' }));
  const s = await probeCni(createProbeContext(h.config));
  assert.equal(s.health, 'unhealthy');
  assert.equal(s.reason, 'UnsupportedCniVersion');
  assert.equal(s.cniVersion, '9.9.9');
  assert.match(s.message, /plugin bridge does not support cniVersion 9\.9\.9 \(supports [0-9., ]*1\.0\.0\)/);
});

test('the first valid file in lexical order wins; an earlier invalid one is reported', async () => {
  const h = await node();
  await writeFile(netd(h, '05-broken.conf'), '{"cniVersion":"1.0.0","name":"x"}');
  await writeFile(netd(h, '20-other.conflist'), bridgeConflist({ name: 'other' }));
  const s = await probeCni(createProbeContext(h.config));
  assert.equal(s.reason, 'ConfigValid');
  assert.equal(s.networkName, 'nodekeeper');
  assert.match(s.message, /passed over invalid 05-broken\.conf: missing "type"/);
  await unlink(netd(h, CNI_CONFIG_NAME));
  assert.equal((await probeCni(createProbeContext(h.config))).networkName, 'other');
});
