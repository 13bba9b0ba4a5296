import { test } from 'node:test';
import assert from 'node:assert/strict';
import { artifactReferrer } from './delete-routes.ts';

test('an artifact is in use by the CPV, a pin, or an unfinished rollout, named in that order', () => {
  const sha = 'a'.repeat(64);
  const art = { package: 'kubelet', version: '1.31.3' };
  const cpv = [{ name: 'kubelet', version: '1.31.3', artifact: { sha256: sha } }];
  const pinned = [{ name: 'node-1', packageOverrides: { kubelet: { artifact: { sha256: sha } } } }];
  assert.match(artifactReferrer(sha, art, cpv, pinned, 'r1') ?? '', /ClusterPackageVersion \(kubelet 1\.31\.3\)/);
  assert.match(artifactReferrer(sha, art, [], pinned, 'r1') ?? '', /pin of kubelet on machine node-1/);
  assert.match(artifactReferrer(sha, art, [], [], 'r1') ?? '', /rollout r1/);
  assert.equal(artifactReferrer(sha, art, [], [{ name: 'node-2' }], null), null);
});
