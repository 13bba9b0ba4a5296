/**
 * The on-node layout: atomic switches of `current`, relative links that work under any
 * host root, and adoption of what apt left at a link path (a file or a directory),
 * including the repair of a crash between moving a directory aside and linking it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readFile, readlink, realpath, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { PackageManifest } from '@nodekeeper/protocol';
import { DEFAULT_INSTALL_POLICY } from './confine.ts';
import { adoptExisting, ensureLinks, packageLayout, readCurrent, switchCurrent, versionDir } from './layout.ts';

const cniManifest: PackageManifest = { name: 'cni-plugins', format: 'tar.gz', links: [{ path: '/opt/cni/bin', target: '.' }], service: null, healthProbe: 'cni', healthTimeoutMs: 1000 };
const kubeletManifest: PackageManifest = { name: 'kubelet', format: 'tar.gz', links: [{ path: '/usr/bin/kubelet', target: 'kubelet' }], service: null, healthProbe: 'none', healthTimeoutMs: 1000 };

async function root(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'nk-layout-'));
}

test('an apt-installed directory is adopted, linked, and readable through the link', async (t) => {
  const hostRoot = await root();
  t.after(() => rm(hostRoot, { recursive: true, force: true }));
  await mkdir(path.join(hostRoot, 'opt/cni/bin'), { recursive: true });
  await writeFile(path.join(hostRoot, 'opt/cni/bin/bridge'), 'bridge-binary');
  const l = packageLayout(hostRoot, '/var/lib/nodekeeper/packages', 'cni-plugins');
  const adopted = await adoptExisting(l, cniManifest, DEFAULT_INSTALL_POLICY);
  assert.match(adopted ?? '', /^adopted-[0-9a-f]{12}$/);
  assert.equal(await readCurrent(l), adopted);
  const link = path.join(hostRoot, 'opt/cni/bin');
  assert.ok((await lstat(link)).isSymbolicLink());
  assert.ok(!path.isAbsolute(await readlink(link)), 'links are relative, so they work under any host root');
  assert.equal(await readFile(path.join(link, 'bridge'), 'utf8'), 'bridge-binary');
  // A second adoption finds nothing to adopt.
  assert.equal(await adoptExisting(l, cniManifest, DEFAULT_INSTALL_POLICY), null);
});

test('a crash between moving a directory aside and linking it is repaired by ensureLinks', async (t) => {
  const hostRoot = await root();
  t.after(() => rm(hostRoot, { recursive: true, force: true }));
  const l = packageLayout(hostRoot, '/pk', 'cni-plugins');
  await mkdir(versionDir(l, '1.4.0'), { recursive: true });
  await writeFile(path.join(versionDir(l, '1.4.0'), 'bridge'), 'new');
  await switchCurrent(l, '1.4.0');
  await mkdir(path.join(hostRoot, 'opt/cni/bin.nk-adopted'), { recursive: true }); // moved aside, then killed
  await ensureLinks(l, cniManifest);
  assert.equal(await readFile(path.join(hostRoot, 'opt/cni/bin/bridge'), 'utf8'), 'new');
  await assert.rejects(lstat(path.join(hostRoot, 'opt/cni/bin.nk-adopted')), { code: 'ENOENT' });
});

test('a foreign file at a link path is refused unless adopted', async (t) => {
  const hostRoot = await root();
  t.after(() => rm(hostRoot, { recursive: true, force: true }));
  const l = packageLayout(hostRoot, '/pk', 'kubelet');
  await mkdir(versionDir(l, '1.31.2'), { recursive: true });
  await writeFile(path.join(versionDir(l, '1.31.2'), 'kubelet'), 'v1.31.2');
  await switchCurrent(l, '1.31.2');
  await mkdir(path.join(hostRoot, 'usr/bin'), { recursive: true });
  await writeFile(path.join(hostRoot, 'usr/bin/kubelet'), 'someone else');
  await assert.rejects(ensureLinks(l, kubeletManifest), /not managed by nodekeeper/);
  assert.equal(await readFile(path.join(hostRoot, 'usr/bin/kubelet'), 'utf8'), 'someone else');
});

test('switchCurrent swaps atomically between versions, refuses a missing one, and null removes it', async (t) => {
  const hostRoot = await root();
  t.after(() => rm(hostRoot, { recursive: true, force: true }));
  const l = packageLayout(hostRoot, '/pk', 'kubelet');
  for (const v of ['1.0.0', '2.0.0']) {
    await mkdir(versionDir(l, v), { recursive: true });
    await writeFile(path.join(versionDir(l, v), 'kubelet'), v);
  }
  await switchCurrent(l, '1.0.0');
  await ensureLinks(l, kubeletManifest);
  await switchCurrent(l, '2.0.0');
  assert.equal(await readFile(path.join(hostRoot, 'usr/bin/kubelet'), 'utf8'), '2.0.0');
  assert.equal(await realpath(l.current), await realpath(versionDir(l, '2.0.0')));
  await assert.rejects(switchCurrent(l, '3.0.0'), { code: 'ENOENT' });
  assert.equal(await readCurrent(l), '2.0.0');
  await switchCurrent(l, null);
  assert.equal(await readCurrent(l), null);
  assert.throws(() => versionDir(l, '../../etc'), TypeError);
});
