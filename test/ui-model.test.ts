/**
 * The fleet page's pure decisions (coordinator/ui/src/model.ts): colours, filters,
 * aggregation, the virtual list's window, the package distribution, watch lines.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { labelsMatch, parseLabelSelector } from '@nodekeeper/api/selector';
import { aggregate, classify, labelFilter, matches, NO_FILTER, packageDistribution, parseWatchLine, sameVersion, totals, windowRange, type MachineView } from '../coordinator/ui/src/model.ts';
import { REPO } from './harness/processes.ts';

type Status = MachineView['status'];
/** A machine as the page reads it: the contract's fields the view picks, the rest left out. */
const machine = (name: string, over: { phase?: Status['phase']; zone?: string | null; labels?: Record<string, string>; kubelet?: string; health?: NonNullable<Status['kubelet']>['health']; packages?: Status['packages'] } = {}): MachineView => ({
  metadata: { name, labels: over.labels ?? {} },
  spec: { zone: over.zone === undefined ? 'z1' : over.zone },
  status: {
    phase: over.phase ?? 'Ready',
    phaseReason: 'AgentConnected',
    phaseMessage: '',
    agentVersion: '0.2.0',
    kubelet: { health: over.health ?? 'healthy', reason: over.health === 'unhealthy' ? 'HealthzFailed' : 'HealthzOk', semver: over.kubelet ?? '1.31.2', version: `Kubernetes v${over.kubelet ?? '1.31.2'}` },
    ...(over.packages === undefined ? {} : { packages: over.packages }),
  },
});

test('the page reads Machines through the contract: what the contract does not allow does not type-check', () => {
  const m = machine('a');
  // Each line below is a type error that root tsc must report (an unused @ts-expect-error fails it).
  // @ts-expect-error 'Broken' is not one of the contract's LivenessPhases
  const phase: Status['phase'] = 'Broken';
  // @ts-expect-error the contract's package states are Converged, Updating, Degraded, Pending
  const state: NonNullable<Status['packages']>[number]['state'] = 'Installing';
  // @ts-expect-error spec.zone is the contract's string | null, not a number
  const zone: MachineView['spec']['zone'] = 3;
  assert.deepEqual([phase, state, zone, m.status.phase], ['Broken', 'Installing', 3, 'Ready']);
});

test('a tile says the worst of phase, faults and updates', () => {
  assert.equal(classify(machine('a')), 'ready');
  assert.equal(classify(machine('a', { phase: 'NotReady', health: 'unhealthy' })), 'notready');
  assert.equal(classify(machine('a', { phase: 'Unknown' })), 'unknown');
  assert.equal(classify(machine('a', { health: 'unhealthy' })), 'fault');
  assert.equal(classify(machine('a', { packages: [{ name: 'kubelet', current: '1.31.2', desired: '1.31.3', state: 'Updating' }] })), 'updating');
  assert.equal(classify({ ...machine('a'), status: { ...machine('a').status, revoked: true } }), 'revoked');
});

test('filters by label terms, zone, kubelet version and name', () => {
  const m = machine('web-1', { zone: 'eu-1', labels: { pool: 'web', tier: 'a' }, kubelet: '1.31.3' });
  assert.ok(matches(m, NO_FILTER));
  assert.ok(matches(m, { ...NO_FILTER, label: 'pool=web, tier' }));
  assert.ok(!matches(m, { ...NO_FILTER, label: 'pool=db' }));
  assert.ok(!matches(m, { ...NO_FILTER, label: 'gpu' }));
  assert.ok(matches(m, { ...NO_FILTER, zone: 'eu-1', version: '1.31.3', text: 'web' }));
  assert.ok(!matches(m, { ...NO_FILTER, zone: 'eu-2' }));
  assert.ok(!matches(m, { ...NO_FILTER, version: '1.31.2' }));
  assert.ok(matches(machine('x', { zone: null }), { ...NO_FILTER, zone: '(no zone)' }));
});

test("the label filter is nkctl's -l: !key and key!=value work, and an invalid one is marked and ignored", () => {
  const web = machine('web-1', { labels: { pool: 'web' } });
  const gpu = machine('gpu-1', { labels: { pool: 'db', gpu: 'a100' } });
  const keep = (label: string) => [web, gpu].filter((m) => matches(m, { ...NO_FILTER, label })).map((m) => m.metadata.name);
  assert.deepEqual(keep('!gpu'), ['web-1']);
  assert.deepEqual(keep('pool!=db'), ['web-1']);
  assert.deepEqual(keep('pool==db, gpu'), ['gpu-1']);
  assert.deepEqual(keep('missing!=x'), ['web-1', 'gpu-1']);
  for (const bad of ['pool=db,', '!pool=db', 'pool=a b', '=web']) {
    const f = labelFilter(bad);
    assert.equal(f.valid, false, bad);
    assert.ok(!f.valid && f.error.length > 0);
    assert.deepEqual(keep(bad), ['web-1', 'gpu-1'], `${bad} is ignored, not "no match"`);
  }
  assert.deepEqual(labelFilter('!pool=db'), { valid: false, requirements: [], error: '"!pool=db" cannot combine ! with an operator' });
  assert.deepEqual(labelFilter(' '), { valid: true, requirements: [] });
});

test('the page keeps a machine by its labels exactly when nkctl -l and the API would (or ignores an invalid filter)', () => {
  const key = fc.constantFrom('pool', 'gpu', 'tier', 'a.b/c');
  const selector = fc.array(fc.oneof(key, fc.constantFrom('=', '==', '!=', '!', ',', ' ', 'web', 'db', '')), { maxLength: 8 }).map((parts) => parts.join(''));
  fc.assert(fc.property(fc.dictionary(key, fc.constantFrom('web', 'db', '')), selector, (labels, sel) => {
    let want: boolean;
    try {
      want = labelsMatch(parseLabelSelector(sel), labels);
    } catch {
      want = true;
      assert.equal(labelFilter(sel).valid, false, sel);
    }
    assert.equal(matches(machine('m', { labels }), { ...NO_FILTER, label: sel }), want, sel);
  }));
});

test("the page's own sources name no Node global (its type check declares Buffer for the contract's protocol only)", () => {
  const dir = path.join(REPO, 'coordinator/ui/src');
  for (const f of readdirSync(dir).filter((f) => /\.tsx?$/.test(f))) {
    assert.doesNotMatch(readFileSync(path.join(dir, f), 'utf8'), /\b(Buffer|process|require|__dirname)\b/, f);
  }
});

test('aggregation counts every machine once, per zone and state', () => {
  const states = ['Ready', 'NotReady', 'Unknown', 'Pending'] as const;
  fc.assert(fc.property(fc.array(fc.record({ phase: fc.constantFrom(...states), zone: fc.constantFrom('a', 'b', 'c', null), health: fc.constantFrom('healthy', 'unhealthy') }), { maxLength: 300 }), (specs) => {
    const ms = specs.map((s, i) => machine(`m${i}`, s));
    const zones = aggregate(ms);
    assert.equal(zones.reduce((n, z) => n + z.total, 0), ms.length);
    const all = totals(ms);
    for (const z of zones) for (const [k, v] of Object.entries(z.counts)) assert.ok(v <= all[k as keyof typeof all]);
    assert.deepEqual(zones.map((z) => z.zone), [...zones.map((z) => z.zone)].sort());
  }));
});

test('the virtual window covers the viewport, stays in bounds, and renders a bounded number of rows', () => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 20_000 }), fc.integer({ min: -100, max: 700_000 }), fc.integer({ min: 1, max: 2000 }), (count, scroll, viewport) => {
    const { start, end } = windowRange(scroll, viewport, 28, count);
    assert.ok(start >= 0 && start <= end && end <= count);
    assert.ok(end - start <= Math.ceil(viewport / 28) + 16 + 1);
    const firstVisible = Math.floor(Math.max(0, scroll) / 28);
    const lastVisible = Math.min(count, Math.floor((Math.max(0, scroll) + viewport) / 28));
    if (firstVisible < count) assert.ok(start <= firstVisible && end >= Math.min(count, lastVisible), `${start}-${end} misses ${firstVisible}-${lastVisible}`);
  }));
});

test('package distribution: running versions against the desired one', () => {
  const ms = [
    machine('a', { packages: [{ name: 'kubelet', current: 'Kubernetes v1.31.3', desired: '1.31.3', state: 'Converged' }] }),
    machine('b', { packages: [{ name: 'kubelet', current: 'Kubernetes v1.31.2', desired: '1.31.3', state: 'Updating' }] }),
    machine('c', { packages: [{ name: 'kubelet', current: 'Kubernetes v1.31.3', desired: '1.31.3', state: 'Converged' }] }),
  ];
  const kubelet = packageDistribution(ms).find((p) => p.name === 'kubelet')!;
  assert.deepEqual([kubelet.desired, kubelet.atDesired, kubelet.machines], ['1.31.3', 2, 3]);
  assert.deepEqual(kubelet.versions.map((v) => [v.version, v.count, v.desired]), [['Kubernetes v1.31.3', 2, true], ['Kubernetes v1.31.2', 1, false]]);
  // Without a desired version: the probed versions.
  const probed = packageDistribution([machine('a'), machine('b', { kubelet: '1.31.3' })]).find((p) => p.name === 'kubelet')!;
  assert.deepEqual([probed.desired, probed.versions.length], [null, 2]);
  assert.ok(sameVersion('v1.31.3', '1.31.3') && sameVersion('Kubernetes v1.31.3', 'v1.31.3') && !sameVersion('1.31.30', '1.31.3') && !sameVersion(null, '1'));
});

test('watch lines: events, bookmarks, errors; anything else is not an event', () => {
  assert.deepEqual(parseWatchLine('{"type":"ADDED","object":{"metadata":{"name":"a"}}}'), { type: 'ADDED', object: { metadata: { name: 'a' } } });
  assert.deepEqual(parseWatchLine('{"type":"BOOKMARK","object":{"kind":"Bookmark","metadata":{"resourceVersion":"42"}}}'), { type: 'BOOKMARK', resourceVersion: '42' });
  assert.deepEqual(parseWatchLine('{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"too old"}}'), { type: 'ERROR', code: 410, message: 'too old' });
  for (const bad of ['', '{', '[]', 'null', '{"type":"ADDED"}', '{"type":"NOPE","object":{}}', '{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":42}}}', '  {\n']) assert.equal(parseWatchLine(bad), null, bad);
});
