import { test } from 'node:test';
import assert from 'node:assert/strict';
import { alertHold, podHolds } from './gates.ts';

const answer = (alerts: unknown[]) => ({ status: 'success', data: { alerts } });
const alert = (alertname: string, state = 'firing') => ({ labels: { alertname, severity: 'page' }, annotations: {}, state, activeAt: '2026-12-03T10:00:00Z', value: '1e+00' });

test('no firing alert, or only pending ones: no hold', () => {
  assert.equal(alertHold(answer([]), null, 'http://p'), null);
  assert.equal(alertHold(answer([alert('NodeDown', 'pending')]), null, 'http://p'), null);
});

test('firing alerts hold, named; the filter ignores the ones it matches (kured --alert-filter-regexp)', () => {
  const h = alertHold(answer([alert('NodeDown'), alert('Watchdog'), alert('DiskFull')]), /^Watchdog$/, 'http://p');
  assert.deepEqual(h, { reason: 'RebootHeld', message: '2 alert(s) firing in Prometheus at http://p: DiskFull, NodeDown' });
  assert.equal(alertHold(answer([alert('Watchdog')]), /^Watchdog$/, 'http://p'), null);
});

test('an answer that is not the alerts shape holds (unknown is not fine)', () => {
  for (const body of [null, 'x', { status: 'error', error: 'boom' }, { status: 'success', data: {} }]) {
    const h = alertHold(body, null, 'http://p');
    assert.equal(h?.reason, 'RebootHeld');
    assert.match(h?.message ?? '', /did not answer with its alerts/);
  }
});

test('blocking pods hold only the machines whose Node runs one; finished pods do not block', () => {
  const pods = [
    { namespace: 'default', name: 'db-0', node: 'node-a', phase: 'Running' },
    { namespace: 'default', name: 'job-1', node: 'node-b', phase: 'Succeeded' },
    { namespace: 'default', name: 'pending', node: null, phase: 'Pending' },
  ];
  const holds = podHolds(pods, 'app=db', (m) => m, ['node-a', 'node-b']);
  assert.deepEqual([...holds.keys()], ['node-a']);
  assert.equal(holds.get('node-a')?.message, 'blocking pods (app=db) on Node node-a: default/db-0');
});
