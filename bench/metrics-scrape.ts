/**
 * Benchmark (not a test): one scrape of the coordinator's /metrics over a fleet of 5,000
 * machines: the product gauges computed from the in-memory fleet view (liveness,
 * conditions, package versions against the ClusterPackageVersion), faults and
 * remediation phases, a few rollouts, every histogram with observations, and the
 * default process/nodejs metrics; then rendered to text, as `GET /metrics` does.
 *
 *   node bench/metrics-scrape.ts [--machines N] [--runs N] [--no-record]
 *
 * The fleet is real: an SQLite store (in memory) with N enrolled machines and a
 * FleetView holding each one's full report (a mix of versions and unhealthy kubelets).
 * The remediation and rollout views are plain data of the shape the controllers keep.
 * p50, p99 and max of a scrape, and the exposition's size, are appended to
 * bench/results.md (target: a scrape under 100 ms at 5,000 machines).
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { createLogger } from '@nodekeeper/common';
import { percentile, record } from './lib/results.ts';
import { FleetView } from '../coordinator/src/fleet/fleet-view.ts';
import { createMetrics, registerBatcherMetrics, registerConnectionMetrics, registerStoreHealthMetrics } from '../coordinator/src/metrics.ts';
import { registerProductMetrics, type RolloutSummary } from '../coordinator/src/metrics/product.ts';
import { openStore } from '../coordinator/src/store/db.ts';
import { sampleReport } from '../coordinator/src/store/test-support.ts';
import { WriteBatcher } from '../coordinator/src/store/write-batcher.ts';

const { values } = parseArgs({ options: { machines: { type: 'string', default: '5000' }, runs: { type: 'string', default: '100' }, 'no-record': { type: 'boolean', default: false } } });
const N = Number(values.machines);
const RUNS = Number(values.runs);
if (!Number.isInteger(N) || N < 10) throw new RangeError(`--machines must be a whole number >= 10, got ${values.machines}`);
if (!Number.isInteger(RUNS) || RUNS < 1) throw new RangeError(`--runs must be a whole number >= 1, got ${values.runs}`);

const log = createLogger({ name: 'bench', level: 'silent' });
let now = Date.now();
const clock = () => now;
const store = openStore(':memory:', { now: clock, log });
const { token } = store.createToken({ ttlMs: 60_000, maxUses: N, description: 'bench' });
const names = Array.from({ length: N }, (_, i) => `node-${String(i).padStart(5, '0')}`);
for (const name of names) store.enroll({ token, identity: { machineId: `mid-${name}`, hostname: name, addresses: ['10.0.0.1'], zone: `zone-${name.length % 3}`, labels: {} }, agentVersion: '0.1.0' });
store.putClusterPackageVersion([
  { name: 'kubelet', version: '1.31.3', artifact: { url: 'https://artifacts.invalid/k.tgz', sha256: 'a'.repeat(64), size: 1 } },
  { name: 'containerd', version: '1.6.20', artifact: { url: 'https://artifacts.invalid/c.tgz', sha256: 'b'.repeat(64), size: 1 } },
]);
const batcher = new WriteBatcher(store, { intervalMs: 3_600_000, log, autoStart: false });
const fleet = new FleetView({ store, batcher, clock, log }, { livenessGraceMs: 40_000, livenessRecoverMs: 10_000 });
const link = { resync() {}, close() {}, sendCommand: () => true };
for (const [i, name] of names.entries()) {
  const base = sampleReport(name);
  const version = i % 3 === 0 ? '1.31.3' : '1.31.2';
  const health = i % 97 === 0 ? 'unhealthy' : 'healthy';
  fleet.attach(name, link, '0.1.0');
  fleet.report(name, true, { ...base, kubelet: { ...base.kubelet, health, version: { raw: `Kubernetes v${version}`, semver: version, source: 'binary' } } });
}
now += 60_000;
fleet.tick();
batcher.flush();

// Remediation and rollouts as their controllers keep them: plain in-memory data.
const faults = new Map(names.filter((_, i) => i % 97 === 0).map((n) => [n, [{ type: 'KubeletUnhealthy', status: 'Active' }]]));
const phases = names.filter((_, i) => i % 97 === 0).map((_, i) => (i % 5 === 0 ? 'NeedsHuman' : i % 2 === 0 ? 'Running' : 'Idle'));
const counters = (done: number) => ({ total: N, waiting: N - done - 10, inProgress: 10, succeeded: done, failed: 0, rollingBack: 0, rolledBack: 0, skipped: 0 });
const rollouts: RolloutSummary[] = [
  { name: 'kubelet-g7', phase: 'Progressing', reason: 'BatchStarted', since: now, counters: counters(Math.floor(N / 3)) },
  { name: 'kubelet-g6', phase: 'Completed', reason: 'AllSucceeded', since: now - 600_000, counters: counters(N - 10) },
  { name: 'containerd-g3', phase: 'Paused', reason: 'OperatorRequest', since: now, counters: counters(100) },
  ...Array.from({ length: 20 }, (_, i) => ({ name: `old-${i}`, phase: 'Completed', reason: 'AllSucceeded', since: now - 86_400_000, counters: counters(N - 10) })),
];

const metrics = createMetrics();
registerBatcherMetrics(metrics, batcher.counters);
registerStoreHealthMetrics(metrics, () => true);
registerConnectionMetrics(metrics, () => ({ agents: N, other: 3 }));
registerProductMetrics(metrics, {
  clock, wallClock: () => Date.now(), startedAt: Date.now(),
  machines: () => fleet.values(),
  faults: (m) => faults.get(m) ?? [],
  remediationPhases: () => phases,
  guard: () => 'none',
  rollouts: () => rollouts,
  desired: () => store.getClusterPackageVersion(),
  host: () => ({ lastSync: Date.now() - 5_000, lastLease: Date.now() - 3_000 }),
  certificates: () => ({ serving: Date.now() + 30 * 86_400_000, ca: Date.now() + 3650 * 86_400_000 }),
  backupIntervalSeconds: 21_600,
  ready: () => true,
});
// Histograms with observations in most buckets, as after a day of traffic.
const routes = ['machines', 'machine', 'rollouts', 'rollout', 'metrics', 'healthz', 'readyz', 'enroll', 'artifact-get', 'events'];
for (let i = 0; i < 10_000; i++) {
  const s = (i % 1000) / 1000;
  metrics.apiDuration.observe({ route: routes[i % routes.length]!, status_class: i % 50 === 0 ? '4xx' : '2xx' }, s);
  metrics.flushDuration.observe({ result: 'ok' }, s / 100);
  metrics.tlsHandshakeDuration.observe(s / 50);
  metrics.upgradeDuration.observe(s / 20);
  metrics.installDuration.observe({ package: ['kubelet', 'containerd', 'cni-plugins'][i % 3]!, outcome: 'installed' }, s * 300);
  metrics.installStepDuration.observe({ package: 'kubelet', step: ['download', 'verify', 'stage', 'switch', 'restart', 'health', 'commit'][i % 7]! }, s * 30);
}

const scrape = () => metrics.registry.metrics();
let text = '';
for (let i = 0; i < 10; i++) text = await scrape();
const ms: number[] = [];
for (let i = 0; i < RUNS; i++) {
  const t0 = performance.now();
  text = await scrape();
  ms.push(performance.now() - t0);
}
const samples = text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
const f = (v: number) => (v < 10 ? v.toFixed(2) : v.toFixed(1));
const result = `p50 ${f(percentile(ms, 50))} ms, p99 ${f(percentile(ms, 99))} ms, max ${f(Math.max(...ms))} ms (${RUNS} runs); ${samples} samples, ${(text.length / 1024).toFixed(1)} KiB`;
const benchmark = `metrics: one /metrics scrape (product gauges, histograms, defaults), ${N.toLocaleString('en-US')} machines`;
if (values['no-record']) console.log(`${benchmark}: ${result}`);
else record(benchmark, result);
batcher.close();
store.close();
