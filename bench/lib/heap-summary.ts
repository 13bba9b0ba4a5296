/**
 * Bench tool: where a V8 heap snapshot's bytes are, by node type and constructor name
 * (self sizes; no retainers). `node bench/lib/heap-summary.ts FILE.heapsnapshot [--top 40]
 * [--per N] [--minus SMALLER.heapsnapshot]`: with --per, sizes are also shown divided by N
 * (bytes per agent); with --minus, what FILE holds beyond the other snapshot, key by key
 * (two runs at different fleet sizes: --per their difference gives the margin per agent).
 * Take the snapshot with BENCH_HEAP_SNAPSHOT=FILE node bench/fleet.ts ... (bench/lib/heap-probe.ts).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '40' }, per: { type: 'string', default: '1' }, minus: { type: 'string' } } });
const file = positionals[0];
if (file === undefined) throw new TypeError('usage: heap-summary.ts FILE.heapsnapshot [--top 40] [--per N] [--minus OTHER.heapsnapshot]');

type Tally = Map<string, { bytes: number; count: number }>;

function tally(path: string): { by: Tally; total: number } {
  const snap = JSON.parse(readFileSync(path, 'utf8')) as { snapshot: { meta: { node_fields: string[]; node_types: [string[]] } }; nodes: number[]; strings: string[] };
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const [iType, iName, iSize] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f)) as [number, number, number];
  const by: Tally = new Map();
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
  return { by, total };
}

const per = Number(values.per);
const big = tally(file);
const small = values.minus === undefined ? { by: new Map() as Tally, total: 0 } : tally(values.minus);
const rows = [...new Set([...big.by.keys(), ...small.by.keys()])].map((k) => {
  const a = big.by.get(k) ?? { bytes: 0, count: 0 };
  const b = small.by.get(k) ?? { bytes: 0, count: 0 };
  return { k, bytes: a.bytes - b.bytes, count: a.count - b.count };
});
const total = big.total - small.total;
console.log(`total ${(total / 1024 / 1024).toFixed(1)} MB self size${values.minus === undefined ? '' : ' beyond the other snapshot'}; ${(total / per).toFixed(0)} B per ${per > 1 ? 'agent' : 'unit'}`);
for (const { k, bytes, count } of rows.sort((a, b) => Math.abs(b.bytes) - Math.abs(a.bytes)).slice(0, Number(values.top))) {
  console.log(`${(bytes / per).toFixed(0).padStart(8)} B  ${(count / per).toFixed(2).padStart(8)}  ${k}`);
}
