/**
 * Benchmark (not a test): where the coordinator's JS heap goes per machine, part by
 * part, with no connections: the fleet view's machines (records, reports, liveness,
 * conditions), then the rollout and remediation controllers' machine views built from
 * it. The connection's share (ws, socket, AgentSession) is what `fleet.ts` measures on
 * top of this (its heap-per-agent row).
 *
 *   node bench/fleet-memory.ts [--sizes 2000,5000] [--no-record]
 *
 * Real parts: an SQLite store (in memory: its pages are not JS heap), the real FleetView,
 * WriteBatcher and views. Every report is the simulator's full report (bench/sim,
 * about 1.9 KB of JSON), each one parsed from its own JSON text as a frame would be, so
 * no string is shared between machines unless the coordinator shares it. The heap is
 * read after a full GC (v8.setFlagsFromString('--expose-gc')).
 *
 * Then the CPU a report delta costs the fleet view as it keeps reports (packed:
 * fleet/pack-report.ts), against what keeping each report as its compact JSON text would
 * cost (parse the stored text, merge, serialise again), over the same deltas.
 */
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import vm from 'node:vm';
import { createLogger } from '@nodekeeper/common';
import { FleetView, type AgentLink } from '../coordinator/src/fleet/fleet-view.ts';
import { Interner } from '../coordinator/src/fleet/interner.ts';
import { mergeReport } from '../coordinator/src/fleet/merge-report.ts';
import { packDelta, packReport } from '../coordinator/src/fleet/pack-report.ts';
import { DEFAULT_FAULT_SETTINGS } from '../coordinator/src/remediation/faults.ts';
import { MachineViews as RemediationViews } from '../coordinator/src/remediation/machine-views.ts';
import { MachineViews as RolloutViews } from '../coordinator/src/rollout/machine-views.ts';
import { openStore } from '../coordinator/src/store/db.ts';
import { WriteBatcher } from '../coordinator/src/store/write-batcher.ts';
import { record } from './lib/results.ts';
import { initialReport } from './sim/sim-agent.ts';

const { values } = parseArgs({ options: { sizes: { type: 'string', default: '2000,5000' }, 'no-record': { type: 'boolean', default: false } } });
const SIZES = values.sizes.split(',').map(Number);
if (SIZES.some((n) => !Number.isInteger(n) || n < 100)) throw new RangeError(`--sizes must be whole numbers >= 100, got ${values.sizes}`);

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const log = createLogger({ name: 'bench', level: 'silent' });
const link: AgentLink = { resync: () => {}, close: () => {}, sendCommand: () => true };

/** Heap used after two full GCs. */
function heap(): number {
  gc();
  gc();
  return v8.getHeapStatistics().used_heap_size;
}

const kb = (bytes: number, n: number) => (bytes / n / 1024).toFixed(2);

for (const n of SIZES) {
  const now = { t: 1_000_000 };
  const clock = () => now.t;
  const store = openStore(':memory:', { now: clock, log });
  const { token } = store.createToken({ ttlMs: 3_600_000, maxUses: n, description: '' });
  const specs = Array.from({ length: n }, (_, i) => {
    const name = `sim-${String(i).padStart(5, '0')}`;
    return { name, machineId: `mid-${name}`, credential: '', zone: `zone-${i % 3}`, kubeletVersion: 'v1.35.2' };
  });
  const frame = (s: (typeof specs)[number]) => JSON.parse(JSON.stringify(initialReport(s, new Date(now.t))));
  const reportBytes = JSON.stringify(initialReport(specs[0]!, new Date(now.t))).length;
  for (const s of specs) {
    const identity = { machineId: s.machineId, hostname: s.name, addresses: ['10.0.0.1'], zone: s.zone, labels: { 'nodekeeper.io/pool': 'sim', 'topology.kubernetes.io/zone': s.zone } };
    store.enroll({ token, identity, agentVersion: 'sim-0.1.0' });
  }
  const batcher = new WriteBatcher(store, { intervalMs: 3_600_000, log, autoStart: false });

  const h0 = heap();
  const fleet = new FleetView({ store, batcher, clock, log }, { livenessGraceMs: 40_000, livenessRecoverMs: 15_000 });
  for (const s of specs) fleet.attach(s.name, link, 'sim-0.1.0');
  fleet.tick();
  batcher.flush();
  const h1 = heap();
  for (const s of specs) fleet.report(s.name, true, frame(s));
  fleet.tick();
  batcher.flush();
  const h2 = heap();
  const rollout = new RolloutViews();
  rollout.refresh(fleet.values(), () => true);
  const h3 = heap();
  const remediation = new RemediationViews(DEFAULT_FAULT_SETTINGS, new Map());
  remediation.update({ get: (name) => fleet.get(name), values: () => fleet.values(), contact: () => 'connected' }, [{ name: 'kubelet', version: '1.35.2' }], now.t);
  const h4 = heap();
  const parts = [
    ['machines without reports (records, liveness, conditions, deadline queue)', h1 - h0],
    ['reports and the conditions they give', h2 - h1],
    ['rollout machine views', h3 - h2],
    ['remediation machine views and fault states', h4 - h3],
  ] as const;
  const result = `${parts.map(([what, b]) => `${what} ${kb(b, n)} KB`).join('; ')}; total ${kb(h4 - h0, n)} KB per machine (report JSON ${(reportBytes / 1024).toFixed(2)} KB)`;
  if (values['no-record']) console.log(`N=${n}: ${result}`);
  else record(`fleet memory: JS heap per machine after a full GC, no connections, N=${n}`, result);
  // A delta per machine (its kubelet went unhealthy), as the fleet view takes it, and as
  // a compact-JSON store would: the same merge, plus a parse and a serialisation.
  const deltas = specs.map((s) => JSON.stringify({ kubelet: { ...initialReport(s, new Date(now.t)).kubelet, health: 'unhealthy', reason: 'HealthzRefused' } }));
  const texts = specs.map((s) => JSON.stringify(fleet.get(s.name)?.report));
  const cpu = (fn: () => void) => {
    const t = process.cpuUsage();
    fn();
    const d = process.cpuUsage(t);
    return (d.user + d.system) / n;
  };
  const interner = new Interner();
  const packed = specs.map((s) => packReport(fleet.get(s.name)!.report!, interner));
  const packedUs = cpu(() => specs.forEach((_s, i) => {
    packed[i] = mergeReport(packed[i] ?? null, { full: false, report: packDelta(JSON.parse(deltas[i] as string), interner) }).report!;
  }));
  const jsonUs = cpu(() => specs.forEach((_s, i) => {
    const merged = mergeReport(JSON.parse(texts[i] as string), { full: false, report: JSON.parse(deltas[i] as string) });
    texts[i] = JSON.stringify(merged.report);
  }));
  const cpuResult = `a report delta (one section, a change), per machine: packed (parse the frame, pack its section, merge) ${packedUs.toFixed(1)} us; compact JSON (parse the frame, parse the stored text, merge, serialise) ${jsonUs.toFixed(1)} us`;
  if (values['no-record']) console.log(`N=${n}: ${cpuResult}`);
  else record(`fleet memory: report delta CPU, N=${n}`, cpuResult);
  // Keep everything alive until measured.
  if (fleet.list().length + rollout.refresh(fleet.values(), () => true).size + remediation.saved.size === -1) console.log('empty');
  store.close();
}
