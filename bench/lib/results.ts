/**
 * Where benchmark results go: one table row per measurement appended to
 * bench/results.md, each with the moment, the commit, the machine and the runtime, so
 * numbers from different machines and commits are never confused.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const RESULTS_FILE = path.join(REPO, 'bench/results.md');

/**
 * The code a row measured: the last commit that changed anything but Markdown, with a "+"
 * when the work tree holds changes beside it. Markdown is left out because the bench
 * writes results.md itself, and the notes may be edited while a long run goes on: rows of
 * one run spread over several sessions then name the same code.
 */
function commit(): string {
  const code = ['--', '.', ':(exclude,glob)**/*.md'];
  try {
    const sha = execFileSync('git', ['log', '-1', '--format=%h', ...code], { cwd: REPO, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no', ...code], { cwd: REPO, encoding: 'utf8' }).trim() !== '';
    return dirty ? `${sha}+` : sha;
  } catch {
    return 'unknown';
  }
}

/** "AMD EPYC 7B13 x2": the CPU model and the core count. */
export function machine(): string {
  const c = cpus();
  return `${(c[0]?.model ?? 'unknown').replace(/\s+/g, ' ').replace(/\s*\d+-Core Processor/, '').trim()} x${c.length}`;
}

/**
 * NODE_OPTIONS the bench was started with (a profiler, say): every process it starts
 * inherits them, so its rows say so. Read at import, before a bench sets its own for a child.
 */
const INHERITED_NODE_OPTIONS = (process.env['NODE_OPTIONS'] ?? '').trim();

/** Prints a result and appends it to bench/results.md as one row. */
export function record(benchmark: string, result: string): void {
  if (INHERITED_NODE_OPTIONS !== '') benchmark = `${benchmark}, NODE_OPTIONS ${INHERITED_NODE_OPTIONS} in every process`;
  const row = `| ${new Date().toISOString().slice(0, 16)}Z | ${commit()} | ${machine()} | node ${process.versions.node} | ${benchmark} | ${result} |`;
  console.log(`${benchmark}: ${result}`);
  appendFileSync(RESULTS_FILE, `${row}\n`);
}

/** The p-th percentile (0..100) of the values, by nearest rank; NaN when there are none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
