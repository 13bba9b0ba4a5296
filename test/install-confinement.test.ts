/**
 * Architecture invariant 9, on the agent: the attacks of issue 10 replayed against the
 * real installer and command executor (what a coordinator, an admin, a pin or a host
 * ClusterPackageVersion could send). Each is refused with its code, and nothing outside
 * the node's host root changes, nor anything inside it but the package's own tree:
 *
 * - a link target climbing out of the version dir (`../../…/outside/secret`);
 * - a link path not on the allow-list (`/etc/systemd/system/evil.service`, `/usr/bin/evil`);
 * - a link through a symlinked parent that leads outside (the chained escape);
 * - a first install adopting (moving aside) an existing file it does not own;
 * - an archive symlink leading out, so a harmless-looking target still escapes;
 * - a `reboot.target` as a manifest's service or a service.restart unit.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { PackageManifest } from '../packages/protocol/src/index.ts';
import { installParams, serveArtifacts, type Artifact, type ArtifactServer } from './harness/artifacts.ts';
import { hostileTar } from './harness/hostile-tar.ts';
import { testNode } from './fixtures/install-node.ts';
import type { InstallPolicyOptions } from '../agent/src/install/confine.ts';

let work: string;
let server: ArtifactServer;
let evil: Artifact;
let linkOut: Artifact;
let plain: Artifact;

before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'nk-confine-'));
  const art = path.join(work, 'art');
  await mkdir(art);
  evil = await hostileTar(art, 'evil.tgz', [{ name: 'evil', body: '#!/bin/sh\necho pwned\n', mode: 0o755 }]);
  // A symlink inside the archive leading out of the tree: the target text `evil` looks harmless.
  linkOut = await hostileTar(art, 'link-out.tgz', [{ name: 'evil', type: '2', linkname: '../../../../../../../../outside/secret' }]);
  plain = await hostileTar(art, 'plain.tgz', [{ name: 'victim.conf', body: 'attacker content\n' }]);
  server = await serveArtifacts({ '/evil.tgz': evil.file, '/link-out.tgz': linkOut.file, '/plain.tgz': plain.file });
});

after(async () => {
  await server?.close();
  await rm(work, { recursive: true, force: true });
});

/** Every entry under `dir`: path, kind, link text or content hash (what "changed" means here). */
async function snapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (p: string): Promise<void> => {
    const st = await lstat(p);
    const rel = path.relative(dir, p) || '.';
    if (st.isSymbolicLink()) out.push(`${rel} -> ${await readlink(p)}`);
    else if (st.isDirectory()) {
      out.push(`${rel}/ ${(st.mode & 0o7777).toString(8)}`);
      for (const n of (await readdir(p)).sort()) await walk(path.join(p, n));
    } else out.push(`${rel} ${(st.mode & 0o7777).toString(8)} ${createHash('sha256').update(await readFile(p)).digest('hex').slice(0, 16)}`);
  };
  await walk(dir);
  return out;
}

let n = 0;
/** A node dir holding `root` (the host root) and `outside` (a stand-in for the rest of the machine). */
async function node(policy?: InstallPolicyOptions) {
  const dir = path.join(work, `node-${n++}`);
  const hostRoot = path.join(dir, 'root');
  const outside = path.join(dir, 'outside');
  await mkdir(path.join(hostRoot, 'etc'), { recursive: true });
  await mkdir(outside, { recursive: true });
  await writeFile(path.join(outside, 'secret'), 'root:x:0:0:root:/root:/bin/bash\n');
  const t = testNode({ hostRoot, stateDir: path.join(dir, 'state'), ...(policy === undefined ? {} : { policy }) });
  return { ...t, hostRoot, outside, dir };
}

const manifest = (name: string, links: PackageManifest['links'], service: string | null = null): PackageManifest => ({ name, format: 'tar.gz', links, service, healthProbe: 'none', healthTimeoutMs: 1000 });

/** Asserts a refusal with `code`, and that the host root outside the packages tree and `outside` are as before. */
async function assertRefused(nd: Awaited<ReturnType<typeof node>>, run: () => Promise<{ ok: boolean; error?: { code: string; message: string } | undefined; result?: Record<string, unknown> | undefined }>, code: string): Promise<void> {
  const etcBefore = await snapshot(path.join(nd.hostRoot, 'etc'));
  const outsideBefore = await snapshot(nd.outside);
  const r = await run();
  assert.equal(r.ok, false, JSON.stringify(r));
  assert.equal(r.error?.code, code, r.error?.message);
  assert.deepEqual(await snapshot(nd.outside), outsideBefore, 'nothing outside the host root changed');
  assert.deepEqual(await snapshot(path.join(nd.hostRoot, 'etc')), etcBefore, 'nothing in the host root\'s /etc changed');
  await assert.rejects(lstat(path.join(nd.hostRoot, 'usr/bin/evil')), 'no /usr/bin/evil');
}

test('the issue\'s manifest (evil.service -> ../../…/etc/passwd, /usr/bin/evil -> evil) is refused: its paths are not on the allow-list', async () => {
  const nd = await node();
  const m = manifest('evil', [
    { path: '/etc/systemd/system/evil.service', target: '../../../../../../../../outside/secret' },
    { path: '/usr/bin/evil', target: 'evil' },
  ]);
  await assertRefused(nd, () => nd.executor.runInstall('c-1', installParams(m, '1.0.0', evil, server.url('/evil.tgz'))), 'NK_INSTALL_PATH_NOT_ALLOWED');
  await assert.rejects(lstat(path.join(nd.hostRoot, 'etc/systemd/system/evil.service')));
});

test('a target with `..` is refused even where the operator allowed the path', async () => {
  const nd = await node({ extraPaths: ['/etc/systemd/system/'] });
  const m = manifest('evil', [{ path: '/etc/systemd/system/evil.service', target: '../../../../../../../../outside/secret' }]);
  await assertRefused(nd, () => nd.executor.runInstall('c-1', installParams(m, '1.0.0', evil, server.url('/evil.tgz'))), 'NK_INSTALL_TARGET_OUTSIDE');
  await assert.rejects(lstat(path.join(nd.hostRoot, 'etc/systemd/system/evil.service')));
});

test('an archive symlink leading out of the version dir is refused (the target text alone looks fine)', async () => {
  const nd = await node({ extraPaths: ['/etc/evil.conf'] });
  const m = manifest('evil', [{ path: '/etc/evil.conf', target: 'evil' }]);
  await assertRefused(nd, () => nd.executor.runInstall('c-1', installParams(m, '1.0.0', linkOut, server.url('/link-out.tgz'))), 'NK_INSTALL_ARCHIVE_UNSAFE');
  await assert.rejects(lstat(path.join(nd.hostRoot, 'etc/evil.conf')));
});

test('the chained escape: a link under a symlinked parent leading outside is refused, nothing written through it', async () => {
  // The first package of the chain linked /etc/escape to a directory outside; its target is refused now:
  const nd = await node({ extraPaths: ['/etc/escape', '/etc/escape/'] });
  const first = manifest('esc-one', [{ path: '/etc/escape', target: '../../../../../../../../outside' }]);
  await assertRefused(nd, () => nd.executor.runInstall('c-1', installParams(first, '1.0.0', evil, server.url('/evil.tgz'))), 'NK_INSTALL_TARGET_OUTSIDE');
  // ...and had such a link got there by any other way, the second package cannot write through it.
  await symlink(nd.outside, path.join(nd.hostRoot, 'etc/escape'));
  const second = manifest('esc-two', [{ path: '/etc/escape/pwned', target: 'evil' }]);
  await assertRefused(nd, () => nd.executor.runInstall('c-2', installParams(second, '1.0.0', evil, server.url('/evil.tgz'))), 'NK_INSTALL_LINK_PARENT_UNSAFE');
  await assert.rejects(lstat(path.join(nd.outside, 'pwned')), 'nothing written through the symlink');
});

test('a first install whose link path names an existing file it does not own does not adopt it', async () => {
  const nd = await node({ extraPaths: ['/etc/victim.conf'] });
  await writeFile(path.join(nd.hostRoot, 'etc/victim.conf'), 'the admin\'s own config\n');
  const m = manifest('victim', [{ path: '/etc/victim.conf', target: 'victim.conf' }]);
  await assertRefused(nd, () => nd.executor.runInstall('c-1', installParams(m, '1.0.0', plain, server.url('/plain.tgz'))), 'NK_INSTALL_ADOPT_NOT_ALLOWED');
  assert.equal(await readFile(path.join(nd.hostRoot, 'etc/victim.conf'), 'utf8'), 'the admin\'s own config\n');
});

test('a manifest whose service is reboot.target or poweroff.target is refused; so is service.restart of one', async () => {
  const nd = await node({ extraPaths: ['/usr/bin/evil'] });
  for (const unit of ['reboot.target', 'poweroff.target', 'evil.service']) {
    const m = manifest('evil', [{ path: '/usr/bin/evil', target: 'evil' }], unit);
    const r = await nd.executor.runInstall(`c-${unit}`, installParams(m, '1.0.0', evil, server.url('/evil.tgz')));
    assert.equal(r.error?.code, 'NK_INSTALL_SERVICE_NOT_ALLOWED', `${unit}: ${JSON.stringify(r)}`);
    await assert.rejects(lstat(path.join(nd.hostRoot, 'usr/bin/evil')));
  }
});
