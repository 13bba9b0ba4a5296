import { test } from 'node:test';
import assert from 'node:assert/strict';
import { windowOpen } from './window.ts';

const at = (iso: string) => Date.parse(iso);

test('no window is always open', () => {
  assert.ok(windowOpen(undefined, 0));
});

test('a daytime window is open from start (inclusive) to end (exclusive) on its days', () => {
  const w = { days: ['Mon', 'Tue'] as ('Mon' | 'Tue')[], start: '09:00', end: '17:00', timeZone: 'UTC' as const };
  assert.ok(windowOpen(w, at('2025-06-02T09:00:00Z')), 'Monday 09:00');
  assert.ok(!windowOpen(w, at('2025-06-02T17:00:00Z')), 'Monday 17:00');
  assert.ok(!windowOpen(w, at('2025-06-02T08:59:59Z')));
  assert.ok(!windowOpen(w, at('2025-06-04T10:00:00Z')), 'Wednesday');
});

test('a window past midnight belongs to the day it starts on', () => {
  const w = { days: ['Sat'] as 'Sat'[], start: '22:00', end: '04:00', timeZone: 'UTC' as const };
  assert.ok(windowOpen(w, at('2025-06-07T23:00:00Z')), 'Saturday 23:00');
  assert.ok(windowOpen(w, at('2025-06-08T03:59:00Z')), 'Sunday 03:59 is still Saturday night');
  assert.ok(!windowOpen(w, at('2025-06-08T23:00:00Z')), 'Sunday 23:00');
  assert.ok(!windowOpen(w, at('2025-06-07T03:00:00Z')), 'Saturday 03:00 belongs to Friday night');
});
