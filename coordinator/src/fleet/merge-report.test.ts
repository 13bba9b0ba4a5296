import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { NodeReport } from '@nodekeeper/protocol';
import { mergeReport, sameIgnoringObservedAt } from './merge-report.ts';
import { sampleReport } from '../store/test-support.ts';

const later = '2026-11-24T03:00:00.000Z';
const reobserved = (r: NodeReport): NodeReport => ({
  ...r,
  kubelet: { ...r.kubelet, observedAt: later },
  runtime: { ...r.runtime, observedAt: later },
  cni: { ...r.cni, observedAt: later },
  host: { ...r.host, observedAt: later },
});

test('a full report replaces the picture; the first one is a change', () => {
  const r = sampleReport();
  assert.deepEqual(mergeReport(null, { full: true, report: r }), { report: r, changed: true, needsResync: false });
  const other = { ...r, cni: { ...r.cni, health: 'unhealthy' as const, reason: 'NoNetworkConfig' } };
  assert.deepEqual(mergeReport(r, { full: true, report: other }), { report: other, changed: true, needsResync: false });
});

test('a report whose only news is observedAt is not a change', () => {
  const r = sampleReport();
  const again = reobserved(r);
  const full = mergeReport(r, { full: true, report: again });
  assert.equal(full.changed, false);
  assert.equal(full.report, again, 'the fresher copy is kept');
  assert.equal(mergeReport(r, { full: false, report: { kubelet: again.kubelet } }).changed, false);
});

test('a delta replaces only the sections it carries', () => {
  const r = sampleReport();
  const cni = { ...r.cni, health: 'unhealthy' as const, reason: 'NoNetworkConfig', configFile: null };
  const out = mergeReport(r, { full: false, report: { cni } });
  assert.equal(out.changed, true);
  assert.equal(out.needsResync, false);
  assert.deepEqual(out.report, { ...r, cni });
  assert.equal(out.report?.kubelet, r.kubelet);
});

test('an empty delta changes nothing; a delta without a base needs a resync', () => {
  const r = sampleReport();
  assert.deepEqual(mergeReport(r, { full: false, report: {} }), { report: r, changed: false, needsResync: false });
  assert.deepEqual(mergeReport(null, { full: false, report: { cni: r.cni } }), { report: null, changed: false, needsResync: true });
});

test('unknown keys in a delta do not ride along into the picture', () => {
  const r = sampleReport();
  const out = mergeReport(r, { full: false, report: { gpu: { x: 1 } } as never });
  assert.deepEqual(Object.keys(out.report ?? {}).sort(), ['cni', 'host', 'identity', 'kubelet', 'runtime']);
  assert.equal(out.changed, false);
});

test('property: changed is true exactly when something besides observedAt differs', () => {
  const json = fc.letrec((tie) => ({
    value: fc.oneof({ depthSize: 'small' }, fc.constantFrom(null, true, 1, 'a', 'b'), fc.array(tie('value'), { maxLength: 3 }), fc.dictionary(fc.constantFrom('a', 'b', 'observedAt'), tie('value'), { maxKeys: 3 })),
  })).value;
  fc.assert(
    fc.property(json, json, (a, b) => {
      const strip = (v: unknown): unknown =>
        Array.isArray(v) ? v.map(strip) : v !== null && typeof v === 'object' ? Object.fromEntries(Object.entries(v).filter(([k]) => k !== 'observedAt').map(([k, x]) => [k, strip(x)])) : v;
      let expected = true;
      try {
        assert.deepStrictEqual(strip(a), strip(b));
      } catch {
        expected = false;
      }
      assert.equal(sameIgnoringObservedAt(a, b), expected);
    }),
  );
});
