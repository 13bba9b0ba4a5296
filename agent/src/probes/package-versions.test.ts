import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { dpkgOwner, installedVersion, recordedVersion } from './package-versions.ts';

const STATUS = `Package: containernetworking-plugins
Status: deinstall ok config-files
Architecture: amd64
Version: 0.9.0-1

Package: containernetworking-plugins
Status: install ok installed
Priority: optional
Architecture: amd64
Version: 1.1.1+ds1-3+b5
Description: standard networking plugins - binaries
 This package contains binaries.

Package: containerd
Status: install ok installed
Architecture: amd64
Version: 1.6.20~ds1-1+deb12u3
`;

test('installedVersion reads the installed paragraph, not a removed one', () => {
  assert.equal(installedVersion(STATUS, 'containernetworking-plugins'), '1.1.1+ds1-3+b5');
  assert.equal(installedVersion(STATUS, 'containernetworking-plugins:amd64'), '1.1.1+ds1-3+b5');
  assert.equal(installedVersion(STATUS, 'containernetworking-plugins:arm64'), null);
  assert.equal(installedVersion(STATUS, 'containerd'), '1.6.20~ds1-1+deb12u3');
  assert.equal(installedVersion(STATUS, 'kubelet'), null);
});

test('dpkgOwner finds the package listing a file under a host root', async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'nk-dpkg-'));
  try {
    assert.equal(await dpkgOwner(root, '/usr/lib/cni/bridge'), null, 'no dpkg database at all');
    await mkdir(path.join(root, 'var/lib/dpkg/info'), { recursive: true });
    await writeFile(path.join(root, 'var/lib/dpkg/status'), STATUS);
    await writeFile(path.join(root, 'var/lib/dpkg/info/containernetworking-plugins:amd64.list'), '/.\n/usr\n/usr/lib/cni\n/usr/lib/cni/bridge\n/usr/lib/cni/bridge-extra\n');
    await writeFile(path.join(root, 'var/lib/dpkg/info/containerd.list'), '/usr/bin/containerd\n');
    assert.deepEqual(await dpkgOwner(root, '/usr/lib/cni/bridge'), { pkg: 'containernetworking-plugins:amd64', version: '1.1.1+ds1-3+b5' });
    assert.equal(await dpkgOwner(root, '/usr/lib/cni/brid'), null, 'a prefix of a listed path is not a match');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('recordedVersion reads nodekeeper\'s packages file and tolerates junk', async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'nk-rec-'));
  try {
    const file = '/var/lib/nodekeeper/packages.json';
    assert.equal(await recordedVersion(root, file, 'cni-plugins'), null);
    await mkdir(path.join(root, 'var/lib/nodekeeper'), { recursive: true });
    await writeFile(path.join(root, file), '{"cni-plugins":{"version":"1.4.0"}}');
    assert.deepEqual(await recordedVersion(root, file, 'cni-plugins'), { raw: '1.4.0', semver: '1.4.0', source: 'nodekeeper' });
    assert.equal(await recordedVersion(root, file, 'kubelet'), null);
    await writeFile(path.join(root, file), '{not json');
    assert.equal(await recordedVersion(root, file, 'cni-plugins'), null);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
