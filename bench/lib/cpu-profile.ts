/**
 * Reads a V8 CPU profile (`node --cpu-prof`, a .cpuprofile file) for the benchmarks:
 * where the time went (self time per function), and the longest stretch in which the
 * main thread never went idle, i.e. the worst event-loop stall, with what ran during it
 * (inclusive time per function, so the caller that started the work shows, not only the
 * leaf it ended in). Not product code.
 */
import { readFileSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

interface CallFrame { functionName: string; url: string; lineNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; children?: number[] }
interface CpuProfile { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }

export interface Frame { readonly name: string; readonly ms: number }
export interface ProfileSummary {
  readonly totalMs: number;
  /** Functions by self time, most first. */
  readonly topSelf: readonly Frame[];
  /** Start-up: the first run of samples before the first idle one (loading modules and the store, before listening). */
  readonly startupMs: number;
  /** The longest runs of samples with no idle one between them after start-up, longest first. */
  readonly stalls: readonly Stall[];
}
export interface Stall { readonly ms: number; readonly atMs: number; readonly inclusive: readonly Frame[]; readonly self: readonly Frame[] }

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
  // Busy runs: samples with no idle one between them. The first is start-up.
  const runs: Array<{ from: number; to: number; us: number; atUs: number }> = [];
  let at = 0;
  let run: { from: number; to: number; us: number; atUs: number } | null = null;
  for (let i = 0; i < p.samples.length; i += 1) {
    at += p.timeDeltas[i] ?? 0;
    if (idle(p.samples[i]!)) {
      if (run !== null) runs.push(run);
      run = null;
      continue;
    }
    run ??= { from: i, to: i, us: 0, atUs: at };
    run.to = i;
    run.us += dur(i);
  }
  if (run !== null) runs.push(run);
  const startup = runs[0]?.from === 0 ? runs.shift() : undefined;
  const stalls = runs.sort((a, b) => b.us - a.us).slice(0, 3).map((r) => {
    const inclusive = new Map<string, number>();
    const stallSelf = new Map<string, number>();
    for (let i = r.from; i <= r.to; i += 1) {
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
    return { ms: Math.round(r.us / 1000), atMs: Math.round(r.atUs / 1000), inclusive: top(inclusive, n), self: top(stallSelf, n) };
  });
  return { totalMs: Math.round((p.endTime - p.startTime) / 1000), topSelf: top(self, n), startupMs: Math.round((startup?.us ?? 0) / 1000), stalls };
}

/** The summary as text, for a file beside the profile and a results row. */
export function profileText(s: ProfileSummary): string {
  const list = (fs: readonly Frame[]) => fs.map((f) => `  ${String(f.ms).padStart(8)} ms  ${f.name}`).join('\n');
  return [
    `profile of ${s.totalMs} ms; top self time:`,
    list(s.topSelf),
    `start-up (busy until the first idle sample): ${s.startupMs} ms`,
    ...s.stalls.flatMap((st, i) => [
      `busy stretch ${i + 1} (no idle sample): ${st.ms} ms, starting ${st.atMs} ms into the profile; inclusive:`,
      list(st.inclusive),
      'self, within it:',
      list(st.self),
    ]),
  ].join('\n');
}

/**
 * The env that makes a process write a profile into `dir` when it exits: the NODE_OPTIONS
 * this process has now, plus --cpu-prof. Its children inherit it (a coordinator's gateway
 * workers write theirs beside the writer's).
 */
export function profilingEnv(dir: string): NodeJS.ProcessEnv {
  return { NODE_OPTIONS: `${process.env['NODE_OPTIONS'] ?? ''} --cpu-prof --cpu-prof-dir=${dir}`.trim() };
}

/**
 * The profile process `pid` wrote in `dir` (Node names it CPU.<date>.<time>.<pid>.<thread>.<n>.cpuprofile),
 * summarised into summary.txt beside it; null when it wrote none.
 */
export async function processProfile(dir: string, pid: number): Promise<ProfileSummary | null> {
  const file = (await readdir(dir)).find((f) => f.startsWith('CPU.') && f.split('.')[3] === String(pid) && f.endsWith('.cpuprofile'));
  if (file === undefined) return null;
  const summary = summarizeProfile(path.join(dir, file));
  await writeFile(path.join(dir, 'summary.txt'), `${profileText(summary)}\n`);
  return summary;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const f of process.argv.slice(2)) console.log(`${f}\n${profileText(summarizeProfile(f))}\n`);
}
