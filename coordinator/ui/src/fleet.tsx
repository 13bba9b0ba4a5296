/**
 * The fleet: counts, filters, a heatmap of tiles coloured by state (or counts per zone
 * above AGGREGATE_ABOVE), the package distribution, and a virtualised machine list.
 */
import { computed, useComputed, useSignal, type ReadonlySignal, type Signal } from '@preact/signals';
import { memo } from 'preact/compat';
import type { Machine } from '@nodekeeper/api';
import { AGGREGATE_ABOVE, aggregate, classify, faultsOf, kubeletOf, labelFilter, machineFilter, packageDistribution, TILE_LABEL, TILE_STATES, totals, windowRange, zoneOf, type Filter, type MachineView } from './model.ts';
import type { KeyedStore } from './live.ts';

/** The store holds Machines as the server serves them; the views below read a few fields. */
type Machines = KeyedStore<Machine>;

/** Keeps the previous array when the new one has the same keys: no re-render for nothing. */
function stable(next: readonly string[], prev: readonly string[] | undefined): readonly string[] {
  return prev !== undefined && prev.length === next.length && prev.every((k, i) => k === next[i]) ? prev : next;
}

export function useVisible(machines: Machines, filter: Signal<Filter>): ReadonlySignal<readonly string[]> {
  let prev: readonly string[] | undefined;
  return useComputed(() => {
    machines.version.value;
    const keep = machineFilter(filter.value);
    const keys = machines.keys.value.filter((k) => {
      const m = machines.items.get(k)?.value;
      return m !== undefined && keep(m);
    });
    prev = stable(keys, prev);
    return prev;
  });
}

export function Summary({ machines, moving }: { machines: Machines; moving: ReadonlySignal<ReadonlySet<string>> }) {
  const counts = useComputed(() => {
    machines.version.value;
    return totals(machines.values(), moving.value);
  });
  const total = useComputed(() => machines.keys.value.length);
  return (
    <div class="summary">
      <div class="stat"><span class="n">{total}</span><span class="l">machines</span></div>
      {TILE_STATES.filter((s) => s !== 'revoked' || counts.value.revoked > 0).map((s) => (
        <div class={`stat st-${s}${counts.value[s] === 0 ? ' zero' : ''}`} key={s}><span class="n">{counts.value[s]}</span><span class="l"><i class={`dot ${s}`} />{TILE_LABEL[s]}</span></div>
      ))}
    </div>
  );
}

export function Filters({ machines, filter }: { machines: Machines; filter: Signal<Filter> }) {
  const options = useComputed(() => {
    machines.version.value;
    const zones = new Set<string>();
    const versions = new Set<string>();
    for (const m of machines.values()) {
      zones.add(zoneOf(m));
      versions.add(kubeletOf(m));
    }
    return { zones: [...zones].sort(), versions: [...versions].sort() };
  });
  const label = useComputed(() => labelFilter(filter.value.label));
  const set = (k: keyof Filter) => (e: Event) => (filter.value = { ...filter.value, [k]: (e.target as HTMLInputElement).value });
  const bad = label.value.valid ? null : label.value.error;
  return (
    <div class="filters" role="search">
      <input type="search" placeholder="name" aria-label="filter by name" value={filter.value.text} onInput={set('text')} />
      <span class="field">
        {/* An invalid selector is marked and ignored (every machine passes it), never read as "no match". */}
        <input type="search" placeholder="label (pool=web,tier!=db,!gpu)" aria-label="filter by label" value={filter.value.label} onInput={set('label')}
          aria-invalid={bad === null ? undefined : 'true'} aria-describedby={bad === null ? undefined : 'label-filter-error'} title={bad === null ? 'a label selector, as nkctl -l reads it' : `ignored: ${bad}`} />
        {bad !== null && <span id="label-filter-error" class="field-error" role="status">ignored: {bad}</span>}
      </span>
      <select aria-label="filter by zone" value={filter.value.zone} onChange={set('zone')}>
        <option value="">all zones</option>
        {options.value.zones.map((z) => <option key={z} value={z}>{z}</option>)}
      </select>
      <select aria-label="filter by kubelet version" value={filter.value.version} onChange={set('version')}>
        <option value="">all kubelet versions</option>
        {options.value.versions.map((v) => <option key={v} value={v}>{v}</option>)}
      </select>
    </div>
  );
}

/** One machine's tile: subscribes to its own object only. */
const Tile = memo(({ m, selected, moving }: { m: Signal<MachineView>; selected: Signal<string | null>; moving: ReadonlySignal<ReadonlySet<string>> }) => {
  const v = m.value;
  const state = classify(v, moving.value.has(v.metadata.name));
  const faults = faultsOf(v);
  const title = `${v.metadata.name} · ${TILE_LABEL[state]}${v.status.phaseReason ? ` (${v.status.phaseReason})` : ''}${faults.length ? ` · ${faults.join(', ')}` : ''} · ${zoneOf(v)} · kubelet ${kubeletOf(v)}`;
  return <button type="button" class={`tile ${state}`} data-machine={v.metadata.name} data-state={state} title={title} aria-label={title} onClick={() => (selected.value = v.metadata.name)} />;
});

export function Heatmap({ machines, visible, selected, moving }: { machines: Machines; visible: ReadonlySignal<readonly string[]>; selected: Signal<string | null>; moving: ReadonlySignal<ReadonlySet<string>> }) {
  const keys = visible.value;
  if (keys.length > AGGREGATE_ABOVE) return <ZoneBars machines={machines} visible={visible} />;
  const byZone = new Map<string, string[]>();
  for (const k of keys) {
    const m = machines.items.get(k)?.value;
    if (m === undefined) continue;
    const z = zoneOf(m);
    (byZone.get(z) ?? byZone.set(z, []).get(z)!).push(k);
  }
  return (
    <div class={`heatmap${keys.length > 400 ? " dense" : ""}`}>
      {[...byZone.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([zone, ks]) => (
        <div class="zone" key={zone}>
          <div class="zone-name">{zone} <span class="muted">{ks.length}</span></div>
          <div class="tiles">{ks.map((k) => <Tile key={k} m={machines.items.get(k)!} selected={selected} moving={moving} />)}</div>
        </div>
      ))}
      {keys.length === 0 && <p class="muted">No machine matches.</p>}
    </div>
  );
}

/** Above the threshold: one bar per zone, split by state, with counts. */
function ZoneBars({ machines, visible }: { machines: Machines; visible: ReadonlySignal<readonly string[]> }) {
  const zones = useComputed(() => aggregate(visible.value.map((k) => machines.items.get(k)!.value)));
  return (
    <div class="zonebars" data-aggregated="true">
      <p class="muted">{visible.value.length} machines: counts per zone (tiles above {AGGREGATE_ABOVE}).</p>
      {zones.value.map((z) => (
        <div class="zonebar" key={z.zone}>
          <span class="zone-name">{z.zone}</span>
          <span class="bar">
            {TILE_STATES.filter((s) => z.counts[s] > 0).map((s) => <i key={s} class={`seg ${s}`} style={{ flexGrow: z.counts[s] }} title={`${TILE_LABEL[s]}: ${z.counts[s]}`} />)}
          </span>
          <span class="count">{z.total}{z.counts.notready + z.counts.unknown > 0 && <b class="bad"> · {z.counts.notready + z.counts.unknown} down</b>}</span>
        </div>
      ))}
    </div>
  );
}

export function Packages({ machines }: { machines: Machines }) {
  const dist = useComputed(() => {
    machines.version.value;
    return packageDistribution(machines.values());
  });
  if (dist.value.length === 0) return <p class="muted">No package reported yet.</p>;
  return (
    <div class="packages">
      {dist.value.map((p) => (
        <div class="pkg" key={p.name} data-package={p.name}>
          <div class="pkg-head">
            <b>{p.name}</b>
            <span class="muted">{p.desired === null ? 'no desired version' : `desired ${p.desired} · ${p.atDesired}/${p.machines} there`}</span>
          </div>
          <div class="bar">
            {p.versions.map((v, i) => <i key={v.version} class={`seg ${v.desired ? 'ready' : p.desired !== null ? 'updating' : i === 0 ? 'neutral' : 'alt'}`} style={{ flexGrow: v.count }} title={`${v.version}: ${v.count}`} />)}
          </div>
          <div class="legend">{p.versions.slice(0, 4).map((v) => <span key={v.version} class={v.desired ? 'ok' : ''} data-version={v.version} data-count={v.count}>{v.version} <b>{v.count}</b></span>)}{p.versions.length > 4 && <span class="muted">+{p.versions.length - 4} more</span>}</div>
        </div>
      ))}
    </div>
  );
}

const ROW = 28;
const VIEW = 336;

/** The machine list, virtualised: only the rows in view exist in the DOM. */
export function MachineList({ machines, visible, selected, moving }: { machines: Machines; visible: ReadonlySignal<readonly string[]>; selected: Signal<string | null>; moving: ReadonlySignal<ReadonlySet<string>> }) {
  const scroll = useSignal(0);
  const keys = visible.value;
  const { start, end } = windowRange(scroll.value, VIEW, ROW, keys.length);
  return (
    <div class="mlist">
      <div class="mrow head"><span>machine</span><span>state</span><span>zone</span><span>kubelet</span><span>containerd</span><span>faults</span></div>
      <div class="mscroll" style={{ height: `${Math.min(VIEW, keys.length * ROW + 2)}px` }} onScroll={(e) => (scroll.value = (e.target as HTMLElement).scrollTop)}>
        <div style={{ height: `${keys.length * ROW}px`, position: 'relative' }}>
          {keys.slice(start, end).map((k, i) => <Row key={k} m={machines.items.get(k)!} top={(start + i) * ROW} selected={selected} moving={moving} />)}
        </div>
      </div>
    </div>
  );
}

const Row = memo(({ m, top, selected, moving }: { m: Signal<MachineView>; top: number; selected: Signal<string | null>; moving: ReadonlySignal<ReadonlySet<string>> }) => {
  const v = m.value;
  const state = classify(v, moving.value.has(v.metadata.name));
  const name = v.metadata.name;
  return (
    <div class={`mrow${selected.value === name ? ' sel' : ''}`} style={{ top: `${top}px` }} data-row={name} onClick={() => (selected.value = name)}>
      <span class="mono">{name}</span>
      <span><i class={`dot ${state}`} />{v.status.phase}{v.status.phaseReason && v.status.phase !== 'Ready' ? <span class="muted reason">{v.status.phaseReason}</span> : null}</span>
      <span>{zoneOf(v)}</span>
      <span class="mono">{kubeletOf(v)}</span>
      <span class="mono">{v.status.containerd?.semver ?? v.status.containerd?.version ?? ''}</span>
      <span class="bad">{faultsOf(v).join(', ')}</span>
    </div>
  );
});

export const selectedMachine = (machines: Machines, selected: Signal<string | null>) => computed(() => (selected.value === null ? null : machines.items.get(selected.value)?.value ?? null));
