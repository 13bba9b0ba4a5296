import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Machine } from '@nodekeeper/api';
import { machineSummary, MIRROR_LABEL, mirrorReason, selectMirrored } from './mirror-selection.ts';

const HEALTHY = [
  ['Ready', 'True'], ['KubeletHealthy', 'True'], ['RuntimeReady', 'True'], ['NetworkReady', 'True'],
  ['DiskPressure', 'False'], ['MemoryPressure', 'False'], ['PIDPressure', 'False'],
] as const;

function machine(name: string, o: { phase?: string; conditions?: Record<string, string>; labels?: Record<string, string>; remediation?: string; node?: string; revoked?: boolean } = {}): Machine {
  return {
    metadata: { name, labels: o.labels ?? {} },
    status: {
      phase: o.phase ?? 'Ready',
      conditions: HEALTHY.map(([type, status]) => ({ type, status: o.conditions?.[type] ?? status, reason: 'r', message: 'm', lastTransitionTime: 't' })),
      ...(o.remediation === undefined ? {} : { remediation: { phase: o.remediation, reason: 'r', rule: null, step: null, cordoned: false } }),
      ...(o.node === undefined ? {} : { node: { name, ready: o.node, unschedulable: false, providerID: null } }),
      ...(o.revoked ? { revoked: true } : {}),
    },
  } as unknown as Machine;
}

test('a healthy machine needs no mirror; each kind of trouble, or the label, does', () => {
  assert.equal(mirrorReason(machine('a', { remediation: 'Idle', node: 'True' })), null);
  assert.equal(mirrorReason(machine('a', { phase: 'NotReady' })), 'PhaseNotReady');
  assert.equal(mirrorReason(machine('a', { phase: 'Unknown' })), 'PhaseUnknown');
  assert.equal(mirrorReason(machine('a', { conditions: { MemoryPressure: 'True' } })), 'MemoryPressureTrue');
  assert.equal(mirrorReason(machine('a', { conditions: { NetworkReady: 'Unknown' } })), 'NetworkReadyUnknown');
  assert.equal(mirrorReason(machine('a', { remediation: 'NeedsHuman' })), 'RemediationNeedsHuman');
  assert.equal(mirrorReason(machine('a', { node: 'False' })), 'NodeReadyFalse');
  assert.equal(mirrorReason(machine('a', { revoked: true })), 'Revoked');
  assert.equal(mirrorReason(machine('a', { labels: { [MIRROR_LABEL]: 'true' } })), 'Requested');
  assert.equal(mirrorReason(machine('a', { labels: { [MIRROR_LABEL]: 'false' } })), null);
});

test('a machine that recovers lingers on the host, then goes; mode all takes everything', () => {
  const sick = machine('a', { phase: 'NotReady', conditions: { Ready: 'False', KubeletHealthy: 'False' } });
  const well = machine('a');
  let s = selectMirrored([sick, machine('b')], 'unhealthy', new Map(), 0, 1000);
  assert.deepEqual(s.selected.map((m) => m.metadata.name), ['a']);
  s = selectMirrored([well, machine('b')], 'unhealthy', s.lastNeeded, 999, 1000);
  assert.deepEqual(s.selected.map((m) => m.metadata.name), ['a'], 'still within the linger');
  s = selectMirrored([well, machine('b')], 'unhealthy', s.lastNeeded, 1000, 1000);
  assert.deepEqual(s.selected, []);
  assert.equal(s.lastNeeded.size, 0, 'nothing is remembered past its linger');
  assert.equal(selectMirrored([well, sick], 'all', new Map(), 0).selected.length, 2);
});

test('property: every machine that needs an eye is selected, no healthy one past its linger is, and the state holds only selected machines', () => {
  const arbMachine = fc.record({
    phase: fc.constantFrom('Ready', 'Ready', 'Ready', 'NotReady', 'Unknown', 'Pending'),
    bad: fc.option(fc.constantFrom(...HEALTHY.map(([t]) => t)), { nil: undefined }),
    label: fc.boolean(),
  });
  fc.assert(fc.property(fc.array(fc.array(arbMachine, { minLength: 1, maxLength: 20 }), { minLength: 1, maxLength: 6 }), fc.integer({ min: 1, max: 5 }), (rounds, linger) => {
    let state = new Map<string, number>();
    const needed = new Map<string, number>();
    for (const [t, round] of rounds.entries()) {
      const ms = round.map((r, i) => machine(`m${i}`, {
        phase: r.phase, labels: r.label ? { [MIRROR_LABEL]: 'true' } : {},
        ...(r.bad === undefined ? {} : { conditions: { [r.bad]: r.bad.endsWith('Pressure') ? 'True' : 'Unknown' } }),
      }));
      const s = selectMirrored(ms, 'unhealthy', state, t, linger);
      const names = new Set(s.selected.map((m) => m.metadata.name));
      for (const m of ms) {
        const name = m.metadata.name;
        if (mirrorReason(m) !== null) needed.set(name, t);
        const last = needed.get(name);
        assert.equal(names.has(name), last !== undefined && t - last < linger, `${name} at ${t}`);
      }
      for (const k of s.lastNeeded.keys()) assert.ok(names.has(k));
      state = s.lastNeeded;
      // Machines that left the member are forgotten.
      for (const k of [...needed.keys()]) if (!ms.some((m) => m.metadata.name === k)) needed.delete(k);
    }
  }));
});

test('the summary counts phases and the conditions in their problem polarity', () => {
  const s = machineSummary([machine('a'), machine('b', { phase: 'NotReady', conditions: { Ready: 'False', KubeletHealthy: 'False' } }), machine('c', { conditions: { DiskPressure: 'True' } })]);
  // Every phase, 0 included: the Cluster status is merge-patched, so a missing key would keep its old count.
  assert.deepEqual(s.phases, { Pending: 0, Ready: 2, NotReady: 1, Unknown: 0 });
  assert.deepEqual(s.problems, [
    { type: 'DiskPressure', status: 'True', machines: 1 },
    { type: 'KubeletHealthy', status: 'False', machines: 1 },
    { type: 'Ready', status: 'False', machines: 1 },
  ]);
});
