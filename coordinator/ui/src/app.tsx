/** The page: sign-in, then the fleet, rollouts, remediation and the host view, live. */
import { signal, useSignal, type Signal } from '@preact/signals';
import { useEffect, useMemo } from 'preact/hooks';
import { currentSession, getJson, signIn, signOut, ApiError, type Session } from './api.ts';
import { Filters, Heatmap, MachineList, Packages, selectedMachine, Summary, useVisible } from './fleet.tsx';
import { KeyedStore, listWatch, type LinkState } from './live.ts';
import type { HostRegistration, Machine, Remediation, Rollout } from '@nodekeeper/api';
import { faultsOf, kubeletOf, NO_FILTER, zoneOf, type Filter } from './model.ts';
import { Remediations } from './remediations.tsx';
import { movingMachines, Rollouts } from './rollouts.tsx';

export function App() {
  const session = useSignal<Session | null | undefined>(undefined);
  useEffect(() => {
    currentSession().then((s) => (session.value = s), () => (session.value = null));
  }, []);
  if (session.value === undefined) return <div class="center muted">loading…</div>;
  if (session.value === null) return <SignIn onSignedIn={(s) => (session.value = s)} />;
  return <Fleet session={session.value} onSignedOut={() => (session.value = null)} />;
}

function SignIn({ onSignedIn }: { onSignedIn: (s: Session) => void }) {
  const error = useSignal('');
  const submit = async (e: Event) => {
    e.preventDefault();
    const input = (e.target as HTMLFormElement).elements.namedItem('credential') as HTMLInputElement;
    const credential = input.value.trim();
    // The credential lives in this input until the request is sent, and nowhere else.
    input.value = '';
    try {
      onSignedIn(await signIn(credential));
    } catch (err) {
      error.value = err instanceof ApiError ? `${err.code}: ${err.message}` : String(err);
    }
  };
  return (
    <div class="center">
      <form class="signin" onSubmit={submit} autocomplete="off">
        <h1><Logo /> nodekeeper</h1>
        <p class="muted">Sign in with an API credential (<code>nka.…</code>): an admin one may pause and resume rollouts, a read-only one sees everything.</p>
        <input name="credential" type="password" placeholder="nka.…" aria-label="API credential" autocomplete="off" spellcheck={false} required />
        <button type="submit" class="btn primary">Sign in</button>
        {error.value && <p class="bad" role="alert">{error.value}</p>}
      </form>
    </div>
  );
}

const Logo = () => <svg class="logo" viewBox="0 0 16 16" aria-hidden="true"><rect x="1" y="1" width="6" height="6" rx="1.5" /><rect x="9" y="1" width="6" height="6" rx="1.5" /><rect x="1" y="9" width="6" height="6" rx="1.5" /><rect x="9" y="9" width="6" height="6" rx="1.5" class="warn" /></svg>;

/** The fields of `GET /v1/host` the page reads; `{ registered: false }` too when it cannot be read. */
type HostView = Readonly<Pick<HostRegistration, 'registered' | 'cluster' | 'server' | 'lastSyncTime' | 'lastLeaseRenewTime' | 'lastError' | 'machinesMirrored'>> | { readonly registered: false };

function Fleet({ session, onSignedOut }: { session: Session; onSignedOut: () => void }) {
  const stores = useMemo(() => ({
    machines: new KeyedStore<Machine>(),
    rollouts: new KeyedStore<Rollout>(),
    remediations: new KeyedStore<Remediation>(),
  }), []);
  const link = useMemo(() => ({ machines: signal<LinkState>('connecting'), rollouts: signal<LinkState>('connecting'), remediations: signal<LinkState>('connecting') }), []);
  const host = useSignal<HostView | null>(null);
  const now = useSignal(Date.now());
  const filter = useSignal<Filter>(NO_FILTER);
  const selected = useSignal<string | null>(null);
  const visible = useVisible(stores.machines, filter);
  const moving = useMemo(() => movingMachines(stores.rollouts), []);
  const admin = session.role === 'admin';

  useEffect(() => {
    const abort = new AbortController();
    const lost = () => onSignedOut();
    void listWatch('/v1/machines', stores.machines, link.machines, lost, abort.signal);
    void listWatch('/v1/rollouts', stores.rollouts, link.rollouts, lost, abort.signal);
    void listWatch('/v1/remediations', stores.remediations, link.remediations, lost, abort.signal);
    getJson<HostRegistration>('/v1/host', abort.signal).then((h) => (host.value = h), () => (host.value = { registered: false }));
    // A clock for soak timers and ages: redraws only the components that show a time.
    const tick = setInterval(() => (now.value = Date.now()), 1000);
    return () => {
      abort.abort();
      clearInterval(tick);
    };
  }, []);

  const out = async () => {
    await signOut();
    onSignedOut();
  };
  return (
    <div class="page">
      <header class="top">
        <h1><Logo /> nodekeeper <span class="muted">fleet</span></h1>
        <Link link={link} />
        <span class="spacer" />
        <span class="who" data-role={session.role}>{admin ? 'admin' : 'read-only'}</span>
        <button type="button" class="btn" onClick={out}>Sign out</button>
      </header>
      <main class="grid">
        <section class="panel fleet" aria-label="fleet">
          <h2>Fleet</h2>
          <Summary machines={stores.machines} moving={moving} />
          <Filters machines={stores.machines} filter={filter} />
          <Heatmap machines={stores.machines} visible={visible} selected={selected} moving={moving} />
          <Detail machines={stores.machines} selected={selected} />
          <MachineList machines={stores.machines} visible={visible} selected={selected} moving={moving} />
        </section>
        <div class="side">
          <section class="panel" aria-label="rollouts"><h2>Rollouts</h2><Rollouts rollouts={stores.rollouts} admin={admin} now={now} /></section>
          <section class="panel" aria-label="packages"><h2>Packages</h2><Packages machines={stores.machines} /></section>
          <section class="panel" aria-label="remediation"><h2>Remediation</h2><Remediations stories={stores.remediations} /></section>
          <section class="panel" aria-label="host cluster"><h2>Host cluster</h2><Host host={host} /></section>
        </div>
      </main>
    </div>
  );
}

function Link({ link }: { link: Record<string, Signal<LinkState>> }) {
  const states = Object.values(link).map((s) => s.value);
  const state: LinkState = states.every((s) => s === 'live') ? 'live' : states.includes('unavailable') ? 'unavailable' : states.includes('retrying') ? 'retrying' : 'connecting';
  const text = { live: 'live', connecting: 'connecting…', retrying: 'reconnecting…', unavailable: 'watch unavailable' }[state];
  return <span class={`link ${state}`} data-link={state}><i class="dot" />{text}</span>;
}

function Detail({ machines, selected }: { machines: KeyedStore<Machine>; selected: Signal<string | null> }) {
  const m = useMemo(() => selectedMachine(machines, selected), []);
  const v = m.value;
  if (v === null) return <p class="muted hint">Select a tile or a row for its details.</p>;
  const faults = faultsOf(v);
  return (
    <div class="detail" data-detail={v.metadata.name}>
      <b class="mono">{v.metadata.name}</b> <span>{v.status.phase}</span> <span class="muted">{v.status.phaseReason} {v.status.phaseMessage}</span>
      <div class="facts"><span>zone {zoneOf(v)}</span><span>kubelet {kubeletOf(v)}</span><span>agent {v.status.agentVersion ?? '?'}</span>{faults.length > 0 && <span class="bad">{faults.join(', ')}</span>}</div>
      <button type="button" class="btn small" onClick={() => (selected.value = null)}>close</button>
    </div>
  );
}

function Host({ host }: { host: Signal<HostView | null> }) {
  const h = host.value;
  if (h === null) return <p class="muted">…</p>;
  if (h.registered !== true) return <p class="muted" data-host="unregistered">This coordinator is not registered with a host cluster (<code>nkctl register</code>; docs/host.md).</p>;
  return (
    <dl class="host" data-host="registered">
      <dt>cluster</dt><dd class="mono">{h.cluster ?? ''}</dd>
      <dt>host API</dt><dd class="mono">{h.server ?? ''}</dd>
      <dt>last sync</dt><dd>{h.lastSyncTime ?? 'never'}</dd>
      <dt>lease renewed</dt><dd>{h.lastLeaseRenewTime ?? 'never'}</dd>
      <dt>machines mirrored</dt><dd>{h.machinesMirrored}</dd>
      {h.lastError && <><dt>last error</dt><dd class="bad">{h.lastError.code}: {h.lastError.message}</dd></>}
    </dl>
  );
}
