import { test } from 'node:test';
import assert from 'node:assert/strict';
import { reportDelta } from './report-diff.ts';
import { sampleReport } from '@nodekeeper/protocol/testing';

test('no delta when only observedAt and host gauges moved', () => {
  const next = structuredClone(sampleReport);
  next.kubelet.observedAt = '2026-11-24T03:00:00.000Z';
  next.host.uptimeSeconds += 10;
  next.host.memoryAvailableBytes += 4096;
  assert.equal(reportDelta(sampleReport, next), null);
});

test('a health change yields exactly the changed section', () => {
  const next = structuredClone(sampleReport);
  next.cni = { ...next.cni, health: 'unhealthy', reason: 'NoNetworkConfig' };
  assert.deepEqual(Object.keys(reportDelta(sampleReport, next) ?? {}), ['cni']);
});

test('the first report is all sections', () => {
  assert.deepEqual(Object.keys(reportDelta(null, sampleReport) ?? {}).sort(), ['cni', 'host', 'identity', 'kubelet', 'runtime']);
});

test('pressure flags and whole-percent disk changes are news', () => {
  const next = structuredClone(sampleReport);
  next.host.pressure = { ...next.host.pressure, disk: true };
  assert.deepEqual(Object.keys(reportDelta(sampleReport, next) ?? {}), ['host']);
});
