import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasCode } from '@nodekeeper/common';
import { checkPreconditions, readPreconditions, withoutServerFields } from './object-meta.ts';

const current = { uid: 'u-1', resourceVersion: '42', generation: 3, createdAt: 0 };

test('no preconditions: any current object, or none, is fine', () => {
  const pre = readPreconditions({ metadata: { name: 'x' } }, 'x');
  assert.deepEqual(pre, { resourceVersion: null, uid: null });
  checkPreconditions(pre, current, 'x');
  checkPreconditions(pre, null, 'x');
  assert.deepEqual(readPreconditions(null, 'x'), pre);
});

test('the current resourceVersion and uid pass; a stale one or another uid is NK_CONFLICT naming the current one', () => {
  checkPreconditions(readPreconditions({ metadata: { resourceVersion: '42', uid: 'u-1' } }, 'x'), current, 'x');
  assert.throws(() => checkPreconditions(readPreconditions({ metadata: { resourceVersion: '41' } }, 'x'), current, 'x'), (err) => hasCode(err, 'NK_CONFLICT') && /current one is 42/.test(err.message));
  assert.throws(() => checkPreconditions(readPreconditions({ metadata: { uid: 'u-2' } }, 'x'), current, 'x'), (err) => hasCode(err, 'NK_CONFLICT') && /u-1/.test(err.message));
  assert.throws(() => checkPreconditions(readPreconditions({ metadata: { resourceVersion: '1' } }, 'x'), null, 'x'), (err) => hasCode(err, 'NK_CONFLICT'));
});

test('a resourceVersion that is not a decimal string, or a uid that is not a string, is NK_OBJECT_METADATA_INVALID', () => {
  for (const rv of ['abc', '-1', '1.5', '01', '', ' 1', 42, true, {}, '1'.repeat(25)]) {
    assert.throws(() => readPreconditions({ metadata: { resourceVersion: rv } }, 'x'), (err) => hasCode(err, 'NK_OBJECT_METADATA_INVALID'), JSON.stringify(rv));
  }
  for (const uid of [5, '', 'u'.repeat(65), []]) {
    assert.throws(() => readPreconditions({ metadata: { uid } }, 'x'), (err) => hasCode(err, 'NK_OBJECT_METADATA_INVALID'), JSON.stringify(uid));
  }
});

test('server-set fields are dropped before comparing and storing', () => {
  assert.deepEqual(
    withoutServerFields({ apiVersion: 'v', kind: 'K', metadata: { name: 'n', labels: { a: 'b' }, uid: 'u', resourceVersion: '1', generation: 2, creationTimestamp: 't' }, spec: { x: 1 }, status: { y: 2 } }),
    { apiVersion: 'v', kind: 'K', metadata: { name: 'n', labels: { a: 'b' } }, spec: { x: 1 } },
  );
});
