/**
 * Integrity checks: digest always; with trusted keys, a signature over the install
 * statement (package, version, digest, size, manifest), so a changed manifest fails too.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import fc from 'fast-check';
import { hasCode } from '@nodekeeper/common';
import { installStatement, type InstallParams, type PackageManifest } from '@nodekeeper/protocol';
import { parseTrustedKey, verifyArtifact } from './verify.ts';

const good = generateKeyPairSync('ed25519');
const other = generateKeyPairSync('ed25519');
const pem = (k: typeof good) => k.publicKey.export({ type: 'spki', format: 'pem' }).toString();
const sha = createHash('sha256').update('artifact').digest('hex');
const manifest: PackageManifest = { name: 'kubelet', format: 'tar.gz', links: [{ path: '/usr/bin/kubelet', target: 'kubelet' }], service: 'kubelet.service', healthProbe: 'kubelet', healthTimeoutMs: 60_000 };
const ref = (signature?: string, m: PackageManifest = manifest): InstallParams => ({
  package: 'kubelet',
  version: '1.31.2',
  artifact: { url: 'https://x/a', sha256: sha, size: 8, ...(signature === undefined ? {} : { signature }) },
  manifest: m,
});
const sig = (k: typeof good, digest = sha, m: PackageManifest = manifest, version = '1.31.2') =>
  sign(null, Buffer.from(installStatement({ package: 'kubelet', version, artifact: { sha256: digest, size: 8 }, manifest: m }), 'utf8'), k.privateKey).toString('base64');

test('without trusted keys, the digest alone decides', () => {
  assert.deepEqual(verifyArtifact(ref(), sha, []), { signedBy: null });
  assert.throws(() => verifyArtifact(ref(), '0'.repeat(64), []), (e) => hasCode(e, 'NK_INSTALL_DIGEST_MISMATCH'));
});

test('with trusted keys: a good signature passes; unsigned, bad or foreign ones are refused', () => {
  const keys = [parseTrustedKey(pem(other), 'other.pem'), parseTrustedKey(pem(good), 'good.pem')];
  assert.deepEqual(verifyArtifact(ref(sig(good)), sha, keys), { signedBy: 'good.pem' });
  assert.throws(() => verifyArtifact(ref(), sha, keys), (e) => hasCode(e, 'NK_INSTALL_UNSIGNED'));
  assert.throws(() => verifyArtifact(ref(sig(good)), sha, [keys[0]!]), (e) => hasCode(e, 'NK_INSTALL_SIGNATURE_INVALID'));
  assert.throws(() => verifyArtifact(ref(sig(good, '1'.repeat(64))), sha, keys), (e) => hasCode(e, 'NK_INSTALL_SIGNATURE_INVALID'));
  // What the signature covers besides the digest: the version and the manifest.
  assert.throws(() => verifyArtifact(ref(sig(good, sha, manifest, '1.31.3')), sha, keys), (e) => hasCode(e, 'NK_INSTALL_SIGNATURE_INVALID'));
  const evil: PackageManifest = { ...manifest, links: [...manifest.links, { path: '/etc/systemd/system/evil.service', target: 'kubelet' }] };
  assert.throws(() => verifyArtifact(ref(sig(good), evil), sha, keys), (e) => hasCode(e, 'NK_INSTALL_SIGNATURE_INVALID'), 'a manifest changed after signing');
  // A signature over the bare digest (what nkctl artifact push --sign made before) is not a statement signature.
  const bare = sign(null, Buffer.from(sha, 'hex'), good.privateKey).toString('base64');
  assert.throws(() => verifyArtifact(ref(bare), sha, keys), (e) => hasCode(e, 'NK_INSTALL_SIGNATURE_INVALID'));
  // The digest is checked first: a good signature never excuses the wrong bytes.
  assert.throws(() => verifyArtifact(ref(sig(good)), '2'.repeat(64), keys), (e) => hasCode(e, 'NK_INSTALL_DIGEST_MISMATCH'));
});

test('any flipped bit of a signature is refused', () => {
  const keys = [parseTrustedKey(pem(good), 'good.pem')];
  const raw = Buffer.from(sig(good), 'base64');
  fc.assert(
    fc.property(fc.integer({ min: 0, max: raw.length * 8 - 1 }), (bit) => {
      const bad = Buffer.from(raw);
      bad[bit >> 3]! ^= 1 << (bit & 7);
      assert.throws(() => verifyArtifact(ref(bad.toString('base64')), sha, keys), (e) => hasCode(e, 'NK_INSTALL_SIGNATURE_INVALID'));
    }),
    { numRuns: 64 },
  );
});

test('a trusted key must be an ed25519 PEM public key', () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
  assert.throws(() => parseTrustedKey(rsa, 'rsa.pem'), (e) => hasCode(e, 'NK_INSTALL_TRUSTED_KEY_INVALID') && /not ed25519/.test(e.message));
  assert.throws(() => parseTrustedKey('garbage', 'g.pem'), (e) => hasCode(e, 'NK_INSTALL_TRUSTED_KEY_INVALID'));
});
