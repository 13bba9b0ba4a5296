import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateRollout } from '../rollout/spec.ts';
import { rebootFromFlags } from './reboot-spec.ts';
import { parseWindow, rolloutFromFlags } from './rollout-spec.ts';

test('--window: day ranges (wrapping), lists, every day; the time zone as written', () => {
  assert.deepEqual(parseWindow('Mon-Fri 02:00-05:00', 'Europe/Berlin'), { days: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri'], start: '02:00', end: '05:00', timeZone: 'Europe/Berlin' });
  assert.deepEqual(parseWindow('Fri-Mon 22:00-04:00', undefined).days, ['Fri', 'Sat', 'Sun', 'Mon']);
  assert.deepEqual(parseWindow('sat,Sun 22:00-04:00', undefined).days, ['Sat', 'Sun']);
  assert.deepEqual(parseWindow('02:00-05:00', undefined), { start: '02:00', end: '05:00' });
  for (const bad of ['Mon-Fri', 'Mon-Fry 02:00-05:00', '24:00-05:00', '02:00-02:00']) assert.throws(() => parseWindow(bad, undefined), /invalid --window/);
});

test('nkctl reboot create: flags to a reboot Rollout the coordinator accepts', () => {
  const o = rebootFromFlags('kernel', {
    selector: 'pool=web', window: 'Mon-Fri 02:00-05:00', timeZone: 'Europe/Berlin', blockingPods: 'app=db', prometheus: 'http://prom:9090', alertFilter: '^Watchdog$',
    drainTimeout: '5m', force: true, deleteEmptydirData: true, onlyRequired: true, rebootTimeout: '10m',
  });
  assert.deepEqual(o.spec.reboot, { onlyRequired: true, blockingPods: 'app=db', prometheus: { url: 'http://prom:9090', alertFilter: '^Watchdog$' }, drain: { force: true, deleteEmptyDirData: true, timeoutSeconds: 300 }, timeoutSeconds: 600 });
  assert.equal(o.spec.packages, undefined);
  assert.deepEqual(o.spec.strategy?.canary, { count: 0 });
  assert.equal(o.spec.strategy?.maxUnavailable, 1);
  const v = validateRollout(o);
  assert.ok(v.ok, JSON.stringify(!v.ok && v.errors));
  assert.equal(v.ok && v.spec.strategy.window?.timeZone, 'Europe/Berlin');
});

test('nkctl reboot create refuses what cannot work, before asking the coordinator', () => {
  assert.throws(() => rebootFromFlags('r', { onFailure: 'rollback' }), /cannot be rolled back/);
  assert.throws(() => rebootFromFlags('r', { alertFilter: 'x' }), /--alert-filter needs --prometheus/);
  assert.throws(() => rebootFromFlags('r', { prometheus: 'prom:9090' }), /an http\(s\) URL/);
  assert.throws(() => rebootFromFlags('r', { timeZone: 'UTC' }), /--time-zone needs a --window/);
});

test('nkctl rollout create takes --window and --time-zone too', () => {
  const o = rolloutFromFlags('k', { package: ['kubelet=1.31.2'], window: 'Sat,Sun 22:00-04:00', timeZone: 'America/New_York' });
  assert.deepEqual(o.spec.strategy?.window, { days: ['Sat', 'Sun'], start: '22:00', end: '04:00', timeZone: 'America/New_York' });
});
