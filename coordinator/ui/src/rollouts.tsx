/**
 * Live rollouts: phase, batch progress, canaries, the soak timer, each machine's step,
 * the stop reason, and (admins only) Pause / Resume.
 */
import { computed, useComputed, useSignal, type ReadonlySignal, type Signal } from '@preact/signals';
import { memo } from 'preact/compat';
import { post, ApiError } from './api.ts';
import type { Rollout, RolloutAction, RolloutMachinePhase, RolloutMachineStatus, RolloutPhase, RolloutSpecView, RolloutStatus } from '@nodekeeper/api';
import { duration } from './model.ts';
import type { KeyedStore } from './live.ts';

/** The fields of a Rollout the page reads, picked from the contract (type only: erased from the bundle). */
export type RolloutView = {
  readonly metadata: Readonly<Pick<Rollout['metadata'], 'name'>>;
  readonly spec: {
    readonly packages: RolloutSpecView['packages'];
    readonly strategy: Readonly<Pick<RolloutSpecView['strategy'], 'soakSeconds'>>;
  };
  readonly status: Readonly<Pick<RolloutStatus, 'phase' | 'reason' | 'message' | 'continueWith' | 'batch' | 'counts' | 'canary' | 'lastTransitionTime' | 'completedTime'>> & {
    readonly machines: ReadonlyArray<Readonly<Pick<RolloutMachineStatus, 'name' | 'phase' | 'fromVersion' | 'toVersion' | 'step' | 'reason' | 'since'>>>;
  };
};

/** Machines a rollout is changing now (installing, soaking, rolling back): drawn as Updating. */
export function movingMachines(rollouts: KeyedStore<Rollout>): ReadonlySignal<ReadonlySet<string>> {
  let prev: ReadonlySet<string> = new Set();
  return computed(() => {
    rollouts.version.value;
    const next = new Set<string>();
    for (const r of rollouts.values()) {
      if (!ACTIVE.has(r.status.phase)) continue;
      for (const m of r.status.machines) if (MOVING.has(m.phase)) next.add(m.name);
    }
    // The same set keeps its identity: tiles re-render only when it really changed.
    if (next.size === prev.size && [...next].every((n) => prev.has(n))) return prev;
    prev = next;
    return next;
  });
}

// Typed by the contract's phases: a phase renamed there fails here.
const MOVING: ReadonlySet<string> = new Set<RolloutMachinePhase>(['Installing', 'Soaking', 'RollingBack']);
const ACTIVE: ReadonlySet<string> = new Set<RolloutPhase>(['Pending', 'Canary', 'Soaking', 'Progressing', 'RollingBack', 'Paused']);
const STOPPED: ReadonlySet<string> = new Set<RolloutPhase>(['Paused', 'Failed', 'RolledBack']);

export function Rollouts({ rollouts, admin, now }: { rollouts: KeyedStore<Rollout>; admin: boolean; now: Signal<number> }) {
  // Active first, then the most recent; finished ones folded below.
  const order = useComputed(() => {
    rollouts.version.value;
    const all = rollouts.values();
    const active = all.filter((r) => ACTIVE.has(r.status.phase));
    const done = all.filter((r) => !ACTIVE.has(r.status.phase)).sort((a, b) => (b.status.completedTime ?? '').localeCompare(a.status.completedTime ?? ''));
    return { active: active.map((r) => r.metadata.name), done: done.map((r) => r.metadata.name) };
  });
  const { active, done } = order.value;
  return (
    <div class="rollouts">
      {active.length === 0 && <p class="muted">No rollout in progress.</p>}
      {active.map((n) => <RolloutCard key={n} r={rollouts.items.get(n)!} admin={admin} now={now} />)}
      {done.length > 0 && (
        <details class="done">
          <summary>{done.length} finished rollout{done.length === 1 ? '' : 's'}</summary>
          {done.slice(0, 20).map((n) => <RolloutCard key={n} r={rollouts.items.get(n)!} admin={admin} now={now} compact />)}
        </details>
      )}
    </div>
  );
}

const RolloutCard = memo(({ r, admin, now, compact = false }: { r: Signal<RolloutView>; admin: boolean; now: Signal<number>; compact?: boolean }) => {
  const v = r.value;
  const s = v.status;
  const c = s.counts;
  const done = c.succeeded + c.skipped;
  const pct = c.total === 0 ? 0 : Math.round((done / c.total) * 100);
  const soak = v.spec.strategy.soakSeconds;
  const soakLeft = s.phase === 'Soaking' && s.lastTransitionTime !== null ? Date.parse(s.lastTransitionTime) + soak * 1000 - now.value : null;
  const moving = s.machines.filter((m) => m.phase !== 'Waiting' && m.phase !== 'Succeeded' && m.phase !== 'Skipped');
  return (
    <article class={`rollout ph-${s.phase}`} data-rollout={v.metadata.name} data-phase={s.phase} data-done={done} data-total={c.total}>
      <header>
        <b class="mono">{v.metadata.name}</b>
        <span class={`badge ph-${s.phase}`}>{s.phase}</span>
        <span class="muted">{v.spec.packages.map((p) => `${p.package} → ${p.version}`).join(', ')}</span>
        <span class="spacer" />
        {admin && !compact && <Actions name={v.metadata.name} phase={s.phase} />}
      </header>
      <div class="progress" title={`${done} of ${c.total} machines done`}>
        <i class="seg ready" style={{ flexGrow: done }} />
        <i class="seg updating" style={{ flexGrow: c.inProgress }} />
        <i class="seg notready" style={{ flexGrow: c.failed + c.rollingBack + c.rolledBack }} />
        <i class="seg rest" style={{ flexGrow: c.waiting }} />
      </div>
      <div class="facts">
        <span><b class="progress-text">{done}/{c.total}</b> machines ({pct}%)</span>
        <span>batch <b>{Math.min(s.batch.index + 1, s.batch.total)}</b> of {s.batch.total}</span>
        {s.canary.length > 0 && <span>canary <span class="mono">{s.canary.join(', ')}</span></span>}
        {c.failed > 0 && <span class="bad">{c.failed} failed</span>}
        {soakLeft !== null && <span class="soak">soaking: {duration(soakLeft)} left</span>}
      </div>
      {STOPPED.has(s.phase) && (s.reason || s.message) && (
        <p class="stop"><b>{s.reason}</b> {s.message}{s.continueWith && <span class="muted"> · to continue: <code>{s.continueWith}</code></span>}</p>
      )}
      {!compact && moving.length > 0 && (
        <table class="steps">
          <tbody>
            {moving.slice(0, 12).map((m) => (
              <tr key={m.name} data-step={m.name}>
                <td class="mono">{m.name}</td>
                <td><span class={`badge mp-${m.phase}`}>{m.phase}</span></td>
                <td class="mono">{m.fromVersion ?? '?'} → {m.toVersion ?? '?'}</td>
                <td>{m.step ?? m.reason}</td>
                <td class="muted">{m.since === null ? '' : duration(now.value - Date.parse(m.since))}</td>
              </tr>
            ))}
            {moving.length > 12 && <tr><td colSpan={5} class="muted">and {moving.length - 12} more moving</td></tr>}
          </tbody>
        </table>
      )}
    </article>
  );
});

function Actions({ name, phase }: { name: string; phase: RolloutPhase }) {
  const error = useSignal('');
  const busy = useSignal(false);
  const act = (what: Extract<RolloutAction, 'pause' | 'resume'>) => async () => {
    busy.value = true;
    error.value = '';
    try {
      await post(`/v1/rollouts/${encodeURIComponent(name)}/${what}`);
    } catch (err) {
      error.value = err instanceof ApiError ? `${err.code}: ${err.message}` : String(err);
    } finally {
      busy.value = false;
    }
  };
  return (
    <span class="actions">
      {error.value && <span class="bad">{error.value}</span>}
      {phase === 'Paused'
        ? <button type="button" class="btn primary" data-action="resume" disabled={busy.value} onClick={act('resume')}>Resume</button>
        : <button type="button" class="btn" data-action="pause" disabled={busy.value || phase === 'RollingBack'} onClick={act('pause')}>Pause</button>}
    </span>
  );
}
