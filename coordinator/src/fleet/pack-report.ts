/**
 * A report as the fleet view keeps it: equal to what the agent sent, with what machines
 * share held once (fleet/interner.ts). A report parsed from a frame is about 2 KB of JSON
 * and became about 2.9 KB of objects and strings per machine; most of it (versions,
 * service states, the runtime's conditions, the CNI plugins, labels, reasons, the host's
 * OS and kernel) is the same on every machine running the same build. Packed, a machine
 * keeps its own only what is its own: its identity, the probes' times and the host's
 * volatile numbers (bench/fleet-memory.ts measures both).
 *
 * Why not the report's compact JSON text with a parsed summary beside it: the text alone
 * is as large as this whole packed form (the JSON is about 2.1 KB, one byte a character),
 * every reader that wants more than the summary (the API, describe, the watch hub, the
 * store) would parse it again, and every delta would parse and re-serialise it. Packed,
 * every reader reads the same NodeReport it always did, and a frame costs a JSON.stringify
 * of each shared part to look it up (bench/fleet.ts CPU per frame).
 *
 * The result is deep-equal to the input (the property test in pack-report.test.ts), and
 * its shared parts are frozen: nothing may change a report in place (nothing does).
 */
import type { NodeReport, NodeReportDelta, ReportSection } from '@nodekeeper/protocol';
import type { Condition, Liveness, MachineRecord } from '../model/machine.ts';
import type { Interner } from './interner.ts';

/** Per section, the object fields shared across machines (one frozen copy each). */
const SHARED: Readonly<Record<ReportSection, ReadonlySet<string>>> = {
  identity: new Set(['labels']),
  kubelet: new Set(['version', 'service']),
  runtime: new Set(['version', 'service', 'conditions']),
  cni: new Set(['version', 'plugins']),
  host: new Set(['version', 'pressure', 'reboot', 'readOnlyMounts']),
};

/** String fields that are each machine's own: interning them would only fill the interner. */
const OWN_STRINGS: ReadonlySet<string> = new Set(['machineId', 'hostname', 'observedAt']);

/**
 * The machine's own strings as the fleet view already holds them: a report's equal
 * hostname and machine id become these copies (each copy a machine holds costs 30-60 bytes).
 */
export interface OwnStrings {
  readonly name: string;
  readonly machineId: string;
}

/** The packed copy of a full report. */
export function packReport(r: NodeReport, interner: Interner, own?: OwnStrings): NodeReport {
  return packDelta(r, interner, own) as NodeReport;
}

/** The packed copy of the sections a report message carries (a full report or a delta). */
export function packDelta(r: NodeReportDelta, interner: Interner, own?: OwnStrings): NodeReportDelta {
  const out: Record<string, unknown> = { ...r };
  // Probes of one pass usually share a timestamp: keep one copy of it per report.
  let at: string | undefined;
  for (const section of Object.keys(out) as ReportSection[]) {
    const v = out[section];
    if (typeof v !== 'object' || v === null || !Object.hasOwn(SHARED, section)) continue;
    const shared = SHARED[section];
    const s: Record<string, unknown> = { ...v };
    for (const k of Object.keys(s)) {
      const x = s[k];
      if (typeof x === 'string') {
        if (k === 'observedAt') s[k] = at === x ? at : (at = x);
        else if (k === 'hostname' && x === own?.name) s[k] = own.name;
        else if (k === 'machineId' && x === own?.machineId) s[k] = own.machineId;
        else if (!OWN_STRINGS.has(k)) s[k] = interner.string(x);
      } else if (typeof x === 'object' && x !== null && shared.has(k)) {
        s[k] = interner.value(x);
      }
    }
    out[section] = s;
  }
  return out as NodeReportDelta;
}

/**
 * A store record as the fleet view keeps it: shared labels, pins and zone, and no report,
 * liveness or conditions (the fleet view's state holds the current ones and its snapshots
 * read those): the store's parsed copies would otherwise stay alive beside them for good.
 */
export function packRecord(record: MachineRecord, i: Interner): MachineRecord {
  return {
    ...record,
    report: null,
    liveness: IN_STATE_LIVENESS,
    conditions: NO_CONDITIONS,
    labels: i.value(record.labels),
    zone: record.zone === null ? null : i.string(record.zone),
    ...(record.packageOverrides === undefined ? {} : { packageOverrides: i.value(record.packageOverrides) }),
  };
}

/** What a packed record carries for conditions: the fleet view's state holds the real ones. */
const NO_CONDITIONS: readonly Condition[] = Object.freeze([]);

/** What a packed record carries for liveness: the fleet view's state holds the real one. */
const IN_STATE_LIVENESS: Liveness = Object.freeze({ state: 'Pending', since: 0, reason: 'InState', message: 'kept in the fleet view state' });

export function packLiveness(l: Liveness, i: Interner): Liveness {
  return { state: l.state, since: l.since, reason: i.string(l.reason), message: i.string(l.message) };
}

export function packCondition(c: Condition, i: Interner): Condition {
  return { type: i.string(c.type), status: c.status, reason: i.string(c.reason), message: i.string(c.message), lastTransitionTime: c.lastTransitionTime };
}
