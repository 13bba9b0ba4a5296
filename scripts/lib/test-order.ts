/**
 * Longest test files first. `scripts/test` runs two files at a time; given in glob
 * (alphabetical) order, the longest files (the booted-systemd ones, test/systemd-*) came
 * last and ran as a tail of their own, two minutes past the rest. Started first, they
 * overlap the many short files instead (longest-processing-time-first scheduling).
 *
 *   node scripts/lib/test-order.ts order PATTERN...   prints the matching files, NUL-separated
 *   node --test --test-reporter=./scripts/lib/test-order.ts ...   records each file's time
 *
 * The times are kept per file in the user's cache (by path inside the checkout, so any
 * clone on the machine shares them); a file never timed yet counts as `UNTIMED_MS`.
 * Ordering only moves files: the same set runs either way, so a stale or missing record
 * costs minutes at worst, never a test.
 */
import { globSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');
const RECORD = path.join(process.env['XDG_CACHE_HOME'] ?? path.join(os.homedir(), '.cache'), 'nodekeeper', 'test-durations.json');
/** A new file is assumed to be a short one: it then runs among the short files. */
const UNTIMED_MS = 5_000;

/**
 * The longest files as measured on the 2-core reference machine (ms, 2026-12). Used
 * where no record exists yet (a fresh machine), so its first run is ordered too.
 */
const BASELINE: Readonly<Record<string, number>> = {
  'test/systemd-agent-upgrade-kill.test.ts': 186_000,
  'test/systemd-agent-upgrade.test.ts': 171_000,
  'test/long-path.test.ts': 170_000,
  'test/reboot-rollout.test.ts': 132_000,
  'test/systemd-real-installs.test.ts': 125_000,
  'test/node-conditions.test.ts': 109_000,
  'test/partition.test.ts': 105_000,
  'test/release.test.ts': 87_000,
  'test/rollout-drain.test.ts': 87_000,
  'test/remediation-e2e.test.ts': 68_000,
  'test/rollout-e2e.test.ts': 67_000,
  'test/kube-events.test.ts': 67_000,
};

type Durations = Record<string, number>;

function readRecord(): Durations {
  try {
    const parsed: unknown = JSON.parse(readFileSync(RECORD, 'utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return {};
    return Object.fromEntries(Object.entries(parsed).filter((e): e is [string, number] => typeof e[1] === 'number' && Number.isFinite(e[1]) && e[1] >= 0));
  } catch {
    return {};
  }
}

/** The files the patterns match (relative to the checkout), longest first; ties alphabetical. */
export function orderFiles(patterns: readonly string[], known: Durations): string[] {
  const files = [...new Set(patterns.flatMap((p) => globSync(p, { cwd: ROOT })))].filter((f) => !f.split(path.sep).includes('node_modules'));
  const ms = (f: string) => known[f] ?? BASELINE[f] ?? UNTIMED_MS;
  return files.sort((a, b) => ms(b) - ms(a) || a.localeCompare(b));
}

interface TestEvent {
  readonly type: string;
  readonly data: { readonly nesting?: number; readonly file?: string; readonly details?: { readonly duration_ms?: number } };
}

/** The reporter (it prints nothing): sums each file's top-level test times and merges them into the record. */
export default async function* durations(source: AsyncIterable<TestEvent>): AsyncGenerator<string> {
  const perFile: Durations = {};
  for await (const event of source) {
    if ((event.type !== 'test:pass' && event.type !== 'test:fail') || event.data.nesting !== 0 || event.data.file === undefined) continue;
    const file = path.relative(ROOT, event.data.file);
    perFile[file] = (perFile[file] ?? 0) + (event.data.details?.duration_ms ?? 0);
  }
  if (Object.keys(perFile).length === 0) return;
  const merged = { ...readRecord(), ...Object.fromEntries(Object.entries(perFile).map(([f, v]) => [f, Math.round(v)])) };
  mkdirSync(path.dirname(RECORD), { recursive: true });
  writeFileSync(`${RECORD}.tmp`, `${JSON.stringify(merged, null, 1)}\n`);
  renameSync(`${RECORD}.tmp`, RECORD);
}

if (import.meta.main === true && process.argv[2] === 'order') {
  process.stdout.write(orderFiles(process.argv.slice(3), readRecord()).map((f) => `${f}\0`).join(''));
}
