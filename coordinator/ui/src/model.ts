/**
 * The fleet page's decisions, pure (no DOM, no I/O): how a machine is coloured, what a
 * filter keeps, the aggregation above the threshold, the window of a virtual list, the
 * package distribution, and reading a watch stream's lines. test/ui-model.test.ts.
 */
import type { Bookmark, Machine, MachineStatus, WatchEventType, WatchStatus } from '@nodekeeper/api';
import { LabelSelectorError, labelsMatch, parseLabelSelector, type LabelRequirement } from '@nodekeeper/api/selector';

/**
 * The fields of a Machine the page reads, picked from the contract (@nodekeeper/api, type
 * only: esbuild erases it, so no schema code reaches the bundle). A field renamed or
 * retyped there breaks the page's type check instead of reading as undefined here.
 */
type Component = 'kubelet' | 'containerd' | 'cni';
type ProbeView<K extends Component> = Pick<NonNullable<MachineStatus[K]>, 'health' | 'reason' | 'version' | 'semver'>;
export type MachinePackageView = Pick<NonNullable<MachineStatus['packages']>[number], 'name' | 'current' | 'desired' | 'state'>;
export type MachineView = {
  readonly metadata: Readonly<Pick<Machine['metadata'], 'name' | 'labels'>>;
  readonly spec: Readonly<Pick<Machine['spec'], 'zone'>>;
  readonly status: Readonly<Pick<MachineStatus, 'phase' | 'phaseReason' | 'phaseMessage' | 'revoked' | 'agentVersion'>> & {
    readonly [K in Component]?: Readonly<ProbeView<K>>;
  } & {
    readonly host?: Readonly<Pick<NonNullable<MachineStatus['host']>, 'health' | 'reason'>>;
    readonly packages?: ReadonlyArray<Readonly<MachinePackageView>>;
  };
};

/** What a tile's colour says, worst first. */
export const TILE_STATES = ['notready', 'unknown', 'fault', 'updating', 'pending', 'ready', 'revoked'] as const;
export type TileState = (typeof TILE_STATES)[number];

export const TILE_LABEL: Readonly<Record<TileState, string>> = {
  notready: 'NotReady', unknown: 'Unknown (silent)', fault: 'Ready, with a fault', updating: 'Updating', pending: 'Pending', ready: 'Ready', revoked: 'Revoked',
};

const COMPONENTS = ['kubelet', 'containerd', 'cni', 'host'] as const;

/** The faults of a machine: its components that are unhealthy, as `kubelet: HealthzFailed`. */
export function faultsOf(m: MachineView): string[] {
  const out: string[] = [];
  for (const c of COMPONENTS) {
    const s = m.status[c];
    if (s?.health === 'unhealthy') out.push(`${c}: ${s.reason || 'unhealthy'}`);
  }
  return out;
}

/** `moving`: a rollout is installing, soaking or rolling back on this machine now. */
export function classify(m: MachineView, moving = false): TileState {
  if (m.status.revoked === true) return 'revoked';
  switch (m.status.phase) {
    case 'NotReady': return 'notready';
    case 'Unknown': return 'unknown';
    case 'Pending': return 'pending';
    default: break;
  }
  if (faultsOf(m).length > 0) return 'fault';
  if (moving || (m.status.packages ?? []).some((p) => p.state === 'Updating')) return 'updating';
  return 'ready';
}

export const zoneOf = (m: MachineView): string => m.spec.zone ?? '(no zone)';
export const labelsOf = (m: MachineView): Readonly<Record<string, string>> => m.metadata.labels;
/** The kubelet version a machine runs (semver when known), the version the filter means. */
export const kubeletOf = (m: MachineView): string => m.status.kubelet?.semver ?? m.status.kubelet?.version ?? '(unknown)';

export interface Filter {
  /** A label selector as nkctl's `-l` reads it (`pool=web,tier!=db,!gpu`); empty: any. */
  readonly label: string;
  readonly zone: string;
  readonly version: string;
  readonly text: string;
}

export const NO_FILTER: Filter = { label: '', zone: '', version: '', text: '' };

/**
 * The label filter as typed: its requirements, or why it is not a selector. An invalid
 * one is shown as invalid and ignored (every machine passes it), never read as "no match".
 */
export type LabelFilter =
  | { readonly valid: true; readonly requirements: readonly LabelRequirement[] }
  | { readonly valid: false; readonly requirements: readonly []; readonly error: string };

export function labelFilter(text: string): LabelFilter {
  try {
    return { valid: true, requirements: parseLabelSelector(text) };
  } catch (err) {
    if (err instanceof LabelSelectorError) return { valid: false, requirements: [], error: `"${err.part}" ${err.why}` };
    throw err;
  }
}

/** The filter as a predicate, the label selector parsed once for the whole fleet. */
export function machineFilter(f: Filter): (m: MachineView) => boolean {
  const { requirements } = labelFilter(f.label);
  return (m) =>
    (f.zone === '' || zoneOf(m) === f.zone)
    && (f.version === '' || kubeletOf(m) === f.version)
    && (f.text === '' || m.metadata.name.includes(f.text))
    && labelsMatch(requirements, labelsOf(m));
}

export const matches = (m: MachineView, f: Filter): boolean => machineFilter(f)(m);

/** Above this many machines shown, tiles give way to counts per zone and state. */
export const AGGREGATE_ABOVE = 2000;

export interface ZoneCounts {
  readonly zone: string;
  readonly total: number;
  readonly counts: Readonly<Record<TileState, number>>;
}

const zeroCounts = (): Record<TileState, number> => ({ notready: 0, unknown: 0, fault: 0, updating: 0, pending: 0, ready: 0, revoked: 0 });

/** Counts per zone and state, zones sorted by name. */
export function aggregate(machines: Iterable<MachineView>): ZoneCounts[] {
  const byZone = new Map<string, Record<TileState, number>>();
  for (const m of machines) {
    const z = zoneOf(m);
    let c = byZone.get(z);
    if (c === undefined) byZone.set(z, (c = zeroCounts()));
    c[classify(m)] += 1;
  }
  return [...byZone.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([zone, counts]) => ({ zone, counts, total: Object.values(counts).reduce((a, b) => a + b, 0) }));
}

/** Counts per state over the whole fleet. */
export function totals(machines: Iterable<MachineView>, moving: ReadonlySet<string> = new Set()): Record<TileState, number> {
  const c = zeroCounts();
  for (const m of machines) c[classify(m, moving.has(m.metadata.name))] += 1;
  return c;
}

/** The rows of a virtual list to render: those in view plus `overscan` either side. */
export function windowRange(scrollTop: number, viewport: number, rowHeight: number, count: number, overscan = 8): { start: number; end: number } {
  const first = Math.floor(Math.max(0, scrollTop) / rowHeight);
  const start = Math.min(count, Math.max(0, first - overscan));
  const end = Math.min(count, first + Math.ceil(viewport / rowHeight) + overscan);
  return { start, end: Math.max(start, end) };
}

export interface PackageDistribution {
  readonly name: string;
  /** The desired version most machines are told to run (null: no desired version set). */
  readonly desired: string | null;
  readonly machines: number;
  readonly atDesired: number;
  /** Running versions, most machines first. */
  readonly versions: ReadonlyArray<{ readonly version: string; readonly count: number; readonly desired: boolean }>;
}

/**
 * Each package's running versions against its desired one, from the machines' own
 * status (status.packages; kubelet, containerd and CNI as probed when no version is desired).
 */
export function packageDistribution(machines: Iterable<MachineView>): PackageDistribution[] {
  const acc = new Map<string, { desired: Map<string, number>; versions: Map<string, number>; atDesired: number; machines: number }>();
  const add = (name: string, current: string | null, desired: string | null) => {
    let a = acc.get(name);
    if (a === undefined) acc.set(name, (a = { desired: new Map(), versions: new Map(), atDesired: 0, machines: 0 }));
    a.machines += 1;
    const v = current ?? '(none)';
    a.versions.set(v, (a.versions.get(v) ?? 0) + 1);
    if (desired !== null) {
      a.desired.set(desired, (a.desired.get(desired) ?? 0) + 1);
      if (sameVersion(current, desired)) a.atDesired += 1;
    }
  };
  for (const m of machines) {
    const listed = new Set<string>();
    for (const p of m.status.packages ?? []) {
      listed.add(p.name);
      add(p.name, p.current, p.desired);
    }
    for (const c of ['kubelet', 'containerd', 'cni'] as const) {
      const s = m.status[c];
      if (!listed.has(c) && s !== undefined) add(c, s.semver ?? s.version, null);
    }
  }
  return [...acc.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([name, a]) => {
    const desired = [...a.desired.entries()].sort((x, y) => y[1] - x[1])[0]?.[0] ?? null;
    return {
      name, desired, machines: a.machines, atDesired: a.atDesired,
      versions: [...a.versions.entries()].sort((x, y) => y[1] - x[1] || x[0].localeCompare(y[0])).map(([version, count]) => ({ version, count, desired: desired !== null && sameVersion(version, desired) })),
    };
  });
}

/** `Kubernetes v1.31.3`, `v1.31.3` and `1.31.3` are one version. */
export function sameVersion(current: string | null, desired: string): boolean {
  if (current === null) return false;
  const bare = (v: string) => v.trim().replace(/^.*?v?(\d+\.\d+\.\d+\S*)$/, '$1');
  return bare(current) === bare(desired);
}

/** A watch line as the page uses it (the wire format is the contract's WatchEvent). */
export type WatchEvent =
  | { readonly type: Exclude<WatchEventType, 'BOOKMARK' | 'ERROR'>; readonly object: Record<string, unknown> }
  | { readonly type: 'BOOKMARK'; readonly resourceVersion: Bookmark['metadata']['resourceVersion'] }
  | { readonly type: 'ERROR'; readonly code: WatchStatus['code']; readonly message: WatchStatus['message'] };

/** One line of a watch stream, or null when it is not an event (the caller re-lists). */
export function parseWatchLine(line: string): WatchEvent | null {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const { type, object } = v as { type?: unknown; object?: unknown };
  if (typeof object !== 'object' || object === null) return null;
  const o = object as Record<string, unknown>;
  if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') return { type, object: o };
  if (type === 'BOOKMARK') {
    const rv = (o['metadata'] as { resourceVersion?: unknown } | undefined)?.resourceVersion;
    return typeof rv === 'string' ? { type, resourceVersion: rv } : null;
  }
  if (type === 'ERROR') return { type, code: typeof o['code'] === 'number' ? o['code'] : 0, message: String(o['message'] ?? '') };
  return null;
}

/** An object's key in its store: metadata.name, or `machine` for remediation stories. */
export function keyOf(o: Record<string, unknown>): string | null {
  const name = (o['metadata'] as { name?: unknown } | undefined)?.name;
  if (typeof name === 'string') return name;
  return typeof o['machine'] === 'string' ? o['machine'] : null;
}

/** `3m 05s` from milliseconds (never negative). */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}
