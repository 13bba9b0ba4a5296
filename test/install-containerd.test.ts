/**
 * A real containerd upgraded in place through the real install path: the node starts
 * with Debian's binary at /usr/bin/containerd (as apt leaves it), run by the supervisor
 * service manager; the installer adopts it, installs a repackaging of the same binary as
 * a new version, restarts containerd, and the CRI probe finds it healthy.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, lstat, mkdtemp, readFile, readlink, realpath, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { probeRuntime } from '../agent/src/probes/cri.ts';
import { createProbeContext } from '../agent/src/probes/context.ts';
import type { PackageManifest } from '../packages/protocol/src/index.ts';
import { containerdArtifact, installParams, serveArtifacts, type ArtifactServer } from './harness/artifacts.ts';
import { CONTAINERD_BIN, containerdConfig } from './harness/containerd.ts';
import { makeHostRoot, DEBIAN_CNI_BIN_DIR } from './harness/host-root.ts';
import { waitFor } from './harness/processes.ts';
import { nodeProbeConfig, packagePaths, testNode, type TestNode } from './fixtures/install-node.ts';

let work: string;
let server: ArtifactServer | undefined;
let node: TestNode | undefined;

before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'nk-install-ctd-'));
});

after(async () => {
  await node?.services.stop('containerd.service');
  await server?.close();
  await rm(work, { recursive: true, force: true });
});

test('containerd is upgraded in place, restarted by the supervisor, and healthy over CRI', async () => {
  const hostRoot = path.join(work, 'root');
  await makeHostRoot(hostRoot, { machineId: 'c'.repeat(32), hostname: 'ctd-node', cniConfig: 'bridge' });
  // As apt installed it: a regular file at /usr/bin/containerd.
  await copyFile(CONTAINERD_BIN, path.join(hostRoot, 'usr/bin/containerd'));
  const ctdDir = path.join(hostRoot, 'run/containerd');
  const configFile = path.join(work, 'containerd.toml');
  await writeFile(configFile, containerdConfig(ctdDir, path.join(hostRoot, 'etc/cni/net.d'), DEBIAN_CNI_BIN_DIR));

  const spec = { hostRoot, stateDir: path.join(work, 'state') };
  node = testNode(spec);
  await node.services.define('containerd.service', { argv: ['/usr/bin/containerd', '--config', configFile] });
  await node.services.restart('containerd.service');
  const ctx = createProbeContext(nodeProbeConfig(spec));
  const before = await waitFor('containerd healthy before the upgrade', async () => {
    const s = await probeRuntime(ctx);
    return s.health === 'healthy' ? s : undefined;
  }, 30_000, 200);
  const pidBefore = (await node.services.running('containerd.service'))?.pid;

  const art = await containerdArtifact(path.join(work, 'art'));
  server = await serveArtifacts({ '/containerd.tgz': art.file });
  const manifest: PackageManifest = {
    name: 'containerd',
    format: 'tar.gz',
    links: [{ path: '/usr/bin/containerd', target: 'containerd' }],
    service: 'containerd.service',
    healthProbe: 'runtime',
    healthTimeoutMs: 30_000,
  };
  const version = '1.6.20-nk.1';
  const r = await node.executor.runInstall('c-ctd', installParams(manifest, version, art, server.url('/containerd.tgz')));
  assert.equal(r.ok, true, JSON.stringify(r));
  assert.equal(r.result?.['outcome'], 'installed');
  assert.equal(r.result?.['activeVersion'], version);
  const adopted = String(r.result?.['previousVersion']);
  assert.match(adopted, /^adopted-[0-9a-f]{12}$/, 'the apt-installed binary was adopted as the previous version');

  // The switch: current -> the new version; /usr/bin/containerd a link through current.
  const { current, versions } = packagePaths(hostRoot, 'containerd');
  assert.equal(await readlink(current), `versions/${version}`);
  assert.ok((await lstat(path.join(hostRoot, 'usr/bin/containerd'))).isSymbolicLink());
  const newBinary = path.join(await realpath(versions), version, 'containerd');
  assert.equal(await realpath(path.join(hostRoot, 'usr/bin/containerd')), newBinary);
  // The old content is kept for a rollback, byte for byte.
  assert.deepEqual(await readFile(path.join(versions, adopted, 'containerd')), await readFile(CONTAINERD_BIN));

  // Restarted: a new process, running the new version's binary, healthy over CRI.
  const running = await node.services.running('containerd.service');
  assert.ok(running !== null && running.pid !== pidBefore, 'containerd was restarted');
  assert.equal(await realpath(`/proc/${running.pid}/exe`), newBinary);
  const after = await probeRuntime(ctx);
  assert.equal(after.health, 'healthy', after.message);
  assert.equal(after.version?.raw, before.version?.raw);
  const recorded = JSON.parse(await readFile(path.join(hostRoot, 'var/lib/nodekeeper/packages.json'), 'utf8')) as Record<string, { version: string }>;
  assert.equal(recorded['containerd']?.version, version);
});
