/**
 * Self time of a V8 .cpuprofile (node --cpu-prof), by function and by file, and the total
 * time of the project's own functions (with their callees), in ms per
 * second of the profile: what a process does every second, whatever the box's speed.
 *
 *   node bench/lib/profile-self.ts FILE.cpuprofile [--top 40] [--skip-s 0] [--until-s END]
 *
 * --skip-s: leave out the profile's first seconds (start-up, the fleet connecting);
 * --until-s: and everything after this second (the bench's reads and the shutdown).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
interface Profile { nodes: Node[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '40' }, 'skip-s': { type: 'string', default: '0' }, 'until-s': { type: 'string', default: 'Infinity' } } });
const p = JSON.parse(readFileSync(positionals[0] ?? '', 'utf8')) as Profile;
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const skipUs = Number(values['skip-s']) * 1e6;
const untilUs = Number(values['until-s']) * 1e6;
const parent = new Map<number, number>();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const fn = new Map<string, number>();
/** Total time (self and callees) of our own functions, each counted once per sample. */
const total = new Map<string, number>();
const file = new Map<string, number>();
let t = p.startTime;
let counted = 0;
for (let i = 0; i < p.samples.length; i++) {
  const dt = p.timeDeltas[i] ?? 0;
  t += dt;
  if (t - p.startTime < skipUs || t - p.startTime > untilUs) continue;
  counted += dt;
  const n = byId.get(p.samples[i] ?? -1);
  if (n === undefined) continue;
  const url = n.callFrame.url.replace(/^file:\/\/.*?\/(coordinator|packages|node_modules|bench)\//, '$1/');
  const f = `${n.callFrame.functionName || '(anonymous)'} ${url}:${n.callFrame.lineNumber + 1}`;
  fn.set(f, (fn.get(f) ?? 0) + dt);
  const seen = new Set<string>();
  for (let id: number | undefined = n.id; id !== undefined; id = parent.get(id)) {
    const a = byId.get(id);
    if (a === undefined || !/\/(coordinator|packages)\//.test(a.callFrame.url)) continue;
    const k = `${a.callFrame.functionName || '(anonymous)'} ${a.callFrame.url.replace(/^file:\/\/.*?\/(coordinator|packages)\//, '$1/')}:${a.callFrame.lineNumber + 1}`;
    if (seen.has(k)) continue;
    seen.add(k);
    total.set(k, (total.get(k) ?? 0) + dt);
  }
  file.set(url || n.callFrame.functionName, (file.get(url || n.callFrame.functionName) ?? 0) + dt);
}
const secs = counted / 1e6;
const show = (title: string, m: Map<string, number>) => {
  console.log(`\n${title} (ms per second over ${secs.toFixed(1)} s)`);
  for (const [k, us] of [...m].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) console.log(`${(us / 1000 / secs).toFixed(2).padStart(8)}  ${k}`);
};
show('self time by function', fn);
show('self time by file', file);
show('total time (with callees) of the project\'s functions', total);
