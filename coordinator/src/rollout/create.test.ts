import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pinnedElsewhere } from './create.ts';

test('pinnedElsewhere: a machine pinning a rollout package to another version is left out; a pin to the same version or of another package is not', () => {
  const spec = { packages: [{ package: 'kubelet', version: '1.31.2' }, { package: 'containerd', version: '1.7.1' }] };
  const machines = [
    { name: 'a' },
    { name: 'b', packageOverrides: { kubelet: { version: '1.30.4' } } },
    { name: 'c', packageOverrides: { kubelet: { version: '1.31.2' } } },
    { name: 'd', packageOverrides: { 'cni-plugins': { version: '1.4.0' } } },
    { name: 'e', packageOverrides: { kubelet: { version: '1.31.2' }, containerd: { version: '1.6.20' } } },
  ];
  assert.deepEqual([...pinnedElsewhere(spec, machines)], ['b', 'e']);
});
