/**
 * The in-memory fleet: every enrolled machine's latest report, liveness and conditions,
 * and its live connection if any. Heartbeats touch memory only; status changes, and the
 * events telling them, reach SQLite through the write batcher, and so do last-seen
 * times, at most once per LAST_SEEN_PERSIST_MS per machine and when its connection
 * closes (a restart shows a last-seen time at most that old until the agent's next
 * message). On start it is loaded from the store, so a restart loses nothing that was
 * flushed, and silence is counted from the coordinator's start (a restart cannot mark
 * the fleet Unknown).
 *
 * Liveness and conditions are judged from a deadline queue, so the fixed cost per second
 * does not grow with the fleet: each machine waits in `due` until the next instant its
 * judgement can change with no new input (judgement.ts); tick() re-judges only the ones
 * whose instant has passed. Inputs that the judgement reads re-queue the machine: a
 * report is judged at once (as before), contact changes (connect, message, disconnect)
 * are judged on the next tick, exactly when a full scan would have noticed them. The
 * property test (fleet-view.test.ts) checks this against a full scan, step by step.
 *
 * Memory (issue 15, item 4): each machine's report is kept packed (pack-report.ts: what
 * machines share is held once, through one Interner), and so are its labels, pins, zone,
 * liveness and condition texts; the store's copy of the report in `record` is dropped
 * (`report` lives in the state alone). A heartbeat allocates nothing that stays.
 */
import type { Logger } from '@nodekeeper/common';
import { CloseCode, type Command, type NodeReport, type NodeReportDelta } from '@nodekeeper/protocol';
import type { Clock } from '../clock.ts';
import type { Store } from '../store/db.ts';
import type { WriteBatcher } from '../store/write-batcher.ts';
import { observationsOf, sameObservation } from '../store/status.ts';
import type { Condition, Liveness, MachineRecord } from '../model/machine.ts';
import { DeadlineHeap } from './deadline-heap.ts';
import { judgeMachine, sameConditions } from './judgement.ts';
import { contactAfterRestart, contactOnDisconnect, contactOnHello, contactOnMessage, nextLivenessChangeAt, type LivenessConfig } from './liveness.ts';
import { Interner } from './interner.ts';
import { mergeReport } from './merge-report.ts';
import { packCondition, packDelta, packLiveness, packRecord, packReport, type OwnStrings } from './pack-report.ts';
import { RestartGrace } from './restart-grace.ts';

/**
 * Machines judged in one tick, at most; the rest stay due, earliest first, for the next
 * ticks. After a restart every machine loaded is due at once: judging 19 k of them in one
 * go (with the controllers' ticks after it) was most of a 2.1 s event-loop stall in the
 * reconnect storm (bench/README.md, "Storm result"). 2,000 take under 0.1 s.
 */
export const MAX_JUDGED_PER_TICK = 2000;

/** How stale a persisted last-seen time may be while the agent is connected. */
export const LAST_SEEN_PERSIST_MS = 60_000;

/** What the fleet needs of a live agent connection. */
export interface AgentLink {
  /** Asks the agent for a full report. */
  resync(): void;
  /** Closes the connection with a close code and reason. */
  close(code: number, reason: string): void;
  /** Sends a command frame; false when the connection is not ready. */
  sendCommand(command: Command): boolean;
}

interface MachineState {
  /** The store's record, its `report` dropped (the state's own is the current one). */
  record: MachineRecord;
  report: NodeReport | null;
  reportChangedAt: number | null;
  liveness: Liveness;
  conditions: readonly Condition[];
  agentVersion: string | null;
  /** Last message received, on our clock; null when never heard from since we started. */
  lastMessageAt: number | null;
  /** Start of the current unbroken contact; null while disconnected. */
  contactSince: number | null;
  /** Heard from since we started; until then the restart grace applies (liveness.ts). */
  heardSinceStart: boolean;
  /** The last-seen time last queued for the store. */
  persistedSeenAt: number | null;
  link: AgentLink | null;
  /** A connection of this process's closed and no new one came: the agent is cut off (or down). */
  lost: boolean;
}

export interface FleetOptions {
  readonly livenessGraceMs: number;
  readonly livenessRecoverMs: number;
  /**
   * Sizes the grace for machines not yet heard from after this start (restart-grace.ts)
   * from the fleet loaded; absent, they get the ordinary grace.
   */
  readonly restartGrace?: { readonly admissionPerSecond: number; readonly agentBackoffCapMs: number };
}

export class FleetView {
  private readonly machines = new Map<string, MachineState>();
  /** Machine names by the instant their judgement can next change. */
  private readonly due = new DeadlineHeap<string>();
  private readonly store: Store;
  private readonly batcher: WriteBatcher;
  private readonly clock: Clock;
  private readonly opts: FleetOptions;
  private readonly log: Logger;
  private readonly startedAt: number;
  /** Silence allowed, from our start, to a machine not heard from since (restart-grace.ts). */
  private readonly restartGrace: RestartGrace;
  private connected = 0;
  /** One copy of what machines say alike: report parts, labels, condition texts. */
  private readonly interner = new Interner();
  private readonly voidListeners: Array<(name: string, reason: string) => void> = [];
  private readonly changeListeners: Array<(name: string) => void> = [];
  private readonly contactListeners: Array<(name: string) => void> = [];
  /** The config the liveness functions take, made once (touch runs on every frame of every agent); livenessConfig() keeps it current. */
  private judgeConfig: LivenessConfig;

  constructor(deps: { store: Store; batcher: WriteBatcher; clock: Clock; log: Logger }, opts: FleetOptions) {
    this.store = deps.store;
    this.batcher = deps.batcher;
    this.clock = deps.clock;
    this.log = deps.log;
    this.opts = opts;
    this.startedAt = this.clock();
    for (const record of this.store.listMachines()) this.load(record);
    this.restartGrace = new RestartGrace(this.startedAt, this.machines.size, opts.livenessGraceMs, opts.restartGrace);
    this.judgeConfig = { graceMs: opts.livenessGraceMs, recoverMs: opts.livenessRecoverMs, restartGraceMs: this.restartGrace.ms };
    if (opts.restartGrace !== undefined) this.log.info({ machines: this.machines.size, restartGraceMs: this.restartGrace.ms }, 'machines not heard from since this start are judged against the restart grace');
  }

  private load(record: MachineRecord): MachineState {
    const i = this.interner;
    const liveness = packLiveness(record.liveness, i);
    const conditions = record.conditions.map((c) => packCondition(c, i));
    // Silence is counted from our own start, never from a persisted time (invariant 8).
    const contact = contactAfterRestart(record, this.startedAt);
    // Every field named in one literal (no spread): the object keeps them all in itself,
    // without a property array on the side (40 bytes a machine).
    const state: MachineState = {
      record: packRecord(record, i),
      report: record.report === null ? null : packReport(record.report, i, record),
      reportChangedAt: record.reportChangedAt,
      liveness,
      conditions,
      agentVersion: record.agentVersion === null ? null : i.string(record.agentVersion),
      lastMessageAt: contact.lastMessageAt,
      contactSince: contact.contactSince,
      heardSinceStart: contact.heardSinceStart,
      persistedSeenAt: record.lastSeenAt,
      link: null,
      lost: false,
    };
    this.machines.set(record.name, state);
    // Judged on the next tick, as a full scan would.
    this.due.set(record.name, this.clock());
    return state;
  }

  /**
   * Listens for a machine whose credentials were replaced or revoked: every connection
   * that authenticated with the old ones must go, welcomed or not (the gateway's).
   */
  onCredentialsVoided(listener: (name: string, reason: string) => void): void {
    this.voidListeners.push(listener);
  }

  /**
   * Listens for a machine whose served state may have changed in memory (liveness,
   * conditions, report, pins, revocation, deletion), before the batcher has stored it:
   * the watch hub (watch/hub.ts) rebuilds that machine's object on its next tick.
   */
  onChanged(listener: (name: string) => void): void {
    this.changeListeners.push(listener);
  }

  private changed(name: string): void {
    for (const l of this.changeListeners) l(name);
  }

  /**
   * Listens for a machine whose contact() answer moved (a connection came, or closed):
   * what remediation's partition guard counts, which onChanged does not tell.
   */
  onContactChanged(listener: (name: string) => void): void {
    this.contactListeners.push(listener);
  }

  private contactMoved(name: string, before: 'connected' | 'lost' | 'none'): void {
    if (this.contact(name) !== before) for (const l of this.contactListeners) l(name);
  }

  private voided(name: string, reason: string): void {
    for (const l of this.voidListeners) l(name, reason);
  }

  /** Picks up a machine the store just enrolled, re-enrolled or reset. */
  enrolled(record: MachineRecord): void {
    const existing = this.machines.get(record.name);
    existing?.link?.close(CloseCode.revoked, 'credential replaced by a new enrollment');
    this.voided(record.name, 'credential replaced by a new enrollment');
    if (existing?.link != null) this.connected -= 1;
    const m = this.load(record);
    this.evaluate(m);
    this.persist(m, true);
    this.changed(record.name);
  }

  /** Registers a live connection; an older one for the same machine is closed. */
  attach(name: string, link: AgentLink, agentVersion: string): void {
    const m = this.mustGet(name);
    const before = this.contact(name);
    if (m.link !== null && m.link !== link) m.link.close(CloseCode.superseded, 'superseded by a newer connection');
    if (m.link === null) this.connected += 1;
    m.link = link;
    m.lost = false;
    Object.assign(m, contactOnHello(contactOnDisconnect(m), this.clock(), this.judgeConfig));
    this.contactChanged(m);
    this.contactMoved(name, before);
    if (m.agentVersion !== agentVersion) {
      m.agentVersion = this.interner.string(agentVersion);
      this.persist(m);
      this.changed(name);
    }
  }

  /** Forgets a connection that closed (only if it is still the current one). */
  detach(name: string, link: AgentLink): void {
    const m = this.machines.get(name);
    if (m === undefined || m.link !== link) return;
    m.link = null;
    m.lost = true;
    this.connected -= 1;
    Object.assign(m, contactOnDisconnect(m));
    this.contactChanged(m);
    this.contactMoved(name, 'connected');
    if (m.lastMessageAt !== null && m.lastMessageAt !== m.persistedSeenAt) this.persistSeen(m, m.lastMessageAt);
  }

  /** Any message from the agent: contact, on our clock. Memory only. */
  touch(name: string): void {
    const m = this.machines.get(name);
    if (m === undefined) return;
    const now = this.clock();
    const c = contactOnMessage(m, now, this.judgeConfig);
    m.lastMessageAt = c.lastMessageAt;
    m.contactSince = c.contactSince;
    m.heardSinceStart = c.heardSinceStart;
    this.contactChanged(m);
    if (m.persistedSeenAt === null || now - m.persistedSeenAt >= LAST_SEEN_PERSIST_MS) this.persistSeen(m, now);
  }

  private persistSeen(m: MachineState, at: number): void {
    m.persistedSeenAt = at;
    this.batcher.lastSeen(m.record.name, at);
  }

  /** Applies a report; returns false when a delta arrived without a base (resync asked). */
  report(name: string, full: boolean, report: NodeReport | NodeReportDelta): boolean {
    const m = this.mustGet(name);
    // A delta's sections are packed before the merge (the base's are already); a full
    // report only when it changed anything (a reconnect's usually does not).
    const merged = mergeReport(m.report, { full, report: full || m.report === null ? report : packDelta(report, this.interner, m.record) });
    if (merged.needsResync) {
      m.link?.resync();
      return false;
    }
    if (merged.changed && merged.report !== null) {
      const observe = observationsMoved(m.report, merged.report);
      m.report = full ? packReport(merged.report, this.interner, m.record) : merged.report;
      m.reportChangedAt = this.clock();
      this.evaluate(m);
      this.persist(m, observe);
      this.changed(name);
    }
    return true;
  }

  /**
   * Admission control turned an agent away. While the restart grace runs, that extends
   * it (restart-grace.ts): the machines still at the door are not judged Unknown for
   * waiting there. Once the grace has run out it stays out. At most once a second.
   */
  admissionRefused(): void {
    if (this.restartGrace.refused(this.clock())) this.log.debug({ restartGraceMs: this.restartGrace.ms }, 'admission control still refuses agents: restart grace extended');
  }

  /** Re-judges the machines whose judgement may have changed since (at most MAX_JUDGED_PER_TICK); call on a timer. */
  tick(): void {
    for (const name of this.due.popDue(this.clock(), MAX_JUDGED_PER_TICK)) {
      const m = this.machines.get(name);
      if (m !== undefined && this.evaluate(m)) {
        this.persist(m);
        this.changed(name);
      }
    }
  }

  /**
   * Re-queues a machine whose contact (last message, run of contact) just moved. Ready
   * and NotReady are judged from the node's health alone while within the grace, so a
   * machine in either, not already due, keeps its judgement and only moves its deadline
   * (no re-judging on every heartbeat); any other is judged on the next tick. One already
   * due stays due: after a restart its persisted judgement may come from an older
   * coordinator, and only judging it tells.
   */
  private contactChanged(m: MachineState): void {
    const now = this.clock();
    const name = m.record.name;
    if ((this.due.deadlineOf(name) ?? now) <= now) return;
    const settled = m.liveness.state === 'Ready' || m.liveness.state === 'NotReady';
    this.due.set(name, settled ? nextLivenessChangeAt(m.liveness, { now, lastMessageAt: m.lastMessageAt, contactSince: m.contactSince, heardSinceStart: m.heardSinceStart }, this.livenessConfig()) : now);
  }

  /** The liveness config now: the restart grace can grow while admission control refuses agents. */
  private livenessConfig(): LivenessConfig {
    const restartGraceMs = this.restartGrace.ms;
    if (this.judgeConfig.restartGraceMs !== restartGraceMs) this.judgeConfig = { ...this.judgeConfig, restartGraceMs };
    return this.judgeConfig;
  }

  /** Takes a machine's new package pins (the store has them already). */
  overridesChanged(record: MachineRecord): void {
    const m = this.machines.get(record.name);
    if (m !== undefined) m.record = { ...m.record, packageOverrides: this.interner.value(record.packageOverrides ?? {}) };
    this.changed(record.name);
  }

  /** Closes the live connection of a revoked machine and drops it from the view. */
  revoked(name: string): void {
    const m = this.machines.get(name);
    if (m === undefined) return;
    this.voided(name, 'machine revoked');
    m.link?.close(CloseCode.revoked, 'machine revoked');
    if (m.link !== null) this.connected -= 1;
    m.link = null;
    m.record = { ...m.record, revokedAt: this.clock() };
    this.changed(name);
  }

  /** Closes the live connection of a deleted machine and forgets it (the store has dropped it). */
  deleted(name: string): void {
    const m = this.machines.get(name);
    this.voided(name, 'machine deleted');
    if (m === undefined) return;
    m.link?.close(CloseCode.revoked, 'machine deleted');
    if (m.link !== null) this.connected -= 1;
    this.machines.delete(name);
    this.due.delete(name);
    this.changed(name);
  }

  /** Delivers a command to the machine's live connection; false when it has none. */
  deliver(name: string, command: Command): boolean {
    return this.machines.get(name)?.link?.sendCommand(command) ?? false;
  }

  isConnected(name: string): boolean {
    return this.machines.get(name)?.link != null;
  }

  /**
   * Connected, lost (a connection of ours closed and the agent has not come back), or
   * none since we started: after a restart no agent counts as lost, however slowly the
   * fleet reconnects (the remediation partition guard counts the lost ones).
   */
  contact(name: string): 'connected' | 'lost' | 'none' {
    const m = this.machines.get(name);
    return m?.link != null ? 'connected' : m?.lost === true ? 'lost' : 'none';
  }

  connectedCount(): number {
    return this.connected;
  }

  /**
   * The machine's name and id as the fleet view holds them, for a holder of the same
   * machine to keep these copies rather than its own (each copy costs 30-60 bytes).
   */
  ownStrings(name: string): OwnStrings | undefined {
    return this.machines.get(name)?.record;
  }

  /** The current view of one machine, as a record (memory is fresher than the store). */
  get(name: string): MachineRecord | undefined {
    const m = this.machines.get(name);
    return m === undefined ? undefined : this.snapshot(m);
  }

  list(): MachineRecord[] {
    return [...this.machines.values()].map((m) => this.snapshot(m)).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The same views as list(), in no particular order and one at a time: for scans on every tick. */
  *values(): IterableIterator<MachineRecord> {
    for (const m of this.machines.values()) yield this.snapshot(m);
  }

  private snapshot(m: MachineState): MachineRecord {
    return {
      ...m.record,
      report: m.report,
      reportChangedAt: m.reportChangedAt,
      liveness: m.liveness,
      conditions: m.conditions,
      agentVersion: m.agentVersion,
      lastSeenAt: m.lastMessageAt ?? m.record.lastSeenAt,
    };
  }

  private mustGet(name: string): MachineState {
    const m = this.machines.get(name);
    if (m === undefined) throw new TypeError(`machine ${name} is not in the fleet view`);
    return m;
  }

  /** Recomputes liveness and conditions and re-queues the machine; true when anything changed. */
  private evaluate(m: MachineState): boolean {
    const { liveness, conditions, changed, nextAt } = judgeMachine(m, this.clock(), this.livenessConfig());
    this.due.set(m.record.name, nextAt);
    if (liveness.state !== m.liveness.state) {
      const warning = liveness.state === 'Unknown' || liveness.state === 'NotReady';
      this.log[warning ? 'warn' : 'info']({ machine: m.record.name, from: m.liveness.state, to: liveness.state, reason: liveness.reason }, 'liveness changed');
      this.batcher.event({
        object: `machine/${m.record.name}`,
        type: warning ? 'Warning' : 'Normal',
        reason: `Machine${liveness.state}`,
        message: `${m.liveness.state} -> ${liveness.state}: ${liveness.reason}${liveness.message ? `: ${liveness.message}` : ''}`,
      });
    }
    for (const c of conditions) {
      const before = m.conditions.find((p) => p.type === c.type);
      // Unknown <-> known is the first report or silence; MachineReady/MachineUnknown tell that story.
      if (before !== undefined && before.status !== c.status && c.type !== 'Ready' && before.status !== 'Unknown' && c.status !== 'Unknown') {
        this.batcher.event({
          object: `machine/${m.record.name}`,
          type: c.status === 'True' === isPositive(c.type) ? 'Normal' : 'Warning',
          reason: c.reason || c.type,
          message: `${c.type} ${before.status} -> ${c.status}${c.message ? `: ${c.message}` : ''}`,
        });
      }
    }
    if (liveness !== m.liveness) m.liveness = packLiveness(liveness, this.interner);
    // Equal conditions (same status, so the same transition times too) keep the old array.
    if (!sameConditions(conditions, m.conditions)) m.conditions = conditions.map((c) => packCondition(c, this.interner));
    return changed;
  }

  /**
   * Queues the machine's status. `observe`: its report's health or versions may have
   * moved, so the observation history is compared with it (a read per component); a
   * liveness or condition change, or a report whose probe times alone moved (every
   * reconnect's full report), leaves the history as it is.
   */
  private persist(m: MachineState, observe = false): void {
    this.batcher.status(m.record.name, {
      report: m.report,
      reportChangedAt: m.reportChangedAt,
      liveness: m.liveness,
      conditions: m.conditions,
      agentVersion: m.agentVersion,
    }, observe);
  }
}

/**
 * Whether a component's health or version differs between two reports: what the
 * observation history records (store/status.ts sameObservation). The history's latest
 * rows are those of the last report queued with `observe`, so comparing with the report
 * held (loaded from the store after a restart, written with its rows) is comparing with them.
 */
function observationsMoved(before: NodeReport | null, after: NodeReport): boolean {
  if (before === null) return true;
  const was = observationsOf(before, 0);
  return observationsOf(after, 0).some((o, i) => !sameObservation(was[i]!, o));
}

/** Conditions where True is good (the pressure conditions are the other way round). */
const isPositive = (type: string) => !type.endsWith('Pressure');
