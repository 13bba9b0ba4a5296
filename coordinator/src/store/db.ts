/**
 * The coordinator's SQLite store. One file, WAL, `synchronous=FULL`: once a call
 * returns, what it wrote survives a kill -9 or a power cut (architecture invariant 6).
 * Every operation is synchronous and one transaction. Heartbeats do not come through
 * here one by one: see write-batcher.ts.
 */
import { chmodSync, existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { AppError, type Logger } from '@nodekeeper/common';
import type { CommandRecord } from '../model/commands.ts';
import type { MachineRecord, PackageOverride } from '../model/machine.ts';
import type { ArtifactRecord, ClusterPackageVersionRecord, PackageDefault, UpdateStrategyInput } from '../model/packages.ts';
import type { ApiCredentialRecord, ApiRole, EventRecord, RolloutRecord, TokenRecord } from '../model/records.ts';
import { createContext, type StoreContext, type StoreCounters, type WriteObserver } from './context.ts';
import { StoreErrorCode } from './errors.ts';
import { migrate, type Migration, migrations } from './migrations.ts';
import * as tokens from './tokens.ts';
import * as machines from './machines.ts';
import * as identity from './machine-identity.ts';
import * as events from './events.ts';
import * as api from './api-credentials.ts';
import * as status from './status.ts';
import * as packages from './packages.ts';
import * as commands from './commands.ts';
import * as rollouts from './rollouts.ts';
import * as reboots from './reboots.ts';
import * as remediation from './remediation.ts';
import * as retention from './retention.ts';
import * as cursors from './sink-cursors.ts';
import * as hostObjects from './host-objects.ts';
import * as meta from './object-meta.ts';
import * as convergence from './convergence.ts';
import * as sessions from './sessions.ts';
import { deleteMachine, type DeletedMachine } from './machine-delete.ts';

export interface StoreOptions {
  /** The coordinator's clock, ms since the epoch. */
  readonly now?: () => number;
  readonly log?: Logger;
  /** How long a writer waits for another process's lock before failing. */
  readonly busyTimeoutMs?: number;
  /** Told about every write transaction's outcome (the coordinator's StoreHealth). */
  readonly observer?: WriteObserver;
  /** For tests of the migration runner only. */
  readonly migrations?: readonly Migration[];
}

/** The store's operations. Obtain one with openStore(); call close() when done. */
export class Store {
  readonly file: string;
  readonly #ctx: StoreContext;

  constructor(file: string, ctx: StoreContext) {
    this.file = file;
    this.#ctx = ctx;
  }

  /** Transactions committed by this connection (for metrics and tests). */
  get counters(): Readonly<StoreCounters> {
    return this.#ctx.counters;
  }

  // --- bootstrap tokens

  /** Makes a bootstrap token (RangeError on ttlMs <= 0 or maxUses < 1). The token string is shown once. */
  createToken(t: tokens.NewToken): { token: string; record: TokenRecord } {
    return tokens.createToken(this.#ctx, t);
  }

  /** Every bootstrap token, oldest first. */
  listTokens(): TokenRecord[] {
    return tokens.listTokens(this.#ctx);
  }

  /** Revokes a bootstrap token (NK_TOKEN_NOT_FOUND). */
  revokeToken(id: string): TokenRecord {
    return tokens.revokeToken(this.#ctx, id);
  }

  // --- machines

  /** Enrolls a new machine (token) or re-enrolls one (key proof, or token after a reset); all or nothing. See machine-identity.enroll. */
  enroll(req: identity.EnrollRequest): { machine: MachineRecord; credential: string } {
    return identity.enroll(this.#ctx, req);
  }

  /** The machine a credential speaks for (NK_AUTH_CREDENTIAL_INVALID, _EXPIRED, NK_MACHINE_REVOKED). */
  authenticateMachine(credential: unknown): identity.AuthenticatedMachine {
    return identity.authenticateMachine(this.#ctx, credential).machine;
  }

  /** As authenticateMachine, with the id of the credential that matched. */
  authenticateMachineCredential(credential: unknown): identity.Authenticated {
    return identity.authenticateMachine(this.#ctx, credential);
  }

  /** A credential for a rotation over the live connection; see machine-identity.issueNextCredential. */
  issueNextCredential(name: string, ttlMs: number): { credential: string; id: string; expiresAt: number } {
    return identity.issueNextCredential(this.#ctx, name, ttlMs);
  }

  /** The agent saved its rotated credential `id`; false when it is not the pending one. */
  confirmCredential(name: string, id: string): boolean {
    return identity.confirmCredential(this.#ctx, name, id);
  }

  /** Registers a machine key presented in a hello, if the machine has none. */
  registerMachineKey(name: string, publicKey: string): 'registered' | 'same' | 'different' {
    return identity.registerMachineKey(this.#ctx, name, publicKey);
  }

  /** An admin reset: credentials and key void, next token enrollment accepted (NK_MACHINE_NOT_FOUND). */
  resetMachine(name: string, by: string): MachineRecord {
    return identity.resetMachine(this.#ctx, name, by);
  }

  /** Revokes a machine (NK_MACHINE_NOT_FOUND); records an event. */
  revokeMachine(name: string): MachineRecord {
    return machines.revokeMachine(this.#ctx, name);
  }

  /** Deletes a machine gone for good with its commands, observations and remediation state (NK_MACHINE_NOT_FOUND); records an event. */
  deleteMachine(name: string, why: string): DeletedMachine {
    return deleteMachine(this.#ctx, name, why);
  }

  /** The machine of that name, or null. */
  getMachine(name: string): MachineRecord | null {
    return machines.getMachine(this.#ctx, name);
  }

  /** Every machine, sorted by name. */
  listMachines(): MachineRecord[] {
    return machines.listMachines(this.#ctx);
  }

  /** Replaces a machine's package pins (NK_MACHINE_NOT_FOUND). */
  setPackageOverrides(name: string, overrides: Readonly<Record<string, PackageOverride>>): MachineRecord {
    return machines.setPackageOverrides(this.#ctx, name, overrides);
  }

  // --- events

  /** The latest `limit` events about one machine, oldest first. */
  machineEvents(name: string, limit: number): EventRecord[] {
    return events.listEvents(this.#ctx, { object: `machine/${name}`, limit });
  }

  /** Events, oldest first; see events.EventQuery. */
  listEvents(q: events.EventQuery): EventRecord[] {
    return events.listEvents(this.#ctx, q);
  }

  /** The oldest and newest event ids (a watch on the event log resumes after an id). */
  eventIdBounds(): { oldest: number; newest: number } {
    return events.eventIdBounds(this.#ctx);
  }

  /** Appends an event to the audit trail. */
  recordEvent(e: events.NewEvent): EventRecord {
    return this.#ctx.tx(() => events.recordEvent(this.#ctx, e));
  }

  // --- API credentials

  /** Makes an API credential; the credential string is shown once. */
  createApiCredential(req: { role: ApiRole; description: string }): { credential: string; record: ApiCredentialRecord } {
    return api.createApiCredential(this.#ctx, req);
  }

  /** The record of a presented API credential (NK_AUTH_CREDENTIAL_INVALID). */
  authenticateApi(credential: unknown): ApiCredentialRecord {
    return api.authenticateApi(this.#ctx, credential);
  }

  /** Every API credential, revoked ones included; never a secret. */
  listApiCredentials(): ApiCredentialRecord[] {
    return api.listApiCredentials(this.#ctx);
  }

  /** Revokes an API credential (NK_API_CREDENTIAL_NOT_FOUND, NK_API_CREDENTIAL_LAST_ADMIN); records an event. */
  revokeApiCredential(id: string): ApiCredentialRecord {
    return api.revokeApiCredential(this.#ctx, id);
  }

  /** API credentials ever made, revoked ones included. */
  countApiCredentials(): number {
    return api.countApiCredentials(this.#ctx);
  }

  // --- fleet-page sessions

  /** Opens a session for an authenticated API credential; the session string is shown once. */
  createSession(credential: ApiCredentialRecord, ttlMs: number): { session: string; record: sessions.SessionRecord } {
    return sessions.createSession(this.#ctx, credential, ttlMs);
  }

  /** The session a cookie names (NK_AUTH_SESSION_INVALID, NK_AUTH_SESSION_EXPIRED). */
  authenticateSession(presented: string): sessions.SessionRecord {
    return sessions.authenticateSession(this.#ctx, presented);
  }

  /** Signs a session out; false when there was none. */
  deleteSession(presented: string): boolean {
    return sessions.deleteSession(this.#ctx, presented);
  }

  // --- status

  /** Writes one machine's status and appends observations for changed components (NK_MACHINE_NOT_FOUND). */
  saveStatus(name: string, s: status.StatusWrite): { observationRows: number } {
    return status.saveStatus(this.#ctx, name, s);
  }

  /** Writes last-seen times in one transaction; returns rows updated (unknown names are skipped). */
  saveLastSeen(entries: Iterable<readonly [string, number]>): number {
    return status.saveLastSeen(this.#ctx, entries);
  }

  /** Writes a batch of last-seen times and statuses in one transaction (the batcher's flush). */
  writeBatch(batch: { lastSeen: Iterable<readonly [string, number]>; statuses: Iterable<status.QueuedStatus>; events?: Iterable<status.QueuedEvent> }): status.BatchResult {
    return status.writeBatch(this.#ctx, batch);
  }

  /** A machine's observation history, oldest first (the latest `limit` rows). */
  machineObservations(name: string, limit: number, component?: status.ObservedComponent): status.ObservationRecord[] {
    return status.machineObservations(this.#ctx, name, limit, component);
  }

  // --- packages and artifacts

  /** The cluster's desired package versions, or null before the first apply. */
  getClusterPackageVersion(): ClusterPackageVersionRecord | null {
    return packages.getClusterPackageVersion(this.#ctx);
  }

  /** Replaces the desired package versions (validated by the caller). */
  putClusterPackageVersion(p: readonly PackageDefault[], updateStrategy?: UpdateStrategyInput): ClusterPackageVersionRecord {
    return packages.putClusterPackageVersion(this.#ctx, p, updateStrategy);
  }

  addArtifact(a: Omit<ArtifactRecord, 'createdAt'>): ArtifactRecord {
    return packages.addArtifact(this.#ctx, a);
  }

  getArtifact(sha256: string): ArtifactRecord | null {
    return packages.getArtifact(this.#ctx, sha256);
  }

  listArtifacts(): ArtifactRecord[] {
    return packages.listArtifacts(this.#ctx);
  }

  /** Deletes an artifact's row; false when there was none. The caller removes the bytes. */
  deleteArtifact(sha256: string): boolean {
    return packages.deleteArtifact(this.#ctx, sha256);
  }

  // --- commands

  createCommand(c: Parameters<typeof commands.createCommand>[1]): CommandRecord {
    return commands.createCommand(this.#ctx, c);
  }

  getCommand(id: string): CommandRecord | null {
    return commands.getCommand(this.#ctx, id);
  }

  openCommands(machine?: string): CommandRecord[] {
    return commands.openCommands(this.#ctx, machine);
  }

  commandsByOwner(owner: string): CommandRecord[] {
    return commands.commandsByOwner(this.#ctx, owner);
  }

  markCommandSent(id: string): void {
    commands.markSent(this.#ctx, id);
  }

  markCommandProgress(id: string, step: string, message: string): void {
    commands.markProgress(this.#ctx, id, step, message);
  }

  finishCommand(id: string, end: Parameters<typeof commands.finishCommand>[2]): boolean {
    return commands.finishCommand(this.#ctx, id, end);
  }

  // --- convergence (coordinator/src/convergence: what the converger made and remembers)

  listConvergenceRollouts(): convergence.ConvergenceRolloutRow[] {
    return convergence.listConvergenceRollouts(this.#ctx);
  }

  addConvergenceRollout(r: Omit<convergence.ConvergenceRolloutRow, 'pausedByUs' | 'createdAt'>): void {
    convergence.addConvergenceRollout(this.#ctx, r);
  }

  removeConvergenceRollout(name: string): void {
    convergence.removeConvergenceRollout(this.#ctx, name);
  }

  setConvergencePausedByUs(name: string, paused: boolean): void {
    convergence.setPausedByUs(this.#ctx, name, paused);
  }

  listConvergenceRefusals(): convergence.ConvergenceRefusal[] {
    return convergence.listRefusals(this.#ctx);
  }

  addConvergenceRefusal(r: Omit<convergence.ConvergenceRefusal, 'at'>): void {
    convergence.addRefusal(this.#ctx, r);
  }

  convergencePackageStates(): Map<string, { state: string; reason: string }> {
    return convergence.packageStates(this.#ctx);
  }

  setConvergencePackageState(pkg: string, state: string, reason: string): void {
    convergence.setPackageState(this.#ctx, pkg, state, reason);
  }

  // --- rollouts

  createRollout(r: { name: string; spec: unknown; state: unknown }): RolloutRecord {
    return rollouts.createRollout(this.#ctx, r);
  }

  getRollout(name: string): RolloutRecord | null {
    return rollouts.getRollout(this.#ctx, name);
  }

  listRollouts(): RolloutRecord[] {
    return rollouts.listRollouts(this.#ctx);
  }

  saveRolloutState(name: string, state: unknown): void {
    rollouts.saveRolloutState(this.#ctx, name, state);
  }

  /** Replaces a rollout's spec and moves its generation (the controller checked the change; NK_ROLLOUT_NOT_FOUND). */
  updateRolloutSpec(name: string, spec: unknown): RolloutRecord {
    return rollouts.updateRolloutSpec(this.#ctx, name, spec);
  }

  /** Deletes a finished rollout's row (the controller checked; NK_ROLLOUT_NOT_FOUND). */
  deleteRollout(name: string): void {
    rollouts.deleteRollout(this.#ctx, name);
  }

  // --- object metadata (object-meta.ts)

  /** One object's uid, generation, resourceVersion and creation time, or null. */
  objectMeta(kind: meta.ObjectKind, name: string): meta.ObjectMeta | null {
    return meta.objectMeta(this.#ctx, kind, name);
  }

  /** Every object's metadata of one kind, by name (one query). */
  objectMetas(kind: meta.ObjectKind): Map<string, meta.ObjectMeta> {
    return meta.objectMetas(this.#ctx, kind);
  }

  /** The newest resourceVersion the store has handed out. */
  currentResourceVersion(): string {
    return meta.currentResourceVersion(this.#ctx);
  }

  /** Names of one kind's objects stored or changed after resource version `after`. */
  changedSince(kind: meta.ObjectKind, after: number): string[] {
    return meta.changedSince(this.#ctx, kind, after);
  }

  /** Moves the store-wide resource version counter by one; returns the new value. */
  bumpResourceVersion(): number {
    return meta.bumpResourceVersion(this.#ctx);
  }

  // --- reboots (coordinator/src/reboot)

  createReboot(r: { id: string; machine: string; owner: string; state: unknown }): reboots.RebootRecord {
    return reboots.createReboot(this.#ctx, r);
  }

  getReboot(id: string): reboots.RebootRecord | null {
    return reboots.getReboot(this.#ctx, id);
  }

  openReboots(): reboots.RebootRecord[] {
    return reboots.openReboots(this.#ctx);
  }

  rebootsByOwner(owner: string): reboots.RebootRecord[] {
    return reboots.rebootsByOwner(this.#ctx, owner);
  }

  saveReboot(id: string, state: unknown, finished: boolean): void {
    reboots.saveReboot(this.#ctx, id, state, finished);
  }

  // --- remediation

  /** The remediation record, assembled from the cluster row and the per-machine rows; null when never saved. */
  getRemediation(): remediation.RemediationRecord | null {
    return remediation.getRemediation(this.#ctx);
  }

  /** Writes only the parts of the remediation record given (the cluster row, some machines' rows). */
  saveRemediation(changes: remediation.RemediationChanges): void {
    remediation.saveRemediation(this.#ctx, changes);
  }

  listRemediationRules(): Array<{ name: string; object: unknown }> {
    return remediation.listRules(this.#ctx);
  }

  /** Creates or replaces a rule; false when the same object was stored already (nothing written). */
  putRemediationRule(name: string, object: unknown): boolean {
    return remediation.putRule(this.#ctx, name, object);
  }

  /** NK_REMEDIATION_RULE_NOT_FOUND when no rule of that name was applied. */
  deleteRemediationRule(name: string): void {
    remediation.deleteRule(this.#ctx, name);
  }

  // --- objects pulled from the host (see host-objects.ts)

  listHostObjects(): hostObjects.HostObjectLink[] {
    return hostObjects.listHostObjects(this.#ctx);
  }

  putHostObject(link: hostObjects.HostObjectLink): void {
    hostObjects.putHostObject(this.#ctx, link);
  }

  deleteHostObject(kind: hostObjects.HostObjectLink['kind'], name: string): void {
    hostObjects.deleteHostObject(this.#ctx, kind, name);
  }

  // --- event sink cursors (see sink-cursors.ts)

  /** Where a consumer of the event log stands (null: never started). */
  sinkCursor(name: string): number | null {
    return cursors.sinkCursor(this.#ctx, name);
  }

  saveSinkCursor(name: string, afterId: number): void {
    cursors.saveSinkCursor(this.#ctx, name, afterId);
  }

  /** The newest event id ever written (0: none). */
  lastEventId(): number {
    return cursors.lastEventId(this.#ctx);
  }

  // --- retention (one small batch per call; see retention.ts)

  pruneEvents(before: number, maxRows: number, batch: number): number {
    return retention.pruneEvents(this.#ctx, before, maxRows, batch);
  }

  pruneCommands(before: number, batch: number): number {
    return retention.pruneCommands(this.#ctx, before, batch);
  }

  pruneTokens(before: number, batch: number): number {
    return retention.pruneTokens(this.#ctx, before, batch);
  }

  pruneObservations(before: number, afterId: number, batch: number): { deleted: number; lastId: number; done: boolean } {
    return retention.pruneObservations(this.#ctx, before, afterId, batch);
  }

  /** A tiny write that reaches the disk: does the store take writes again? (store-health.ts) */
  probeWrite(): void {
    this.#ctx.tx(() => this.#ctx.stmt(`UPDATE maintenance SET value = value + 1 WHERE name = 'write_probe'`).run());
  }

  /** Runs several store calls as one transaction (all or nothing). */
  transaction<T>(fn: () => T): T {
    return this.#ctx.tx(fn);
  }

  /** The coordinator's clock, as the store reads it. */
  now(): number {
    return this.#ctx.now();
  }

  /** The connection's durability settings, as SQLite reports them (for /readyz and tests). */
  settings(): { journalMode: string; synchronous: 'OFF' | 'NORMAL' | 'FULL' | 'EXTRA'; foreignKeys: boolean; busyTimeoutMs: number } {
    const db = this.#ctx.db;
    const sync = Number(db.pragma('synchronous', { simple: true }));
    return {
      journalMode: String(db.pragma('journal_mode', { simple: true })),
      synchronous: (['OFF', 'NORMAL', 'FULL', 'EXTRA'] as const)[sync] ?? 'OFF',
      foreignKeys: Number(db.pragma('foreign_keys', { simple: true })) === 1,
      busyTimeoutMs: Number(db.pragma('busy_timeout', { simple: true })),
    };
  }

  get isOpen(): boolean {
    return this.#ctx.db.open;
  }

  /** Closes the connection (idempotent). Flush any WriteBatcher first. */
  /**
   * An online copy of the whole database into `file` (SQLite's backup API, in steps
   * between which the event loop runs). Writes made meanwhile through this connection
   * are carried into the copy, so a busy coordinator's backup never restarts.
   */
  backupTo(file: string): Promise<unknown> {
    return this.#ctx.db.backup(file);
  }

  close(): void {
    if (this.#ctx.db.open) this.#ctx.db.close();
  }
}

/**
 * Opens (creating if needed) the store at `file` and brings its schema up to date.
 * NK_STORE_OPEN_FAILED when the file cannot be opened or is not a database;
 * NK_STORE_SCHEMA_TOO_NEW when a newer coordinator wrote it.
 */
export function openStore(file: string, opts: StoreOptions = {}): Store {
  if (typeof file !== 'string' || file === '') throw new TypeError('store file must be a non-empty path');
  const created = file !== ':memory:' && !existsSync(file);
  let db: Database.Database;
  try {
    db = new Database(file);
  } catch (err) {
    throw openFailed(file, err);
  }
  try {
    // Any of these fails on a file that is not a database ("file is not a database").
    const mode = String(db.pragma('journal_mode = WAL', { simple: true }));
    if (mode !== 'wal' && file !== ':memory:') opts.log?.warn({ file, mode }, 'store is not in WAL mode');
    // FULL: with WAL, NORMAL may lose the last commits on power loss; we acknowledge
    // enrollments and must not forget them.
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    db.pragma(`busy_timeout = ${Math.max(0, Math.round(opts.busyTimeoutMs ?? 5000))}`);
    if (created) chmodSync(file, 0o600); // hashes and node reports: root's business only
  } catch (err) {
    db.close();
    throw openFailed(file, err);
  }
  try {
    const applied = migrate(db, opts.migrations ?? migrations);
    if (applied.length > 0) opts.log?.info({ file, applied }, 'store schema migrated');
  } catch (err) {
    db.close();
    throw err;
  }
  return new Store(file, createContext(db, opts.now ?? Date.now, opts.log, opts.observer));
}

function openFailed(file: string, err: unknown): AppError {
  const why = err instanceof Error ? err.message : String(err);
  return new AppError(StoreErrorCode.openFailed, `cannot open store ${file}: ${why}`, { cause: err, context: { file } });
}
