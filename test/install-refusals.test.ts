/**
 * Architecture invariant 2: an artifact that does not verify is never installed. Each
 * bad artifact (digest mismatch, bad signature, unsigned when keys are configured,
 * truncated, oversize, stalled, unreachable, HTTP error) is refused with its own code at
 * its own step, and the node is untouched: still at vA, no new version, no leftovers.
 * With trusted keys the signature covers the install statement (invariant 9): a bare
 * digest signature, or a manifest changed after signing, is refused. A version unpacked
 * earlier is verified again before reuse, and a downgrade needs --allow-downgrade.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdir, mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { InstallParams, PackageManifest } from '../packages/protocol/src/index.ts';
import { parseTrustedKey } from '../agent/src/install/verify.ts';
import { installParams, kubeletArtifact, serveArtifacts, signDigest, signInstall, signingKey, type Artifact, type ArtifactServer } from './harness/artifacts.ts';
import { packagePaths, testNode } from './fixtures/install-node.ts';

const VA = '1.31.2';
const VB = '1.32.0';
let work: string;
let server: ArtifactServer;
let artA: Artifact, artB: Artifact;
const key = signingKey();
const otherKey = signingKey();
const trusted = [parseTrustedKey(key.publicKeyPem, 'test-key.pem')];

// No service and no probe: these tests are about what happens before the switch.
const manifest: PackageManifest = { name: 'kubelet', format: 'tar.gz', links: [{ path: '/usr/bin/kubelet', target: 'kubelet' }], service: null, healthProbe: 'none', healthTimeoutMs: 1000 };

before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'nk-install-refuse-'));
  [artA, artB] = await Promise.all([kubeletArtifact(path.join(work, 'art'), { version: VA }), kubeletArtifact(path.join(work, 'art'), { version: VB })]);
  server = await serveArtifacts({
    '/a.tgz': artA.file,
    '/b.tgz': artB.file,
    '/b-truncated.tgz': { file: artB.file, behaviour: 'truncate' },
    '/b-stall.tgz': { file: artB.file, behaviour: 'stall' },
    '/b-500.tgz': { file: artB.file, behaviour: 'status-500' },
  });
});

after(async () => {
  await server?.close();
  await rm(work, { recursive: true, force: true });
});

async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

let n = 0;
async function nodeAtA(keys: boolean, allowDowngrade = false) {
  const dir = path.join(work, `node-${n++}`);
  await mkdir(dir, { recursive: true });
  const node = testNode({ hostRoot: path.join(dir, 'root'), stateDir: path.join(dir, 'state'), ...(keys ? { trustedKeys: trusted } : {}), ...(allowDowngrade ? { policy: { allowDowngrade } } : {}) });
  const sig = signInstall(manifest, VA, artA, key.privateKey);
  const r = await node.executor.runInstall('c-a', installParams(manifest, VA, artA, server.url('/a.tgz'), sig));
  assert.equal(r.ok, true, JSON.stringify(r));
  return { node, hostRoot: path.join(dir, 'root') };
}

interface RefusalCase {
  readonly name: string;
  readonly keys: boolean;
  readonly params: () => Promise<InstallParams>;
  readonly code: string;
  readonly step: string;
}

const cases: RefusalCase[] = [
  { name: 'digest mismatch', keys: false, params: async () => ({ ...installParams(manifest, VB, artB, server.url('/b.tgz')), artifact: { url: server.url('/b.tgz'), sha256: artA.sha256, size: artB.size } }), code: 'NK_INSTALL_DIGEST_MISMATCH', step: 'verify' },
  { name: 'bad signature', keys: true, params: async () => installParams(manifest, VB, artB, server.url('/b.tgz'), signInstall(manifest, VB, artB, otherKey.privateKey)), code: 'NK_INSTALL_SIGNATURE_INVALID', step: 'verify' },
  { name: 'signature over another digest', keys: true, params: async () => installParams(manifest, VB, artB, server.url('/b.tgz'), signInstall(manifest, VB, artA, key.privateKey)), code: 'NK_INSTALL_SIGNATURE_INVALID', step: 'verify' },
  { name: 'signature over the bare digest (no statement)', keys: true, params: async () => installParams(manifest, VB, artB, server.url('/b.tgz'), signDigest(artB.sha256, key.privateKey)), code: 'NK_INSTALL_SIGNATURE_INVALID', step: 'verify' },
  { name: 'manifest changed after signing', keys: true, params: async () => installParams({ ...manifest, healthTimeoutMs: 2000 }, VB, artB, server.url('/b.tgz'), signInstall(manifest, VB, artB, key.privateKey)), code: 'NK_INSTALL_SIGNATURE_INVALID', step: 'verify' },
  { name: 'signature for another version', keys: true, params: async () => installParams(manifest, VB, artB, server.url('/b.tgz'), signInstall(manifest, '1.32.1', artB, key.privateKey)), code: 'NK_INSTALL_SIGNATURE_INVALID', step: 'verify' },
  { name: 'unsigned when keys are configured', keys: true, params: async () => installParams(manifest, VB, artB, server.url('/b.tgz')), code: 'NK_INSTALL_UNSIGNED', step: 'verify' },
  { name: 'truncated download', keys: false, params: async () => installParams(manifest, VB, artB, server.url('/b-truncated.tgz')), code: 'NK_INSTALL_TRUNCATED', step: 'download' },
  { name: 'more bytes than declared', keys: false, params: async () => ({ ...installParams(manifest, VB, artB, server.url('/b.tgz')), artifact: { url: server.url('/b.tgz'), sha256: artB.sha256, size: artB.size - 1 } }), code: 'NK_INSTALL_TOO_LARGE', step: 'download' },
  { name: 'unreachable URL', keys: false, params: async () => installParams(manifest, VB, artB, `http://127.0.0.1:${await closedPort()}/b.tgz`), code: 'NK_INSTALL_DOWNLOAD_FAILED', step: 'download' },
  { name: 'HTTP 500', keys: false, params: async () => installParams(manifest, VB, artB, server.url('/b-500.tgz')), code: 'NK_INSTALL_DOWNLOAD_FAILED', step: 'download' },
  { name: 'stalled download', keys: false, params: async () => installParams(manifest, VB, artB, server.url('/b-stall.tgz')), code: 'NK_INSTALL_DOWNLOAD_TIMEOUT', step: 'download' },
];

for (const c of cases) {
  test(`${c.name}: refused with ${c.code} at ${c.step}, nothing switched`, async () => {
    const { node, hostRoot } = await nodeAtA(c.keys);
    // A short timeout for the stalled case: the command's own deadline bounds the download.
    const r = await node.executor.handle({ type: 'command', commandId: 'c-b', kind: 'package.install', params: (await c.params()) as unknown as Record<string, unknown>, timeoutMs: 1500 });
    assert.ok(r !== null);
    assert.equal(r.ok, false);
    assert.equal(r.error?.code, c.code, r.error?.message);
    assert.equal(r.result?.['outcome'], 'refused');
    assert.equal(r.result?.['failedStep'], c.step);
    assert.equal(r.result?.['activeVersion'], VA);
    const { current, versions } = packagePaths(hostRoot, 'kubelet');
    assert.equal(await readlink(current), `versions/${VA}`);
    assert.deepEqual((await readdir(versions)).sort(), [VA, `${VA}.artifact.json`], 'no version, staging or download left behind');
    assert.deepEqual(await readdir(path.dirname(current)).then((d) => d.includes('incoming')), false);
  });
}

test('a signed artifact from a trusted key installs; bad params are refused before anything runs', async () => {
  const { node, hostRoot } = await nodeAtA(true, true);
  const r = await node.executor.runInstall('c-b', installParams(manifest, VB, artB, server.url('/b.tgz'), signInstall(manifest, VB, artB, key.privateKey)));
  assert.equal(r.ok, true, JSON.stringify(r));
  assert.equal(await readlink(packagePaths(hostRoot, 'kubelet').current), `versions/${VB}`);
  const again = await node.executor.runInstall('c-b2', installParams(manifest, VB, artB, server.url('/b.tgz'), signInstall(manifest, VB, artB, key.privateKey)));
  assert.equal(again.result?.['outcome'], 'already-installed');

  const bad = await node.executor.runInstall('c-bad', { package: 'kubelet', version: 'not a version' });
  assert.equal(bad.error?.code, 'NK_INSTALL_BAD_PARAMS');
  assert.match(bad.error?.message ?? '', /params/);
  const mismatch = await node.executor.runInstall('c-bad2', { ...installParams(manifest, VA, artA, server.url('/a.tgz')), package: 'containerd' });
  assert.equal(mismatch.error?.code, 'NK_INSTALL_BAD_PARAMS');
  // Going back by an install of the old version (allowed here): its unpacked directory is
  // reused, but only once its statement verifies again: another key's signature is refused.
  const forged = await node.executor.runInstall('c-forged', installParams(manifest, VA, artA, 'http://127.0.0.1:1/gone.tgz', signInstall(manifest, VA, artA, otherKey.privateKey)));
  assert.equal(forged.error?.code, 'NK_INSTALL_SIGNATURE_INVALID', JSON.stringify(forged));
  assert.equal(await readlink(packagePaths(hostRoot, 'kubelet').current), `versions/${VB}`);
  const back = await node.executor.runInstall('c-back', installParams(manifest, VA, artA, 'http://127.0.0.1:1/gone.tgz', signInstall(manifest, VA, artA, key.privateKey)));
  assert.equal(back.result?.['outcome'], 'installed', JSON.stringify(back));
  assert.equal(await readlink(packagePaths(hostRoot, 'kubelet').current), `versions/${VA}`);
});

test('an install of a lower version is refused without --allow-downgrade; the node stays where it is', async () => {
  const { node, hostRoot } = await nodeAtA(false);
  const up = await node.executor.runInstall('c-b', installParams(manifest, VB, artB, server.url('/b.tgz')));
  assert.equal(up.ok, true, JSON.stringify(up));
  const down = await node.executor.runInstall('c-down', installParams(manifest, VA, artA, server.url('/a.tgz')));
  assert.equal(down.error?.code, 'NK_INSTALL_DOWNGRADE_REFUSED', JSON.stringify(down));
  assert.equal(down.result?.['outcome'], 'refused');
  assert.equal(await readlink(packagePaths(hostRoot, 'kubelet').current), `versions/${VB}`);
});

test('a version unpacked earlier whose files changed since is not reused: it is fetched and staged again', async () => {
  const { node, hostRoot } = await nodeAtA(false, true);
  const up = await node.executor.runInstall('c-b', installParams(manifest, VB, artB, server.url('/b.tgz')));
  assert.equal(up.ok, true, JSON.stringify(up));
  const binary = path.join(packagePaths(hostRoot, 'kubelet').versions, VA, 'kubelet');
  const original = await readFile(binary);
  await appendFile(binary, '\necho tampered\n');
  // The artifact is gone: reusing the tampered directory is the only way this could "succeed".
  const gone = await node.executor.runInstall('c-gone', installParams(manifest, VA, artA, 'http://127.0.0.1:1/gone.tgz'));
  assert.equal(gone.error?.code, 'NK_INSTALL_DOWNLOAD_FAILED', JSON.stringify(gone));
  assert.equal(await readlink(packagePaths(hostRoot, 'kubelet').current), `versions/${VB}`);
  const back = await node.executor.runInstall('c-back', installParams(manifest, VA, artA, server.url('/a.tgz')));
  assert.equal(back.result?.['outcome'], 'installed', JSON.stringify(back));
  assert.deepEqual(await readFile(binary), original, 'staged afresh from the verified artifact');
});

test('a package.rollback to an unpacked version that changed since it was staged is refused; nothing switched', async () => {
  const { node, hostRoot } = await nodeAtA(false);
  const up = await node.executor.runInstall('c-b', installParams(manifest, VB, artB, server.url('/b.tgz')));
  assert.equal(up.ok, true, JSON.stringify(up));
  await appendFile(path.join(packagePaths(hostRoot, 'kubelet').versions, VA, 'kubelet'), '\necho tampered\n');
  const back = await node.executor.runRollback('c-rb', { package: 'kubelet', manifest, expectedVersion: null });
  assert.equal(back.error?.code, 'NK_INSTALL_VERSION_TAMPERED', JSON.stringify(back));
  assert.equal(back.result?.['outcome'], 'refused');
  assert.equal(await readlink(packagePaths(hostRoot, 'kubelet').current), `versions/${VB}`);
});

test('with trusted keys, a package.rollback whose manifest is not the one verified at install is refused', async () => {
  const { node, hostRoot } = await nodeAtA(true);
  const up = await node.executor.runInstall('c-b', installParams(manifest, VB, artB, server.url('/b.tgz'), signInstall(manifest, VB, artB, key.privateKey)));
  assert.equal(up.ok, true, JSON.stringify(up));
  const other = await node.executor.runRollback('c-rb1', { package: 'kubelet', manifest: { ...manifest, healthTimeoutMs: 2000 }, expectedVersion: null });
  assert.equal(other.error?.code, 'NK_INSTALL_SIGNATURE_INVALID', JSON.stringify(other));
  assert.equal(await readlink(packagePaths(hostRoot, 'kubelet').current), `versions/${VB}`);
  const same = await node.executor.runRollback('c-rb2', { package: 'kubelet', manifest, expectedVersion: null });
  assert.equal(same.result?.['outcome'], 'rolled-back', JSON.stringify(same));
  assert.equal(await readlink(packagePaths(hostRoot, 'kubelet').current), `versions/${VA}`);
});
