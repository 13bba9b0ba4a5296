import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { describeWindow, localTime, windowOpen } from './window.ts';
import { canonicalTimeZone } from './time-zone.ts';
import { parseRollout, validateRolloutSpec } from './spec.ts';
import type { MaintenanceWindow } from './window.ts';

const at = (iso: string) => Date.parse(iso);
type Day = NonNullable<MaintenanceWindow['days']>[number];
const win = (start: string, end: string, timeZone = 'UTC', days?: Day[]): MaintenanceWindow => ({ ...(days === undefined ? {} : { days }), start, end, timeZone });

test('no window is always open', () => {
  assert.ok(windowOpen(undefined, 0));
});

test('a daytime window is open from start (inclusive) to end (exclusive) on its days', () => {
  const w = win('09:00', '17:00', 'UTC', ['Mon', 'Tue']);
  assert.ok(windowOpen(w, at('2025-06-02T09:00:00Z')), 'Monday 09:00');
  assert.ok(!windowOpen(w, at('2025-06-02T17:00:00Z')), 'Monday 17:00');
  assert.ok(!windowOpen(w, at('2025-06-02T08:59:59Z')));
  assert.ok(!windowOpen(w, at('2025-06-04T10:00:00Z')), 'Wednesday');
});

test('a window past midnight belongs to the day it starts on', () => {
  const w = win('22:00', '04:00', 'UTC', ['Sat']);
  assert.ok(windowOpen(w, at('2025-06-07T23:00:00Z')), 'Saturday 23:00');
  assert.ok(windowOpen(w, at('2025-06-08T03:59:00Z')), 'Sunday 03:59 is still Saturday night');
  assert.ok(!windowOpen(w, at('2025-06-08T23:00:00Z')), 'Sunday 23:00');
  assert.ok(!windowOpen(w, at('2025-06-07T03:00:00Z')), 'Saturday 03:00 belongs to Friday night');
});

test('a window in Europe/Berlin follows Berlin wall-clock time, summer and winter', () => {
  const w = win('02:00', '05:00', 'Europe/Berlin', ['Mon', 'Tue', 'Wed', 'Thu', 'Fri']);
  // Summer (CEST, UTC+2): 02:00 Berlin = 00:00 UTC.
  assert.ok(windowOpen(w, at('2025-06-02T00:00:00Z')), 'Mon 02:00 CEST');
  assert.ok(!windowOpen(w, at('2025-06-01T23:59:00Z')), 'Mon 01:59 CEST');
  assert.ok(!windowOpen(w, at('2025-06-02T03:00:00Z')), 'Mon 05:00 CEST');
  // Winter (CET, UTC+1): 02:00 Berlin = 01:00 UTC.
  assert.ok(!windowOpen(w, at('2025-01-06T00:30:00Z')), 'Mon 01:30 CET');
  assert.ok(windowOpen(w, at('2025-01-06T01:00:00Z')), 'Mon 02:00 CET');
  assert.ok(windowOpen(w, at('2025-01-06T03:59:00Z')), 'Mon 04:59 CET');
  // Saturday 02:30 Berlin is Saturday in Berlin whatever UTC says.
  assert.ok(!windowOpen(w, at('2025-06-07T00:30:00Z')), 'Sat 02:30 CEST');
  assert.match(describeWindow(w), /Europe\/Berlin$/);
});

/** Minutes the window is open between two instants, sampled each minute. */
function openMinutes(w: MaintenanceWindow, from: number, to: number): number {
  let n = 0;
  for (let t = from; t < to; t += 60_000) if (windowOpen(w, t)) n++;
  return n;
}

test('DST: 02:00-05:00 Berlin is open 2 h on the spring-forward night, 4 h on the fall-back night, 3 h otherwise', () => {
  const w = win('02:00', '05:00', 'Europe/Berlin');
  // Whole UTC days around the local night (Berlin is UTC+1/+2: the window lies inside).
  assert.equal(openMinutes(w, at('2025-03-30T00:00:00Z'), at('2025-03-30T12:00:00Z')), 120, 'spring forward: 02:xx does not exist');
  assert.equal(openMinutes(w, at('2025-10-26T00:00:00Z'), at('2025-10-26T12:00:00Z')), 240, 'fall back: 02:xx happens twice');
  assert.equal(openMinutes(w, at('2025-07-14T00:00:00Z'), at('2025-07-14T12:00:00Z')), 180);
  // The spring-forward night opens at 03:00 local = 01:00 UTC.
  assert.ok(!windowOpen(w, at('2025-03-30T00:59:00Z')));
  assert.ok(windowOpen(w, at('2025-03-30T01:00:00Z')));
});

test('time zone names: canonical spelling, unknown ones refused', () => {
  assert.equal(canonicalTimeZone('UTC'), 'UTC');
  assert.equal(canonicalTimeZone('europe/berlin'), 'Europe/Berlin');
  assert.equal(canonicalTimeZone('America/New_York'), 'America/New_York');
  assert.equal(canonicalTimeZone('Mars/Olympus_Mons'), null);
  assert.equal(canonicalTimeZone(''), null);
});

test('the rollout spec refuses an unknown time zone with NK_WINDOW_UNKNOWN_TIME_ZONE and keeps a known one', () => {
  const spec = (timeZone: string) => ({ packages: [{ package: 'kubelet', version: '1.31.2' }], strategy: { window: { start: '02:00', end: '05:00', timeZone } } });
  const bad = validateRolloutSpec(spec('Mars/Olympus_Mons'));
  assert.equal(bad.ok, false);
  assert.deepEqual(!bad.ok && bad.errors.map((e) => [e.path, e.code]), [['/spec/strategy/window/timeZone', 'NK_WINDOW_UNKNOWN_TIME_ZONE']]);
  assert.throws(() => parseRollout({ apiVersion: 'nodekeeper.io/v1alpha1', kind: 'Rollout', metadata: { name: 'r' }, spec: spec('Mars/Olympus_Mons') }), (e: { code?: string; message?: string }) => {
    assert.equal(e.code, 'NK_WINDOW_UNKNOWN_TIME_ZONE');
    assert.match(e.message ?? '', /unknown time zone "Mars\/Olympus_Mons".*Europe\/Berlin/);
    return true;
  });
  const ok = validateRolloutSpec(spec('europe/berlin'));
  assert.equal(ok.ok && ok.spec.strategy.window?.timeZone, 'Europe/Berlin');
  const utc = validateRolloutSpec({ packages: [{ package: 'kubelet', version: '1.31.2' }], strategy: { window: { start: '02:00', end: '05:00' } } });
  assert.equal(utc.ok && utc.spec.strategy.window?.timeZone, 'UTC', 'UTC by default');
});

const zones = Intl.supportedValuesOf('timeZone');
const hhmm = fc.tuple(fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 })).map(([h, m]) => `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}`);
const instant = fc.integer({ min: Date.parse('2000-01-01T00:00:00Z'), max: Date.parse('2040-01-01T00:00:00Z') });

test('property: a window [a, b) and its complement [b, a) partition time, in any zone', () => {
  fc.assert(fc.property(fc.constantFrom(...zones), hhmm, hhmm, instant, (zone, a, b, t) => {
    fc.pre(a !== b);
    return windowOpen(win(a, b, zone), t) !== windowOpen(win(b, a, zone), t);
  }), { numRuns: 500 });
});

test('property: a fixed-offset zone is UTC shifted by its offset', () => {
  // Etc/GMT-H is UTC+H (POSIX sign), no DST: the local clock is UTC's plus H hours.
  fc.assert(fc.property(fc.integer({ min: -12, max: 14 }), hhmm, hhmm, instant, (h, a, b, t) => {
    fc.pre(a !== b);
    const zone = h === 0 ? 'Etc/GMT' : `Etc/GMT${h > 0 ? '-' : '+'}${Math.abs(h)}`;
    return windowOpen(win(a, b, zone), t) === windowOpen(win(a, b, 'UTC'), t + h * 3_600_000);
  }), { numRuns: 500 });
});

test('property: the local minute advances by one each minute except across a DST or offset change', () => {
  fc.assert(fc.property(fc.constantFrom(...zones), instant, (zone, t0) => {
    const t = t0 - (t0 % 60_000);
    const a = localTime(t, zone);
    const b = localTime(t + 60_000, zone);
    const step = ((b.day * 1440 + b.minute) - (a.day * 1440 + a.minute) + 7 * 1440) % (7 * 1440);
    // 1 minute, or 1 plus or minus a whole offset change (at most a day, e.g. Samoa 2011).
    return step === 1 || Math.abs(step - 1) % 15 === 0 || step > 6 * 1440;
  }), { numRuns: 1000 });
});
