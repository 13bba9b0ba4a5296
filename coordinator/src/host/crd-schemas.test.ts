import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Type } from '@sinclair/typebox';
import { generatedCrds, renderCrdsFile, toStructural } from './crd-schemas.ts';

const FILE = fileURLToPath(new URL('../../deploy/host/crds.yaml', import.meta.url));

test('crds.yaml is what scripts/gen-crds.ts makes of the TypeBox schemas (run it when this fails)', () => {
  const current = readFileSync(FILE, 'utf8');
  assert.equal(renderCrdsFile(current), current, 'coordinator/deploy/host/crds.yaml is stale: run node scripts/gen-crds.ts');
  for (const name of ['clusters.nodekeeper.io', 'machines.nodekeeper.io', 'rollouts.nodekeeper.io', 'remediationrules.nodekeeper.io', 'clusterpackageversions.nodekeeper.io']) {
    assert.equal(current.split(`  name: ${name}\n`).length, 2, `${name} once`);
  }
});

test('every generated node is structural: typed (or int-or-string, or preserved), no additionalProperties: false', () => {
  const walk = (node: Record<string, unknown>, at: string): void => {
    assert.ok(node['type'] !== undefined || node['x-kubernetes-int-or-string'] === true || node['x-kubernetes-preserve-unknown-fields'] === true, `${at} has no type`);
    assert.notEqual(node['additionalProperties'], false, at);
    for (const [k, v] of Object.entries((node['properties'] ?? {}) as Record<string, Record<string, unknown>>)) walk(v, `${at}.${k}`);
    if (node['items'] !== undefined) walk(node['items'] as Record<string, unknown>, `${at}[]`);
    if (typeof node['additionalProperties'] === 'object') walk(node['additionalProperties'] as Record<string, unknown>, `${at}{}`);
  };
  for (const crd of generatedCrds()) {
    const v = (crd['spec'] as { versions: Array<{ schema: { openAPIV3Schema: Record<string, unknown> } }> }).versions[0]!;
    walk(v.schema.openAPIV3Schema, (crd['metadata'] as { name: string }).name);
  }
});

test('unions: enums, nullable and int-or-string are translated; anything else is refused, not skipped', () => {
  assert.deepEqual(toStructural(Type.Union([Type.Literal('A'), Type.Literal('B')])), { type: 'string', enum: ['A', 'B'] });
  assert.deepEqual(toStructural(Type.Union([Type.String({ maxLength: 3 }), Type.Null()])), { type: 'string', maxLength: 3, nullable: true });
  const ios = toStructural(Type.Union([Type.Integer({ minimum: 1 }), Type.String({ pattern: '^[0-9]+%$' })]));
  assert.equal(ios['x-kubernetes-int-or-string'], true);
  assert.deepEqual(ios['x-kubernetes-validations'], [{ rule: 'type(self) == int ? self >= 1 : self.matches("^[0-9]+%$")', message: 'an integer >= 1 or a string matching ^[0-9]+%$' }]);
  assert.deepEqual(toStructural(Type.Record(Type.String(), Type.Integer())), { type: 'object', additionalProperties: { type: 'integer' } });
  assert.throws(() => toStructural(Type.Union([Type.Object({ a: Type.String() }), Type.Object({ b: Type.String() })]), 'spec.x'), /spec\.x: a union a structural schema cannot say/);
});
