import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkSkew, compareVersions, componentOrder, kubeletSkewProblem, sameVersion } from './skew.ts';

test('kubelet follows the version-skew policy against the control plane', () => {
  assert.equal(kubeletSkewProblem('1.31.2', 'v1.31.0'), null, 'a newer patch is within the policy');
  assert.match(kubeletSkewProblem('1.32.0', '1.31.9') ?? '', /newer than the control plane/);
  assert.equal(kubeletSkewProblem('1.28.0', '1.31.0'), null, 'three minors older since 1.28');
  assert.match(kubeletSkewProblem('1.27.9', '1.31.0') ?? '', /4 minor versions older.*at most 3/);
  assert.match(kubeletSkewProblem('1.24.0', '1.27.0') ?? '', /at most 2/, 'two minors before 1.28');
  assert.match(kubeletSkewProblem('1.31.0', null) ?? '', /unknown/);
  assert.match(kubeletSkewProblem('2.0.0', '1.31.0') ?? '', /major/);
});

test('no downgrade unless allowed; Debian suffixes and a leading v read as semver', () => {
  assert.equal(compareVersions('1.6.20~ds1', '1.6.20'), 0);
  assert.equal(compareVersions('v1.7.1', '1.6.20~ds1'), 1);
  assert.ok(sameVersion('1.6.20~ds1', '1.6.20'));
  assert.ok(!sameVersion(null, '1.6.20'));
  const down = checkSkew({ controlPlane: '1.31.0', targets: { containerd: '1.6.2' }, current: { containerd: '1.6.20~ds1' } });
  assert.deepEqual(down.map((r) => r.reason), ['Downgrade']);
  assert.deepEqual(checkSkew({ controlPlane: '1.31.0', targets: { containerd: '1.6.2' }, current: { containerd: '1.6.20~ds1' }, allowDowngrade: true }), []);
  assert.deepEqual(checkSkew({ controlPlane: '1.31.0', targets: { kubelet: '1.31.1', containerd: '1.7.0' }, current: { kubelet: '1.30.0', containerd: null } }), []);
  assert.deepEqual(checkSkew({ controlPlane: '1.30.0', targets: { kubelet: '1.31.1' }, current: {} }).map((r) => r.reason), ['KubeletSkew']);
});

test('components change runtime first, then kubelet, then CNI, then others by name', () => {
  assert.deepEqual(componentOrder(['cni-plugins', 'zz-agent', 'kubelet', 'aa-tool', 'containerd']), ['containerd', 'kubelet', 'cni-plugins', 'aa-tool', 'zz-agent']);
});

test('the guard on desired versions: kubelet within the policy against a known control plane; unknown refuses nothing', async () => {
  const { desiredSkewProblem, reinstallSkewProblem } = await import('./skew.ts');
  assert.match(desiredSkewProblem([{ name: 'kubelet', version: '1.33.0' }], 'v1.32.1') ?? '', /newer than the control plane/);
  assert.match(desiredSkewProblem([{ name: 'containerd', version: '2.0.0' }, { name: 'kubelet', version: '1.28.0' }], 'v1.32.1') ?? '', /4 minor versions older.*at most 3/);
  assert.equal(desiredSkewProblem([{ name: 'kubelet', version: '1.32.4' }, { name: 'containerd', version: '9.0.0' }], 'v1.32.1'), null);
  assert.equal(desiredSkewProblem([{ name: 'kubelet', version: '1.40.0' }], null), null, 'an unknown control plane: whatever moves it checks again');
  // A reinstall moves kubelet unless it reinstalls the active version; then the control plane must be known.
  assert.match(reinstallSkewProblem('kubelet', '1.33.0', 'Kubernetes v1.32.0', 'v1.32.1') ?? '', /newer than the control plane/);
  assert.match(reinstallSkewProblem('kubelet', '1.32.1', 'Kubernetes v1.31.0', null) ?? '', /control plane.*unknown/);
  assert.equal(reinstallSkewProblem('kubelet', '1.32.0', 'Kubernetes v1.32.0', null), null, 'the active version again moves nothing');
  assert.equal(reinstallSkewProblem('containerd', '1.7.0', null, null), null);
});
