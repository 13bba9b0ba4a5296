/**
 * Reads a V8 CPU profile (`node --cpu-prof`, a .cpuprofile file) for the benchmarks:
 * where the time went (self time per function), and the longest stretch in which the
 * main thread never went idle, i.e. the worst event-loop stall, with what ran during it
 * (inclusive time per function, so the caller that started the work shows, not only the
 * leaf it ended in). Not product code.
 */
import { readFileSync } from 'node:fs';

interface CallFrame { functionName: string; url: string; lineNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; children?: number[] }
interface CpuProfile { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }

export interface Frame { readonly name: string; readonly ms: number }
export interface ProfileSummary {
  readonly totalMs: number;
  /** Functions by self time, most first. */
  readonly topSelf: readonly Frame[];
  /** The longest run of samples with no idle one between them. */
  readonly stall: { readonly ms: number; readonly atMs: number; readonly inclusive: readonly Frame[]; readonly self: readonly Frame[] };
}

const label = (f: CallFrame) => {
  const file = f.url.replace(/^file:\/\/.*?\/(coordinator|packages|node_modules)\//, '$1/').replace(/^node:/, 'node:');
  return `${f.functionName || '(anonymous)'}${file ? ` ${file.split('/').slice(-2).join('/')}:${f.lineNumber + 1}` : ''}`;
};

const top = (m: Map<string, number>, n: number): Frame[] =>
  [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([name, us]) => ({ name, ms: Math.round(us / 100) / 10 }));

export function summarizeProfile(file: string, n = 12): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of p.nodes) for (const c of node.children ?? []) parent.set(c, node.id);
  const idle = (id: number) => byId.get(id)?.callFrame.functionName === '(idle)';
  // A sample lasts until the next one.
  const dur = (i: number) => p.timeDeltas[i + 1] ?? 0;
  const self = new Map<string, number>();
  for (let i = 0; i < p.samples.length; i += 1) {
    const f = byId.get(p.samples[i]!)!.callFrame;
    if (f.functionName === '(idle)') continue;
    self.set(label(f), (self.get(label(f)) ?? 0) + dur(i));
  }
  // The longest busy run.
  let best = { from: 0, to: -1, us: 0 };
  let from = 0;
  let us = 0;
  for (let i = 0; i < p.samples.length; i += 1) {
    if (idle(p.samples[i]!)) {
      from = i + 1;
      us = 0;
      continue;
    }
    us += dur(i);
    if (us > best.us) best = { from, to: i, us };
  }
  const inclusive = new Map<string, number>();
  const stallSelf = new Map<string, number>();
  let atUs = 0;
  for (let i = 0; i < best.from; i += 1) atUs += p.timeDeltas[i] ?? 0;
  for (let i = best.from; i <= best.to; i += 1) {
    const seen = new Set<string>();
    const leaf = byId.get(p.samples[i]!)!;
    stallSelf.set(label(leaf.callFrame), (stallSelf.get(label(leaf.callFrame)) ?? 0) + dur(i));
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      const name = label(byId.get(id)!.callFrame);
      if (name.startsWith('(root)') || seen.has(name)) continue;
      seen.add(name);
      inclusive.set(name, (inclusive.get(name) ?? 0) + dur(i));
    }
  }
  return {
    totalMs: Math.round((p.endTime - p.startTime) / 1000),
    topSelf: top(self, n),
    stall: { ms: Math.round(best.us / 1000), atMs: Math.round(atUs / 1000), inclusive: top(inclusive, n), self: top(stallSelf, n) },
  };
}

/** The summary as text, for a file beside the profile and a results row. */
export function profileText(s: ProfileSummary): string {
  const list = (fs: readonly Frame[]) => fs.map((f) => `  ${String(f.ms).padStart(8)} ms  ${f.name}`).join('\n');
  return [
    `profile of ${s.totalMs} ms; top self time:`,
    list(s.topSelf),
    `longest busy stretch (no idle sample): ${s.stall.ms} ms, starting ${s.stall.atMs} ms into the profile; inclusive:`,
    list(s.stall.inclusive),
    'self, within it:',
    list(s.stall.self),
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const f of process.argv.slice(2)) console.log(`${f}\n${profileText(summarizeProfile(f))}\n`);
}
