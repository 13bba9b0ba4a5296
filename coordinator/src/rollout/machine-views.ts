/**
 * The planner's view of every machine, built from the fleet view's records. The
 * controller asks for it on every tick; over 20,000 machines, building every view anew
 * each time was a large part of a quiet tick. A view is rebuilt only when what it is
 * built from changed, and an unchanged machine keeps the very same view object.
 */
import { AGENT_PACKAGE, observedVersion } from '../packages/cluster-package-version.ts';
import type { MachineRecord } from '../model/machine.ts';
import type { MachineView } from './types.ts';

const PACKAGES = ['kubelet', 'containerd', 'cni-plugins', AGENT_PACKAGE] as const;

interface Entry {
  view: MachineView;
  /** The report the view's versions were read from (a new report is a new object). */
  report: MachineRecord['report'];
  /** The agent version it was read with (the agent package's version comes from the hello). */
  agentVersion: string | null;
  /** The refresh that last saw the machine. */
  seen: number;
}

/** Keeps one view per enrolled machine, by name. */
export class MachineViews {
  private readonly entries = new Map<string, Entry>();
  private readonly views = new Map<string, MachineView>();
  private pass = 0;
  /** Version records by their JSON, so machines running the same versions share one. */
  private readonly versions = new Map<string, MachineView['versions']>();

  /**
   * Brings the views up to date with `records` (every machine the fleet view knows;
   * revoked ones are left out) and returns them by name. The map is the same object on
   * every call: use it before the next refresh.
   */
  refresh(records: Iterable<MachineRecord>, isConnected: (name: string) => boolean): ReadonlyMap<string, MachineView> {
    const pass = ++this.pass;
    let count = 0;
    for (const m of records) {
      if (m.revokedAt !== null) continue;
      count++;
      const e = this.entries.get(m.name);
      const view = viewOf(m, isConnected(m.name), e?.report === m.report && e.agentVersion === m.agentVersion ? e.view : undefined, e?.view, this.versions);
      if (e === undefined) {
        this.entries.set(m.name, { view, report: m.report, agentVersion: m.agentVersion, seen: pass });
        this.views.set(m.name, view);
        continue;
      }
      e.seen = pass;
      e.report = m.report;
      e.agentVersion = m.agentVersion;
      if (e.view !== view) {
        e.view = view;
        this.views.set(m.name, view);
      }
    }
    if (count !== this.views.size) {
      // A machine was revoked or left the fleet view: drop what this pass did not see.
      for (const [name, e] of this.entries) {
        if (e.seen === pass) continue;
        this.entries.delete(name);
        this.views.delete(name);
      }
    }
    return this.views;
  }
}

/** Distinct version records kept for sharing; past it the table starts over (bounded, as fleet/interner.ts). */
const MAX_SHARED_VERSIONS = 4096;

/** Since when all of kubelet, runtime and network have been healthy, per the conditions. */
function healthySince(m: MachineRecord): number | null {
  let since = 0;
  for (const type of ['KubeletHealthy', 'RuntimeReady', 'NetworkReady']) {
    const c = m.conditions.find((x) => x.type === type);
    if (c === undefined || c.status !== 'True') return null;
    since = Math.max(since, c.lastTransitionTime);
  }
  return since;
}

/**
 * One machine as the planner sees it: `sameReport` is the earlier view when the report
 * it was read from is still the current one (its versions hold), and `prev` is returned
 * as it is when nothing it shows changed.
 */
function viewOf(m: MachineRecord, connected: boolean, sameReport: MachineView | undefined, prev: MachineView | undefined, shared: Map<string, MachineView['versions']>): MachineView {
  let versions = sameReport?.versions;
  if (versions === undefined) {
    const read: Record<string, string | null> = {};
    for (const pkg of PACKAGES) read[pkg] = observedVersion(m, pkg)?.raw ?? null;
    // Machines running the same versions share one record of them (frozen).
    const key = JSON.stringify(read);
    versions = shared.get(key);
    if (versions === undefined) {
      if (shared.size >= MAX_SHARED_VERSIONS) shared.clear();
      versions = Object.freeze(read);
      shared.set(key, versions);
    }
  }
  const since = healthySince(m);
  const healthy = since !== null && m.liveness.state === 'Ready';
  // Host facts of newer agents (absent from older ones: unknown).
  const required = (m.report?.host as { reboot?: { required?: unknown } } | undefined)?.reboot?.required;
  const rebootRequired = typeof required === 'boolean' ? required : null;
  if (
    prev !== undefined && prev.versions === versions && prev.labels === m.labels && prev.zone === m.zone && prev.connected === connected
    && prev.liveness.state === m.liveness.state && prev.liveness.since === m.liveness.since && prev.healthy === healthy && prev.healthySince === since
    && (prev.rebootRequired ?? null) === rebootRequired
  ) {
    return prev;
  }
  return {
    name: m.name,
    labels: m.labels,
    zone: m.zone,
    liveness: { state: m.liveness.state, since: m.liveness.since },
    connected,
    versions,
    healthy,
    healthySince: since,
    rebootRequired,
  };
}
