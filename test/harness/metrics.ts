/**
 * Helpers for the metrics tests: promtool (built once from its Go module by
 * scripts/lib/promtool.sh), the metric families of a Prometheus text exposition, the
 * metric names a PromQL expression reads, and the metric table of docs/coordinator.md.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO } from './processes.ts';

const run = promisify(execFile);

/**
 * promtool's path: NK_PROMTOOL (scripts/test exports it), else nk_ensure_promtool (the
 * cache, or a build from the Go module). `{ skip }` says why when neither works.
 */
export async function findPromtool(): Promise<{ path: string } | { skip: string }> {
  const given = process.env['NK_PROMTOOL'];
  if (given !== undefined && given !== '' && existsSync(given)) return { path: given };
  const script = ['source scripts/lib/env.sh', 'source scripts/lib/kube.sh', 'source scripts/lib/promtool.sh', 'nk_ensure_promtool >&2', 'printf %s "$NK_PROMTOOL"'].join('; ');
  try {
    const { stdout } = await run('bash', ['-c', script], { cwd: REPO, timeout: 30 * 60_000, maxBuffer: 16 << 20 });
    if (existsSync(stdout)) return { path: stdout };
    return { skip: `nk_ensure_promtool printed no usable path (${JSON.stringify(stdout)})` };
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    return { skip: `promtool is absent (NK_PROMTOOL unset) and could not be built: ${(e.stderr ?? e.message).trim().split('\n').slice(-3).join(' | ')}` };
  }
}

export interface Family {
  readonly type: string;
  readonly help: string;
}

/** Metric families (`# TYPE` and `# HELP`) of a text exposition, by name. */
export function families(text: string): Map<string, Family> {
  const out = new Map<string, Family>();
  const help = new Map<string, string>();
  for (const line of text.split('\n')) {
    const h = /^# HELP (\S+) (.*)$/.exec(line);
    if (h !== null) help.set(h[1]!, h[2]!);
    const t = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (t !== null) out.set(t[1]!, { type: t[2]!, help: help.get(t[1]!) ?? '' });
  }
  return out;
}

/** Every series name a query may use for these families (histograms: _bucket, _sum, _count). */
export function queryableNames(f: ReadonlyMap<string, Family>): Set<string> {
  const out = new Set<string>(['up']); // added by Prometheus to every target
  for (const [name, { type }] of f) {
    out.add(name);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) out.add(name + s);
    if (type === 'summary') for (const s of ['_sum', '_count']) out.add(name + s);
  }
  return out;
}

/** One value of a sample, `name{labels}` with labels exactly as exposed (sorted by the exposer), or undefined. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1]!, x[2]!]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[4]);
  }
  return undefined;
}

const KEYWORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'atan2', 'inf', 'nan']);

/**
 * The metric names a PromQL expression selects. A light tokenizer, enough for the
 * expressions we write: strings, label matchers, ranges and grouping lists are removed
 * first; then every identifier not called as a function and not a keyword is a metric.
 */
export function promqlMetricNames(expr: string): Set<string> {
  let e = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  e = e.replace(/\{[^}]*\}/g, ' ').replace(/\[[^\]]*\]/g, ' ');
  e = e.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  e = e.replace(/\boffset\s+\S+/g, ' ');
  const out = new Set<string>();
  for (const m of e.matchAll(/(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    if (m[2] !== undefined || KEYWORDS.has(m[1]!.toLowerCase())) continue;
    if (/^\d/.test(m[1]!) || /^[0-9.]+[smhdwy]$/.test(m[1]!)) continue;
    out.add(m[1]!);
  }
  return out;
}

/** Every `expr` of the Grafana dashboard (panels, nested rows, templating queries). */
export function dashboardExprs(file = path.join(REPO, 'deploy/grafana/nodekeeper.json')): string[] {
  const out: string[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (k === 'expr' && typeof x === 'string') out.push(x);
        else if (k === 'definition' && typeof x === 'string') out.push(x.replace(/^label_values\((.*),\s*\w+\)$/, '$1'));
        else walk(x);
      }
    }
  };
  walk(JSON.parse(readFileSync(file, 'utf8')));
  return out.map((x) => x.replaceAll('$__rate_interval', '5m'));
}

/** The table of docs/coordinator.md's "Metrics" section: name -> { type, labels }. */
export function documentedMetrics(file = path.join(REPO, 'docs/coordinator.md')): Map<string, { type: string; labels: string[] }> {
  const text = readFileSync(file, 'utf8');
  const start = text.indexOf('\n## Metrics\n');
  if (start < 0) throw new Error('docs/coordinator.md has no "## Metrics" section');
  const end = text.indexOf('\n## ', start + 1);
  const out = new Map<string, { type: string; labels: string[] }>();
  for (const line of text.slice(start, end < 0 ? undefined : end).split('\n')) {
    const m = /^\| `([a-z_:][a-z0-9_:]*)` \| (counter|gauge|histogram|summary) \|([^|]*)\|/.exec(line);
    if (m === null) continue;
    const labels = [...m[3]!.matchAll(/`([a-z_][a-z0-9_]*)`/g)].map((x) => x[1]!);
    out.set(m[1]!, { type: m[2]!, labels });
  }
  return out;
}

/** Label names of each family in an exposition (histograms without `le`). */
export function labelNames(text: string): Map<string, Set<string>> {
  const f = families(text);
  const out = new Map<string, Set<string>>([...f.keys()].map((n) => [n, new Set<string>()]));
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} \S+$/.exec(line);
    if (m === null) continue;
    const base = f.has(m[1]!) ? m[1]! : m[1]!.replace(/_(bucket|sum|count)$/, '');
    for (const l of m[2]!.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) if (l[1] !== 'le' && l[1] !== 'quantile') out.get(base)?.add(l[1]!);
  }
  return out;
}
