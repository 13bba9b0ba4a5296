/** Remediation stories: the ladder each machine is on, its faults, NeedsHuman first. */
import { useComputed, type Signal } from '@preact/signals';
import { memo } from 'preact/compat';
import type { FaultObject, HistoryObject, Remediation, RemediationFleetStatus } from '@nodekeeper/api';
import type { KeyedStore } from './live.ts';

/** The fields of a Remediation the page reads, picked from the contract (type only: erased from the bundle). */
export type RemediationView = Readonly<Pick<Remediation, 'machine' | 'phase' | 'reason' | 'message' | 'rule' | 'step' | 'action' | 'paused'>> & {
  readonly faults: ReadonlyArray<Readonly<Pick<FaultObject, 'type' | 'reason' | 'message'>>>;
  readonly history: ReadonlyArray<Readonly<Pick<HistoryObject, 'at' | 'rule' | 'step' | 'action' | 'result'>>>;
};

/** The fleet-wide switches, from the list's `status` (absent until the first list). */
type SwitchStatus = Partial<Readonly<Pick<RemediationFleetStatus, 'paused' | 'dryRun' | 'storm' | 'maxConcurrent'>>>;

const rank = (r: RemediationView) => (r.phase === 'NeedsHuman' ? 0 : r.phase === 'Running' ? 1 : r.phase === 'Idle' ? 3 : 2);

export function Remediations({ stories }: { stories: KeyedStore<Remediation> }) {
  const order = useComputed(() => {
    stories.version.value;
    return stories.values().sort((a, b) => rank(a) - rank(b) || a.machine.localeCompare(b.machine)).map((r) => r.machine);
  });
  const status = useComputed(() => (stories.listExtra.value['status'] ?? {}) as SwitchStatus);
  const st = status.value;
  // Counted from the stories (live), not the list's status (as of the list).
  const needsHuman = useComputed(() => {
    stories.version.value;
    return stories.values().filter((r) => r.phase === 'NeedsHuman').length;
  });
  const running = useComputed(() => {
    stories.version.value;
    return stories.values().filter((r) => r.phase === 'Running').length;
  });
  return (
    <div class="remediations">
      <div class="facts">
        {needsHuman.value > 0 ? <span class="badge ph-Failed">{needsHuman.value} NeedsHuman</span> : <span class="muted">nothing needs a human</span>}
        {st.maxConcurrent !== undefined && <span>{running.value}/{st.maxConcurrent} repairs in flight</span>}
        {st.paused && <span class="badge ph-Paused">remediation paused</span>}
        {st.dryRun && <span class="badge ph-Paused">dry run</span>}
        {st.storm?.active && <span class="badge ph-Failed" title={st.storm.message}>storm guard: {st.storm.reason}</span>}
      </div>
      {order.value.length === 0 && <p class="muted">No repair under way, no fault held.</p>}
      {order.value.slice(0, 50).map((k) => <Story key={k} r={stories.items.get(k)!} />)}
    </div>
  );
}

const Story = memo(({ r }: { r: Signal<RemediationView> }) => {
  const v = r.value;
  return (
    <article class={`story ph-${v.phase}`} data-remediation={v.machine} data-phase={v.phase}>
      <header>
        <b class="mono">{v.machine}</b>
        <span class={`badge rp-${v.phase}`}>{v.phase}</span>
        {v.rule !== null && <span class="muted">rule {v.rule}{v.step !== null ? `, step ${v.step + 1}` : ''}{v.action ? ` (${v.action})` : ''}</span>}
        {v.paused && <span class="badge ph-Paused">paused</span>}
      </header>
      {v.phase === 'Idle' ? v.faults.length > 0 && <p class="muted">fault held; no repair started yet</p> : (v.reason || v.message) && <p><b>{v.reason}</b> {v.message}</p>}
      {v.faults.length > 0 && <p class="faults">{v.faults.map((f) => <span key={f.type} class="fault" title={f.message}>{f.type} · {f.reason}</span>)}</p>}
      {v.history.length > 0 && (
        <ol class="history">
          {v.history.slice(-4).map((h, i) => <li key={i}><span class="muted">{h.at === null ? '' : new Date(h.at).toLocaleTimeString()}</span> {h.rule} #{h.step + 1} {h.action}: {h.result}</li>)}
        </ol>
      )}
    </article>
  );
});
