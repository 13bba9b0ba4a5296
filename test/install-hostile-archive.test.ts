/**
 * Hostile package archives (issue 10, item 2), each hand-made (harness/hostile-tar.ts)
 * and installed through the real installer and executor: refused with its code at the
 * stage step, the node still at vA, nothing written outside the version's staging
 * directory (which is removed), and nothing outside the host root touched.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { PackageManifest } from '../packages/protocol/src/index.ts';
import { installParams, serveArtifacts, type Artifact, type ArtifactServer } from './harness/artifacts.ts';
import { hostileTar, type TarEntry } from './harness/hostile-tar.ts';
import { packagePaths, testNode } from './fixtures/install-node.ts';

const VA = '1.31.2';
const VB = '1.32.0';
const manifest: PackageManifest = { name: 'kubelet', format: 'tar.gz', links: [{ path: '/usr/bin/kubelet', target: 'kubelet' }], service: null, healthProbe: 'none', healthTimeoutMs: 1000 };
const kubelet: TarEntry = { name: 'kubelet', body: '#!/bin/sh\necho kubelet\n', mode: 0o755 };

let work: string;
let server: ArtifactServer;
let good: Artifact;
const routes: Record<string, string> = {};
const archives: Record<string, Artifact> = {};

/** name -> entries (each archive also holds a good `kubelet`, so only the hostile entry can fail it). */
const hostile: Record<string, { entries: TarEntry[]; code: string }> = {
  'absolute path': { entries: [kubelet, { name: '/tmp/nk-hostile-abs', body: 'x' }], code: 'NK_INSTALL_ARCHIVE_UNSAFE' },
  'dot-dot path': { entries: [kubelet, { name: '../../../../../../../outside/dotdot', body: 'x' }], code: 'NK_INSTALL_ARCHIVE_UNSAFE' },
  'dot-dot inside a path': { entries: [kubelet, { name: 'bin/../../escape', body: 'x' }], code: 'NK_INSTALL_ARCHIVE_UNSAFE' },
  'symlink out of the tree': { entries: [kubelet, { name: 'evil', type: '2', linkname: '../../../../../../../../outside/secret' }], code: 'NK_INSTALL_ARCHIVE_UNSAFE' },
  'absolute symlink': { entries: [kubelet, { name: 'evil', type: '2', linkname: '/etc/shadow' }], code: 'NK_INSTALL_ARCHIVE_UNSAFE' },
  'hard link out of the tree': { entries: [kubelet, { name: 'evil', type: '1', linkname: '../../../../../../../../outside/secret' }], code: 'NK_INSTALL_ARCHIVE_UNSAFE' },
  'absolute hard link': { entries: [kubelet, { name: 'evil', type: '1', linkname: '/etc/passwd' }], code: 'NK_INSTALL_ARCHIVE_UNSAFE' },
  'character device': { entries: [kubelet, { name: 'null', type: '3', mode: 0o666 }], code: 'NK_INSTALL_ARCHIVE_UNSAFE' },
  'block device': { entries: [kubelet, { name: 'sda', type: '4', mode: 0o660 }], code: 'NK_INSTALL_ARCHIVE_UNSAFE' },
  fifo: { entries: [kubelet, { name: 'pipe', type: '6', mode: 0o644 }], code: 'NK_INSTALL_ARCHIVE_UNSAFE' },
  'setuid binary': { entries: [{ ...kubelet, mode: 0o4755 }], code: 'NK_INSTALL_ARCHIVE_UNSAFE' },
  'setgid binary': { entries: [kubelet, { name: 'helper', body: 'x', mode: 0o2755 }], code: 'NK_INSTALL_ARCHIVE_UNSAFE' },
  // 64 MiB of zeros gzip to ~64 KiB; the test node's bound is 8 MiB.
  'gzip bomb': { entries: [kubelet, { name: 'zeros', body: Buffer.alloc(64 * 1024 * 1024) }], code: 'NK_INSTALL_ARCHIVE_TOO_LARGE' },
  'too many entries': { entries: [kubelet, ...Array.from({ length: 80 }, (_, i) => ({ name: `f${i}`, body: '' }))], code: 'NK_INSTALL_ARCHIVE_TOO_LARGE' },
};

before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'nk-hostile-tar-'));
  const dir = path.join(work, 'art');
  await mkdir(dir);
  good = await hostileTar(dir, 'good.tgz', [kubelet]);
  routes['/good.tgz'] = good.file;
  let i = 0;
  for (const [name, h] of Object.entries(hostile)) {
    const route = `/h${i++}.tgz`;
    archives[name] = await hostileTar(dir, `${route.slice(1)}`, h.entries);
    routes[route] = archives[name].file;
    (h as { route?: string }).route = route;
  }
  server = await serveArtifacts(routes);
});

after(async () => {
  await server?.close();
  await rm(work, { recursive: true, force: true });
});

let n = 0;
for (const [name, h] of Object.entries(hostile)) {
  test(`${name}: refused with ${h.code}, nothing unpacked, nothing outside touched`, async () => {
    const dir = path.join(work, `node-${n++}`);
    const hostRoot = path.join(dir, 'root');
    const outside = path.join(dir, 'outside');
    await mkdir(outside, { recursive: true });
    await writeFile(path.join(outside, 'secret'), 'secret\n');
    const node = testNode({ hostRoot, stateDir: path.join(dir, 'state'), policy: { archive: { maxBytes: 8 * 1024 * 1024, maxEntries: 50 } } });
    const a = await node.executor.runInstall('c-a', installParams(manifest, VA, good, server.url('/good.tgz')));
    assert.equal(a.ok, true, JSON.stringify(a));

    const r = await node.executor.runInstall('c-b', installParams(manifest, VB, archives[name]!, server.url((h as { route?: string }).route ?? '')));
    assert.equal(r.ok, false, JSON.stringify(r));
    assert.equal(r.error?.code, h.code, r.error?.message);
    assert.equal(r.result?.['failedStep'], 'stage');
    const { current, versions } = packagePaths(hostRoot, 'kubelet');
    assert.equal(await readlink(current), `versions/${VA}`);
    assert.deepEqual((await readdir(versions)).sort(), [VA, `${VA}.artifact.json`], 'no version or staging left behind');
    assert.deepEqual(await readdir(outside), ['secret']);
    assert.equal(await readFile(path.join(outside, 'secret'), 'utf8'), 'secret\n');
    await assert.rejects(lstat('/tmp/nk-hostile-abs'));
  });
}
