/**
 * Package restore is `package.install` of the version already active: a kubelet whose
 * binary was deleted under its installed version (the stand-in keeps running from the
 * deleted inode, healthz still ok) is re-staged from the artifact and restarted, not
 * answered `already-installed`; a deleted /usr/bin/kubelet link is re-made; a whole
 * version is `already-installed`. Real installer, supervisor, kubelet stand-in and probe.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, mkdtemp, readFile, realpath, rm, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { installParams, kubeletArtifact, kubeletManifest, serveArtifacts, type ArtifactServer } from './harness/artifacts.ts';
import { makeHostRoot } from './harness/host-root.ts';
import { freePort } from './harness/supervised-node.ts';
import { defineKubeletUnit, packagePaths, testNode, type TestNode } from './fixtures/install-node.ts';

const VERSION = '1.31.4';
let work: string;
let server: ArtifactServer | undefined;
let node: TestNode | undefined;

before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'nk-repair-pkg-'));
});

after(async () => {
  await node?.services.stop('kubelet.service');
  await server?.close();
  await rm(work, { recursive: true, force: true });
});

test('an install of the active version re-stages deleted files and re-links; only a whole version is already-installed', async () => {
  const hostRoot = path.join(work, 'root');
  await makeHostRoot(hostRoot, { machineId: 'd'.repeat(32), hostname: 'pkg-node' });
  const port = await freePort();
  node = testNode({ hostRoot, stateDir: path.join(work, 'state'), kubeletPort: port });
  await defineKubeletUnit(node.services, port);
  const art = await kubeletArtifact(path.join(work, 'art'), { version: VERSION });
  server = await serveArtifacts({ '/k.tgz': art.file });
  const params = installParams(kubeletManifest(15_000), VERSION, art, server.url('/k.tgz'));

  const first = await node.executor.runInstall('i-1', params);
  assert.equal(first.result?.['outcome'], 'installed', JSON.stringify(first));
  const binary = path.join(packagePaths(hostRoot, 'kubelet').versions, VERSION, 'kubelet');
  const original = await readFile(binary);
  const pid1 = (await node.services.running('kubelet.service'))?.pid;

  // The binary deleted under the installed version: the process runs on, healthz says ok.
  await unlink(binary);
  const repaired = await node.executor.runInstall('i-2', params);
  assert.equal(repaired.ok, true, JSON.stringify(repaired));
  assert.equal(repaired.result?.['outcome'], 'installed', 'a damaged active version is repaired, not already-installed');
  assert.equal(repaired.result?.['activeVersion'], VERSION);
  assert.deepEqual(await readFile(binary), original, 're-staged from the verified artifact');
  const pid2 = (await node.services.running('kubelet.service'))?.pid;
  assert.ok(pid2 !== undefined && pid2 !== pid1, 'the kubelet was restarted onto the restored binary');

  // The host link deleted: re-made, restarted, healthy.
  const link = path.join(hostRoot, 'usr/bin/kubelet');
  await unlink(link);
  const relinked = await node.executor.runInstall('i-3', params);
  assert.equal(relinked.result?.['outcome'], 'installed', JSON.stringify(relinked));
  assert.ok((await lstat(link)).isSymbolicLink());
  assert.equal(await realpath(link), await realpath(binary));

  const whole = await node.executor.runInstall('i-4', params);
  assert.equal(whole.result?.['outcome'], 'already-installed', JSON.stringify(whole));
  assert.equal((await node.services.running('kubelet.service'))?.pid, (await node.services.running('kubelet.service'))?.pid);
});
