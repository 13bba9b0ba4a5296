/**
 * Packing is a change of storage, not of content: whatever sequence of full reports and
 * deltas arrives, every reader of the fleet view sees exactly the report the old fleet
 * view kept (mergeReport folded over the messages as they came, unpacked), before and
 * after a restart from the store; and what machines say alike is held once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createLogger } from '@nodekeeper/common';
import { REPORT_SECTIONS, type NodeReport, type NodeReportDelta } from '@nodekeeper/protocol';
import { toMachineObject } from '../api/objects.ts';
import { openStore } from '../store/db.ts';
import { identity, sampleReport } from '../store/test-support.ts';
import { WriteBatcher } from '../store/write-batcher.ts';
import { FleetView, type AgentLink } from './fleet-view.ts';
import { Interner } from './interner.ts';
import { mergeReport } from './merge-report.ts';
import { packReport } from './pack-report.ts';

const log = createLogger({ name: 'test', level: 'silent' });
const link: AgentLink = { resync: () => {}, close: () => {}, sendCommand: () => true };
/** Parsed from its own JSON text, as a frame is: no string or object shared with another. */
const fresh = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

test('interner: equal strings and values come back as one copy; values frozen, never the caller\'s object', () => {
  const i = new Interner();
  const a = i.string(['v1', '.35'].join(''));
  assert.equal(i.string(fresh('v1.35')), a);
  const v = { raw: 'Kubernetes v1.35.2', semver: '1.35.2', tags: ['a'] };
  const shared = i.value(v);
  assert.notEqual(shared, v, 'a copy, not the caller\'s object');
  assert.deepStrictEqual(shared, v);
  assert.equal(i.value(fresh(v)), shared);
  assert.ok(Object.isFrozen(shared) && Object.isFrozen(shared.tags));
  assert.equal(Object.isFrozen(v), false, 'the caller\'s object is left as it was');
  assert.equal(i.value(null), null);
  assert.notEqual(i.value({ raw: 'other' }), shared);
});

test('interner: a full string table starts over instead of growing; long strings are never kept', () => {
  const i = new Interner({ maxStrings: 3 });
  for (const s of ['a', 'b', 'c', 'd', 'e']) i.string(fresh(s));
  assert.ok(i.size.strings <= 3 && i.size.strings >= 1);
  // Ever-new text (an agent's error message) is bounded in characters too.
  const byChars = new Interner({ maxChars: 100 });
  for (let n = 0; n < 50; n++) byChars.string(`message ${n} `.repeat(3));
  assert.ok(byChars.size.chars <= 100, `${byChars.size.chars} characters kept`);
  const long = 'x'.repeat(257);
  assert.equal(byChars.string(long), long);
  assert.equal(new Interner().string(long).length, 257);
  const kept = new Interner();
  kept.string(long);
  assert.equal(kept.size.strings, 0);
  assert.throws(() => new Interner({ maxStrings: 0 }), RangeError);
  assert.throws(() => new Interner({ maxChars: 0 }), RangeError);
});

test('a packed report equals the report, serialises the same, and shares what machines say alike', () => {
  const i = new Interner();
  const a = fresh(sampleReport('node-a'));
  const b = fresh(sampleReport('node-b'));
  const pa = packReport(a, i);
  const pb = packReport(b, i);
  assert.deepStrictEqual(pa, a);
  assert.equal(JSON.stringify(pa), JSON.stringify(a));
  assert.equal(pa.kubelet.version, pb.kubelet.version);
  assert.equal(pa.runtime.conditions, pb.runtime.conditions);
  assert.equal(pa.identity.labels, pb.identity.labels);
  assert.equal(pa.cni.reason, pb.cni.reason);
  assert.notEqual(pa.identity, pb.identity);
  assert.deepStrictEqual(a, fresh(sampleReport('node-a')), 'the input is left as it was');
});

// ---- the property: any messages, the same report as the old fleet view's ----

const pick = <T>(xs: readonly T[]) => fc.constantFrom(...xs);
const probe = {
  health: pick(['healthy', 'unhealthy', 'unknown'] as const),
  reason: pick(['HealthzOk', 'HealthzRefused', 'ConfigValid', '']),
  message: pick(['', 'ok', 'connection refused', 'config 10-bridge.conflist is valid']),
  version: fc.option(fc.record({ raw: pick(['Kubernetes v1.31.2', '1.6.20~ds1', 'v1.35.0']), semver: fc.option(pick(['1.31.2', '1.35.0'])), source: pick(['binary', 'cri']) })),
  observedAt: pick(['2026-11-24T02:00:00.000Z', '2026-11-24T02:00:10.000Z', '2026-11-24T02:00:20.000Z']),
};
const service = fc.option(fc.record({ unit: pick(['kubelet.service', 'containerd.service']), manager: pick(['systemd', 'none'] as const), activeState: fc.option(pick(['active', 'failed'])), subState: fc.option(pick(['running', 'dead'])), restarts: fc.option(fc.integer({ min: 0, max: 3 })) }));
const report = (name: string): fc.Arbitrary<NodeReport> => {
  const base = sampleReport(name);
  return fc.record({
    identity: fc.record({ labels: fc.option(fc.dictionary(pick(['pool', 'zone']), pick(['a', 'b'])), { nil: undefined }), addresses: fc.array(pick(['10.0.0.1', '10.0.0.2']), { maxLength: 2 }) }).map((x) => ({ ...identity(name), addresses: x.addresses, ...(x.labels === undefined ? {} : { labels: x.labels }) })),
    kubelet: fc.record({ ...probe, service }),
    runtime: fc.record({ ...probe, service, ready: fc.boolean(), net: fc.boolean() }).map(({ ready, net, ...p }) => ({
      ...base.runtime, ...p, conditions: [{ type: 'RuntimeReady', status: ready, reason: ready ? '' : 'NotReady', message: '' }, { type: 'NetworkReady', status: net, reason: '', message: net ? '' : 'cni config uninitialized' }],
    })),
    cni: fc.record({ ...probe, plugins: fc.array(pick(['bridge', 'portmap']), { maxLength: 2 }) }).map(({ plugins, ...p }) => ({
      ...base.cni, ...p, plugins: plugins.map((type) => ({ type, binary: `/opt/cni/bin/${type}`, supportedVersions: ['1.0.0'], version: null })),
    })),
    host: fc.record({ ...probe, used: fc.integer({ min: 0, max: 100 }), disk: fc.boolean(), bootId: fc.option(pick(['0123abcd-0000', '0123abcd-1111']), { nil: undefined }), reboot: fc.option(fc.boolean(), { nil: undefined }), ro: fc.option(fc.array(pick(['/', '/var/lib/kubelet']), { maxLength: 2 }), { nil: undefined }) }).map(({ used, disk, bootId, reboot, ro, ...p }) => ({
      ...base.host, ...p,
      disks: [{ path: '/', totalBytes: 100, usedBytes: used, usedPercent: used }],
      pressure: { disk, memory: false, pid: false },
      ...(bootId === undefined ? {} : { bootId }),
      ...(reboot === undefined ? {} : { reboot: { required: reboot, reasons: reboot ? ['sentinel'] : [] } }),
      ...(ro === undefined ? {} : { readOnlyMounts: ro }),
    })),
  }) as fc.Arbitrary<NodeReport>;
};
const NAMES = ['m0', 'm1'];
type Message = { machine: number; full: boolean; report: NodeReport | NodeReportDelta };
const message: fc.Arbitrary<Message> = fc.integer({ min: 0, max: NAMES.length - 1 }).chain((machine) =>
  fc.record({ full: fc.boolean(), r: report(NAMES[machine] as string), sections: fc.subarray([...REPORT_SECTIONS]) }).map(({ full, r, sections }) => ({
    machine,
    full,
    report: full ? r : (Object.fromEntries(sections.map((s) => [s, r[s]])) as NodeReportDelta),
  })),
);

test('property: after any full reports and deltas, every reader sees the report the old fleet view kept, before and after a restart', () => {
  fc.assert(
    fc.property(fc.array(message, { maxLength: 12 }), (messages) => {
      const clock = () => 1_000_000;
      const store = openStore(':memory:', { now: clock, log });
      const { token } = store.createToken({ ttlMs: 3_600_000, maxUses: NAMES.length, description: '' });
      for (const name of NAMES) store.enroll({ token, identity: identity(name), agentVersion: '0.1.0' });
      const batcher = new WriteBatcher(store, { intervalMs: 3_600_000, log, autoStart: false });
      const fleet = new FleetView({ store, batcher, clock, log }, { livenessGraceMs: 40_000, livenessRecoverMs: 15_000 });
      for (const name of NAMES) fleet.attach(name, link, '0.1.0');
      // The old fleet view: mergeReport over the messages as they came, kept when changed.
      const old = new Map<string, NodeReport | null>(NAMES.map((n) => [n, null]));
      for (const msg of messages) {
        const name = NAMES[msg.machine] as string;
        const sent = fresh(msg.report);
        const merged = mergeReport(old.get(name) ?? null, { full: msg.full, report: fresh(msg.report) });
        if (!merged.needsResync && merged.changed) old.set(name, merged.report);
        assert.equal(fleet.report(name, msg.full, sent), !merged.needsResync);
        assert.deepStrictEqual(sent, fresh(msg.report), 'the message is not changed by packing');
        fleet.tick();
      }
      const check = (view: FleetView) => {
        for (const name of NAMES) {
          const m = view.get(name);
          assert.ok(m !== undefined);
          assert.deepStrictEqual(m.report, old.get(name));
          // The API's object is built from what the fleet view shows.
          const expected = toMachineObject({ ...m, report: old.get(name) ?? null }, 0);
          assert.deepStrictEqual(toMachineObject(m, 0), expected);
        }
      };
      check(fleet);
      batcher.flush();
      check(new FleetView({ store, batcher, clock, log }, { livenessGraceMs: 40_000, livenessRecoverMs: 15_000 }));
      store.close();
    }),
    { numRuns: 60 },
  );
});

test('machines that say the same share one copy in the fleet view; their own parts stay their own', () => {
  const clock = () => 1_000_000;
  const store = openStore(':memory:', { now: clock, log });
  const { token } = store.createToken({ ttlMs: 3_600_000, maxUses: 2, description: '' });
  for (const name of NAMES) store.enroll({ token, identity: identity(name), agentVersion: '0.1.0' });
  const batcher = new WriteBatcher(store, { intervalMs: 3_600_000, log, autoStart: false });
  const fleet = new FleetView({ store, batcher, clock, log }, { livenessGraceMs: 40_000, livenessRecoverMs: 15_000 });
  for (const name of NAMES) {
    fleet.attach(name, link, fresh('0.1.0'));
    fleet.report(name, true, fresh(sampleReport(name)));
  }
  fleet.tick();
  const [a, b] = NAMES.map((n) => fleet.get(n)!);
  assert.equal(a!.report!.kubelet.version, b!.report!.kubelet.version);
  assert.equal(a!.report!.identity.labels, b!.report!.identity.labels);
  assert.equal(a!.labels, b!.labels);
  assert.notEqual(a!.report!.identity, b!.report!.identity);
  // A delta's sections are packed too.
  const cni = { ...sampleReport('m0').cni, health: 'unhealthy' as const, reason: 'NoNetworkConfig' };
  fleet.report('m0', false, fresh({ cni }));
  fleet.report('m1', false, fresh({ cni }));
  assert.equal(fleet.get('m0')!.report!.cni.version, fleet.get('m1')!.report!.cni.version);
  assert.equal(fleet.get('m0')!.report!.cni.reason, 'NoNetworkConfig');
  // Readers get the fleet view's report: shared parts are frozen, so none can change another's.
  assert.throws(() => {
    (fleet.get('m0')!.report!.kubelet.version as { raw: string }).raw = 'changed';
  }, TypeError);
  store.close();
});
