import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AppError } from '@nodekeeper/common';
import { parseDocuments } from './apply-documents.ts';

const CPV = 'apiVersion: nodekeeper.io/v1alpha1\nkind: ClusterPackageVersion\nmetadata: {name: cluster}\nspec: {packages: []}\n';
const ROLLOUT = (name: string) => `apiVersion: nodekeeper.io/v1alpha1\nkind: Rollout\nmetadata:\n  name: ${name}\nspec: {}\n`;

function bad(text: string, want: string | RegExp, kinds?: Parameters<typeof parseDocuments>[2]): void {
  assert.throws(() => parseDocuments(text, 'f.yaml', kinds), (err: unknown) => {
    assert.ok(err instanceof AppError);
    assert.equal(err.code, 'NK_CLI_BAD_MANIFEST');
    if (typeof want === 'string') assert.ok(err.message.includes(want), err.message);
    else assert.match(err.message, want);
    return true;
  });
}

describe('parseDocuments', () => {
  it('reads several documents in order, skipping empty ones', () => {
    const docs = parseDocuments(`---\n${CPV}---\n${ROLLOUT('a')}---\n# nothing\n---\n${ROLLOUT('b')}---\n`, 'f.yaml');
    assert.deepEqual(docs.map((d) => [d.kind, d.name]), [['ClusterPackageVersion', 'cluster'], ['Rollout', 'a'], ['Rollout', 'b']]);
    assert.deepEqual(docs[1]?.object['spec'], {});
  });

  it('reads JSON', () => {
    const docs = parseDocuments(JSON.stringify({ apiVersion: 'nodekeeper.io/v1alpha1', kind: 'Rollout', metadata: { name: 'j' }, spec: {} }), 'f.json');
    assert.equal(docs[0]?.name, 'j');
  });

  it('names the document and the fault', () => {
    bad(`${CPV}---\nkind: [\n`, 'f.yaml, document 2: not valid YAML');
    bad(`${CPV}---\n${ROLLOUT('a')}a: 1\na: 2\n`, 'document 2: not valid YAML');
    bad(`${CPV}---\napiVersion: v1\nkind: Pod\n`, 'document 2: apiVersion must be nodekeeper.io/v1alpha1, got "v1"');
    bad('apiVersion: nodekeeper.io/v1alpha1\nkind: Machine\n', 'kind "Machine" is not one of ClusterPackageVersion, Rollout');
    bad('apiVersion: nodekeeper.io/v1alpha1\nkind: Rollout\nspec: {}\n', 'needs metadata.name');
    bad(ROLLOUT('Bad_Name'), 'needs metadata.name');
    bad('- 1\n- 2\n', 'got a list');
    bad('apiVersion: nodekeeper.io/v1alpha1\nkind: ClusterPackageVersion\nmetadata: {name: other}\n', 'named "cluster"');
    bad('', 'f.yaml: no documents');
    bad('---\n---\n', 'no documents');
    bad(CPV, 'not one of Rollout', ['Rollout']);
  });
});
