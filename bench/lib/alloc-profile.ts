/**
 * Bench tool: what a running Node process allocates, and what of it outlives the young
 * generation, by allocation site; with its GC counts over the same seconds. Attaches
 * through the inspector (SIGUSR1 opens it on 127.0.0.1:9229; the process must be ours,
 * and nothing else may hold that port), samples with V8's sampling heap profiler, and
 * detaches (the target's inspector stays open on loopback until it exits: use it on bench
 * processes only). Not product code.
 *
 *   node bench/lib/alloc-profile.ts PID [--seconds 30] [--per N] [--all] [--out FILE]
 *
 * Without --all, only objects that survived a scavenge (promoted, or still alive at the
 * end): the old generation's intake, which is what V8's major GCs pay for. With --all,
 * every allocation (what drives the scavenges). --per N divides the bytes by N (the frames
 * the process received in those seconds, say) and prints bytes a unit.
 * Used for "CPU per frame over wss" in bench/README.md: run it on the coordinator and on
 * the baseline in their steady windows (`node bench/fleet.ts ... --window 180`).
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';

interface CallFrame { functionName: string; url: string; lineNumber: number }
interface SampleNode { callFrame: CallFrame; selfSize: number; children: SampleNode[] }
interface GcTally { [kind: string]: { n: number; ms: number } }

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { seconds: { type: 'string', default: '30' }, per: { type: 'string', default: '1' }, all: { type: 'boolean', default: false }, out: { type: 'string' }, port: { type: 'string', default: '9229' }, top: { type: 'string', default: '30' } },
});
const pid = Number(positionals[0]);
if (!Number.isInteger(pid) || pid <= 0) throw new TypeError('usage: alloc-profile.ts PID [--seconds 30] [--per N] [--all] [--out FILE]');
const per = Number(values.per);
if (!(per >= 1)) throw new RangeError(`--per must be >= 1, got ${values.per}`);
if (!(Number(values.seconds) > 0)) throw new RangeError(`--seconds must be > 0, got ${values.seconds}`);
/** How long Node takes to open its inspector after SIGUSR1 (it listens until the target exits). */
const INSPECTOR_OPEN_MS = 1500;

process.kill(pid, 'SIGUSR1');
await new Promise((r) => setTimeout(r, INSPECTOR_OPEN_MS));
const targets = (await (await fetch(`http://127.0.0.1:${values.port}/json/list`)).json()) as Array<{ webSocketDebuggerUrl: string }>;
if (targets[0] === undefined) throw new Error(`no inspector target on 127.0.0.1:${values.port} after SIGUSR1 to ${pid}`);
const ws = new WebSocket(targets[0].webSocketDebuggerUrl);
await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
let nextId = 0;
const pending = new Map<number, (result: unknown) => void>();
ws.on('message', (data) => {
  const m = JSON.parse(String(data)) as { id?: number; result?: unknown; error?: { message: string } };
  if (m.id === undefined) return;
  if (m.error !== undefined) throw new Error(`inspector: ${m.error.message}`);
  pending.get(m.id)?.(m.result);
  pending.delete(m.id);
});
const call = <T>(method: string, params: object = {}): Promise<T> =>
  new Promise((resolve) => {
    const id = ++nextId;
    pending.set(id, resolve as (r: unknown) => void);
    ws.send(JSON.stringify({ id, method, params }));
  });
const evaluate = async <T>(expression: string): Promise<T> => (await call<{ result: { value: T } }>('Runtime.evaluate', { expression, returnByValue: true })).result.value;

// GC counts and main-thread times by kind, from a PerformanceObserver installed in the target.
await evaluate(`(() => {
  const { PerformanceObserver, constants: c } = process.getBuiltinModule('node:perf_hooks');
  const kinds = { [c.NODE_PERFORMANCE_GC_MAJOR]: 'major', [c.NODE_PERFORMANCE_GC_MINOR]: 'minor', [c.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental', [c.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb' };
  const tally = globalThis.__benchGc = {};
  globalThis.__benchGcObserver = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) { const t = (tally[kinds[e.detail.kind]] ??= { n: 0, ms: 0 }); t.n += 1; t.ms += e.duration; }
  });
  globalThis.__benchGcObserver.observe({ entryTypes: ['gc'] });
  return true;
})()`);
const cpu = `(() => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; })()`;
const cpuBefore = await evaluate<number>(cpu);
await call('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: values.all });
await new Promise((r) => setTimeout(r, Number(values.seconds) * 1000));
const { profile } = await call<{ profile: { head: SampleNode } }>('HeapProfiler.stopSampling');
const cpuMs = (await evaluate<number>(cpu)) - cpuBefore;
const gc = await evaluate<GcTally>('(globalThis.__benchGcObserver.disconnect(), globalThis.__benchGc)');
ws.close();
if (values.out !== undefined) writeFileSync(values.out, JSON.stringify(profile));

const where = (f: CallFrame) => `${f.functionName || '(anonymous)'} ${f.url.replace(/^file:\/\/.*?\/(coordinator|packages|bench|node_modules)\//, '$1/').replace(/^.*node_modules\/\.pnpm\//, '')}:${f.lineNumber + 1}`;
const bySite = new Map<string, number>();
const byStack = new Map<string, number>();
let total = 0;
const walk = (n: SampleNode, stack: string[]) => {
  const s = [where(n.callFrame), ...stack];
  if (n.selfSize > 0) {
    total += n.selfSize;
    bySite.set(s[0]!, (bySite.get(s[0]!) ?? 0) + n.selfSize);
    const k = s.slice(0, 4).join(' < ');
    byStack.set(k, (byStack.get(k) ?? 0) + n.selfSize);
  }
  for (const c of n.children) walk(c, s);
};
walk(profile.head, []);
const unit = per > 1 ? ' a unit' : '';
console.log(`${values.all ? 'allocated' : 'survived a scavenge'}: ${(total / 1024).toFixed(0)} KB in ${values.seconds} s${per > 1 ? `, ${(total / per).toFixed(0)} B a unit` : ''}; CPU ${cpuMs.toFixed(0)} ms; GC (main thread): ${Object.entries(gc).map(([k, t]) => `${k} ${t.n} (${t.ms.toFixed(0)} ms)`).join(', ')}`);
for (const [k, b] of [...bySite].sort((x, y) => y[1] - x[1]).slice(0, Number(values.top))) console.log(`${(b / per).toFixed(1).padStart(9)} B${unit}  ${k}`);
console.log('by stack (4 frames):');
for (const [k, b] of [...byStack].sort((x, y) => y[1] - x[1]).slice(0, Number(values.top))) console.log(`${(b / per).toFixed(1).padStart(9)} B${unit}  ${k}`);
