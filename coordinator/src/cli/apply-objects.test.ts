import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyOutcome, resourceVersionOf } from './apply-objects.ts';

test('apply says created, configured or unchanged from the resourceVersion before and after', () => {
  assert.equal(applyOutcome(null, '5'), 'created');
  assert.equal(applyOutcome('5', '5'), 'unchanged');
  assert.equal(applyOutcome('5', '9'), 'configured');
  assert.equal(resourceVersionOf({ metadata: { resourceVersion: '7' } }), '7');
  assert.equal(resourceVersionOf({ metadata: {} }), null);
  assert.equal(resourceVersionOf(null), null);
});
