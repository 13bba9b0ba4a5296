import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, verify } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installStatement } from '@nodekeeper/protocol';
import { artifactSize, loadSigningKey, progressReporter, sha256File } from './artifact-file.ts';
import { signClusterPackageVersion, signInstallStatement } from './sign-statement.ts';
import { builtinManifests } from '../packages/manifests.ts';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'nkctl-artifact-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('artifact file', () => {
  it('hashes in a stream and signs the install statement so node:crypto verifies it', async () => {
    const content = Buffer.alloc(3 * 65_536 + 17, 0xab);
    const path = join(dir, 'a.bin');
    writeFileSync(path, content);
    assert.equal(artifactSize(path), content.length);
    const digest = await sha256File(path);
    assert.ok(digest.equals(createHash('sha256').update(content).digest()));
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const keyPath = join(dir, 'k.pem');
    writeFileSync(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const manifest = builtinManifests['kubelet']!;
    const input = { package: 'kubelet', version: '1.31.3', artifact: { sha256: digest.toString('hex'), size: content.length }, manifest };
    const sig = signInstallStatement(input, loadSigningKey(keyPath));
    assert.match(sig, /^[A-Za-z0-9+/]{86}==$/);
    assert.ok(verify(null, Buffer.from(installStatement(input)), publicKey, Buffer.from(sig, 'base64')));
    assert.ok(!verify(null, digest, publicKey, Buffer.from(sig, 'base64')), 'not a bare digest signature');
    // nkctl sign / apply --sign-key: each entry with its own manifest, else the built-in one.
    const own = { ...manifest, healthTimeoutMs: 5000 };
    const cpv = { apiVersion: 'nodekeeper.io/v1alpha1', kind: 'ClusterPackageVersion', spec: { packages: [
      { name: 'kubelet', version: '1.31.3', artifact: { url: 'https://x/k', sha256: input.artifact.sha256, size: content.length }, manifest: own },
      { name: 'containerd', version: '2.0.1', artifact: { url: 'https://x/c', sha256: 'c'.repeat(64), size: 9 } },
    ] } };
    const signed = signClusterPackageVersion(cpv, loadSigningKey(keyPath)) as typeof cpv & { spec: { packages: Array<{ artifact: { signature: string } }> } };
    const [k, c] = signed.spec.packages;
    assert.ok(verify(null, Buffer.from(installStatement({ ...input, manifest: own })), publicKey, Buffer.from(k!.artifact.signature, 'base64')));
    assert.ok(verify(null, Buffer.from(installStatement({ package: 'containerd', version: '2.0.1', artifact: { sha256: 'c'.repeat(64), size: 9 }, manifest: builtinManifests['containerd']! })), publicKey, Buffer.from(c!.artifact.signature, 'base64')));
    assert.equal((cpv.spec.packages[0]!.artifact as { signature?: string }).signature, undefined, 'the input is not changed');
  });

  it('refuses directories, empty files and non-ed25519 keys', () => {
    assert.throws(() => artifactSize(dir), /not a regular file/);
    writeFileSync(join(dir, 'empty'), '');
    assert.throws(() => artifactSize(join(dir, 'empty')), /is empty/);
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' });
    writeFileSync(join(dir, 'ec.pem'), ec);
    assert.throws(() => loadSigningKey(join(dir, 'ec.pem')), (e: Error & { code?: string }) => e.code === 'NK_CLI_BAD_KEY' && /is ec, not ed25519/.test(e.message));
  });

  it('shows progress only on a terminal, throttled, with a final newline', () => {
    const out: string[] = [];
    let t = 0;
    const quiet = progressReporter((s) => out.push(s), false, 100, () => t);
    quiet.update(50);
    quiet.done();
    assert.equal(out.length, 0);
    const p = progressReporter((s) => out.push(s), true, 4 * 1024 * 1024, () => t, 200);
    p.update(1024 * 1024);
    t = 100;
    p.update(2 * 1024 * 1024); // throttled
    t = 300;
    p.update(3 * 1024 * 1024);
    p.update(4 * 1024 * 1024); // the end always shows
    p.done();
    assert.deepEqual(out, [
      '\rsent 1.0 MiB of 4.0 MiB (25%)\x1b[K',
      '\rsent 3.0 MiB of 4.0 MiB (75%)\x1b[K',
      '\rsent 4.0 MiB of 4.0 MiB (100%)\x1b[K',
      '\n',
    ]);
  });
});
