/**
 * Bench tool: where a V8 heap snapshot's bytes are, by node type and constructor name
 * (self sizes; no retainers). `node bench/lib/heap-summary.ts FILE.heapsnapshot [--top 40]
 * [--per N]`: with --per, sizes are also shown divided by N (bytes per agent). Take the
 * snapshot with BENCH_HEAP_SNAPSHOT=FILE node bench/fleet.ts ... (bench/lib/heap-probe.ts).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '40' }, per: { type: 'string', default: '1' } } });
const file = positionals[0];
if (file === undefined) throw new TypeError('usage: heap-summary.ts FILE.heapsnapshot [--top 40] [--per N]');
const snap = JSON.parse(readFileSync(file, 'utf8')) as { snapshot: { meta: { node_fields: string[]; node_types: [string[]] } }; nodes: number[]; strings: string[] };
const fields = snap.snapshot.meta.node_fields;
const types = snap.snapshot.meta.node_types[0];
const width = fields.length;
const [iType, iName, iSize] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f)) as [number, number, number];
const by = new Map<string, { bytes: number; count: number }>();
let total = 0;
for (let i = 0; i < snap.nodes.length; i += width) {
  const type = types[snap.nodes[i + iType] as number] ?? '?';
  const size = snap.nodes[i + iSize] as number;
  // Strings by their kind, not their text; objects by constructor.
  const name = type === 'string' || type === 'concatenated string' || type === 'sliced string' ? '' : (snap.strings[snap.nodes[i + iName] as number] ?? '').slice(0, 60);
  const key = `${type} ${name}`;
  const e = by.get(key) ?? { bytes: 0, count: 0 };
  e.bytes += size;
  e.count += 1;
  by.set(key, e);
  total += size;
}
const per = Number(values.per);
console.log(`total ${(total / 1024 / 1024).toFixed(1)} MB self size; ${(total / per).toFixed(0)} B per ${per > 1 ? 'agent' : 'unit'}`);
for (const [k, e] of [...by].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, Number(values.top))) {
  console.log(`${(e.bytes / per).toFixed(0).padStart(8)} B  ${String(e.count).padStart(8)}  ${k}`);
}
