import { test } from 'node:test';
import assert from 'node:assert/strict';
import { judgeHostCpvs, mergePackages, type HostCpv } from './cpv-pull.ts';

const artifact = { url: 'https://a.invalid/x.tgz', sha256: 'a'.repeat(64), size: 1 };
const cpv = (name: string, packages: unknown[], generation = 1, observed?: number): HostCpv =>
  ({ metadata: { name, generation }, spec: { packages }, ...(observed === undefined ? {} : { status: { observedGeneration: observed } }) });

test('each host generation is judged once', () => {
  const objs = [cpv('a', [{ name: 'kubelet', version: '1.35.1', artifact }], 2, 2), cpv('b', [{ name: 'containerd', version: '2.0.1', artifact }], 3, 2)];
  const v = judgeHostCpvs(objs, 'v1.36.0');
  assert.deepEqual(v.map((x) => [x.name, x.generation, x.accepted]), [['b', 3, true]]);
});

test('a package set by two host objects is taken from the first by name, refused in the second', () => {
  const v = judgeHostCpvs([cpv('z', [{ name: 'kubelet', version: '1.35.2', artifact }]), cpv('a', [{ name: 'kubelet', version: '1.35.1', artifact }])], 'v1.36.0');
  assert.equal(v[0]!.name, 'a');
  assert.equal(v[0]!.accepted, true);
  assert.deepEqual(v[1], { name: 'z', generation: 1, accepted: false, reason: 'Conflict', message: 'package kubelet is already set by ClusterPackageVersion a' });
});

test('an already judged object still owns its packages (a later object cannot take them over)', () => {
  const v = judgeHostCpvs([cpv('a', [{ name: 'kubelet', version: '1.35.1', artifact }], 1, 1), cpv('b', [{ name: 'kubelet', version: '1.35.2', artifact }])], 'v1.36.0');
  assert.equal(v.length, 1);
  assert.equal(v[0]!.accepted, false);
});

test('refusals: invalid objects, unknown packages, version skew; an unknown control plane is not a refusal', () => {
  const bad = judgeHostCpvs([cpv('x', [{ name: 'kubelet', version: 'latest', artifact }])], 'v1.36.0')[0]!;
  assert.equal(bad.accepted || bad.reason, 'Invalid');
  const unknown = judgeHostCpvs([cpv('x', [{ name: 'frob', version: '1.0.0', artifact }])], 'v1.36.0')[0]!;
  assert.equal(unknown.accepted || unknown.reason, 'Invalid');
  const skew = judgeHostCpvs([cpv('x', [{ name: 'kubelet', version: '1.37.0', artifact }])], 'v1.36.3')[0]!;
  assert.equal(skew.accepted || skew.reason, 'VersionSkew');
  assert.equal(judgeHostCpvs([cpv('x', [{ name: 'kubelet', version: '1.37.0', artifact }])], null)[0]!.accepted, true);
});

test('accepting replaces the named packages and keeps the others', () => {
  const local = [{ name: 'kubelet', version: '1.35.0', artifact }, { name: 'containerd', version: '2.0.0', artifact }];
  assert.deepEqual(mergePackages(local, [{ name: 'kubelet', version: '1.35.1', artifact }]).map((p) => `${p.name}=${p.version}`), ['containerd=2.0.0', 'kubelet=1.35.1']);
});

test('a host object whose manifest leaves the install rules is refused NotAllowed, with the code and the field', () => {
  const evil = { name: 'evil', format: 'tar.gz', links: [{ path: '/etc/systemd/system/evil.service', target: '../../../../etc/passwd' }], service: null, healthProbe: 'none', healthTimeoutMs: 1000 };
  const v = judgeHostCpvs([cpv('x', [{ name: 'evil', version: '1.0.0', artifact, manifest: evil }])], 'v1.36.0')[0]!;
  assert.equal(v.accepted, false);
  assert.ok(!v.accepted && v.reason === 'NotAllowed' && /NK_INSTALL_PATH_NOT_ALLOWED: spec\.packages\[0\]\.manifest\.links\[0\]\.path/.test(v.message), JSON.stringify(v));
});

test("a host object's default updateStrategy travels with each package it sets, under the package's own fields", () => {
  const obj: HostCpv = {
    metadata: { name: 'x', generation: 1 },
    spec: {
      updateStrategy: { soakSeconds: 30, maxUnavailable: 2 },
      packages: [{ name: 'kubelet', version: '1.35.1', artifact, updateStrategy: { soakSeconds: 5 } }, { name: 'containerd', version: '2.0.1', artifact }],
    },
  };
  const v = judgeHostCpvs([obj], 'v1.36.0')[0]!;
  assert.ok(v.accepted, JSON.stringify(v));
  assert.deepEqual(v.packages.map((p) => [p.name, p.updateStrategy]), [['kubelet', { soakSeconds: 5, maxUnavailable: 2 }], ['containerd', { soakSeconds: 30, maxUnavailable: 2 }]]);
  const plain = judgeHostCpvs([cpv('y', [{ name: 'kubelet', version: '1.35.1', artifact }])], 'v1.36.0')[0]!;
  assert.ok(plain.accepted && plain.packages[0]!.updateStrategy === undefined, 'without one, nothing converges by itself');
});
