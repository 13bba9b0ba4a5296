/**
 * Cordon and drain before a disruptive install, uncordon after it: an install command of
 * a disruptive package (kubelet, containerd by default) by a rollout, or by remediation's
 * ReinstallPackage step, is recorded as usual, but the dispatcher's gate holds it back
 * until the machine's Node in the member cluster is cordoned and drained with kubectl
 * drain's rules (member/drain.ts; the rollout spec's or the rule's `drain` options).
 *   - drained (every evicted pod gone): the command is sent;
 *   - the drain cannot finish (pods refused by the rules, a budget refuses past the
 *     timeout, pods still terminating, the Node is missing): the command fails with that
 *     reason without being sent, as a refused install (the owner counts a failure; this
 *     machine's package is untouched, so it has nothing to roll back), and the Node is
 *     uncordoned;
 *   - the command finished (any outcome): the Node is uncordoned (a remediation cordon
 *     is kept when the ladder has meanwhile cordoned the node for a human).
 * Nothing here needs persisting: after a restart, an open command never sent is drained
 * again before it is sent (cordon and drain are idempotent; one sent already was drained
 * before, and is re-sent as it is), and a sweep uncordons every Node a rollout or a
 * remediation reinstall cordoned that has no open install of that owner any more, so no
 * node is ever left cordoned by nodekeeper's work, whatever was killed when.
 */
import { AppError, type Logger } from '@nodekeeper/common';
import { CommandKind } from '@nodekeeper/protocol';
import type { CommandDispatcher } from '../commands/dispatcher.ts';
import type { FleetView } from '../fleet/fleet-view.ts';
import { continueCommand, type DrainOptions } from '../member/drain.ts';
import { drainOptionsOf, type DrainSpec } from '../member/drain-rules.ts';
import type { MemberCluster } from '../member/member-cluster.ts';
import { cordonAndDrain, drainFailureReason, REMEDIATION_DRAIN_MARK } from '../member/node-drainer.ts';
import { observedVersion } from '../packages/cluster-package-version.ts';
import type { Store } from '../store/db.ts';
import type { CommandRecord } from '../model/commands.ts';

/** The owner of remediation's commands (remediation-controller.ts's REMEDIATION_OWNER). */
const REMEDIATION = 'remediation';

/** How often Nodes cordoned by rollouts are checked for a cordon left behind. */
export const UNCORDON_SWEEP_MS = 30_000;

export interface DrainGateDeps {
  readonly store: Store;
  readonly fleet: FleetView;
  readonly commands: CommandDispatcher;
  readonly member: MemberCluster;
  readonly log: Logger;
  /** Remediation's part, when its reinstalls drain too (app.ts wires the controller). */
  readonly remediation?: RemediationDrains;
}

/** What the gate asks remediation about a machine whose ReinstallPackage install it holds. */
export interface RemediationDrains {
  /** The cordon mark (REMEDIATION_DRAIN_MARK + rule) and the rule's drain options; null when no ladder runs. */
  drainFor(machine: string): { by: string; drain: Partial<DrainSpec> | undefined } | null;
  /** Why remediation's cordon must stay now (a human is needed), or null. */
  keepCordon(machine: string): string | null;
}

export class DrainGate {
  private readonly deps: DrainGateDeps;
  private readonly packages: ReadonlySet<string>;
  /** Commands whose Node is drained: the gate lets them through. */
  private readonly released = new Set<string>();
  private readonly draining = new Set<string>();
  /** The cordon mark each prepared command's drain used (remediation's is its rule's). */
  private readonly marks = new Map<string, string>();
  private sweeper: NodeJS.Timeout | null = null;

  private readonly drainTimeoutMs: number;

  constructor(deps: DrainGateDeps, packages: readonly string[], drainTimeoutMs: number) {
    this.deps = deps;
    this.drainTimeoutMs = drainTimeoutMs;
    this.packages = new Set(packages);
    deps.commands.onFinished((c) => this.finished(c));
  }

  /** The dispatcher's delivery gate. */
  allows(c: CommandRecord): boolean {
    if (!this.needsDrain(c) || this.released.has(c.id)) return true;
    // Sent before a restart: it was drained then and may be installing now; re-sending lets
    // the agent answer with its record. A failed drain now must not call it "not started".
    if (c.sentAt !== null) {
      this.released.add(c.id);
      return true;
    }
    this.prepare(c);
    return false;
  }

  /** Installs of a disruptive package by a rollout, or by remediation (its ReinstallPackage step) when wired. */
  needsDrain(c: CommandRecord): boolean {
    if (c.kind !== CommandKind.install || c.owner === null || !this.packages.has(String(c.params['package']))) return false;
    return c.owner.startsWith('rollout/') || (c.owner === REMEDIATION && this.deps.remediation !== undefined);
  }

  start(): void {
    // Commands left open by a previous run are drained again before they are sent.
    for (const c of this.deps.store.openCommands()) if (this.needsDrain(c) && c.sentAt === null && !this.released.has(c.id)) this.prepare(c);
    const sweep = () => {
      void this.sweep().finally(() => {
        if (this.sweeper !== null) this.sweeper = setTimeout(sweep, UNCORDON_SWEEP_MS).unref();
      });
    };
    this.sweeper = setTimeout(sweep, UNCORDON_SWEEP_MS).unref();
  }

  stop(): void {
    if (this.sweeper !== null) clearTimeout(this.sweeper);
    this.sweeper = null;
  }

  private nodeOf(machine: string): string {
    const record = this.deps.fleet.get(machine);
    const node = this.deps.member.findNode(machine, record?.machineId ?? null);
    if (node?.metadata?.name === undefined) {
      throw new AppError('NK_MEMBER_NODE_NOT_FOUND', `no Node in the member cluster for machine ${machine} (by name, kubernetes.io/hostname label or machine id)`);
    }
    return node.metadata.name;
  }

  /** Who cordons (the mark), with which drain options, and what an operator runs to go on. */
  private planFor(c: CommandRecord, node: string): { by: string; opts: Omit<DrainOptions, 'progress' | 'stop'>; what: string } {
    const defaultMs = this.drainTimeoutMs;
    if (c.owner === REMEDIATION) {
      const r = this.deps.remediation?.drainFor(c.machine) ?? null;
      const opts = drainOptionsOf(r?.drain, defaultMs);
      const by = r?.by ?? `${REMEDIATION_DRAIN_MARK}unknown`;
      return { by, opts: { ...opts, continueWith: continueCommand(node, opts) }, what: `${by}: reinstall` };
    }
    const name = c.owner!.slice('rollout/'.length);
    const spec = this.deps.store.getRollout(name)?.spec as { drain?: Partial<DrainSpec> } | undefined;
    const opts = drainOptionsOf(spec?.drain, defaultMs);
    // The rollout goes on without this machine (it keeps its version; a later rollout retries it).
    return { by: c.owner!, opts: { ...opts, continueWith: `nkctl rollout resume ${name} (${c.machine} keeps its version; drain it by hand with ${continueCommand(node, opts)})` }, what: c.owner! };
  }

  private prepare(c: CommandRecord): void {
    if (this.draining.has(c.id)) return;
    this.draining.add(c.id);
    const { member, commands, store, log } = this.deps;
    const object = `machine/${c.machine}`;
    const pkg = String(c.params['package']);
    void (async () => {
      let by = c.owner!;
      let node: string | null = null;
      try {
        await member.synced(this.drainTimeoutMs);
        node = this.nodeOf(c.machine);
        const plan = this.planFor(c, node);
        by = plan.by;
        this.marks.set(c.id, by);
        // The install may be cancelled meanwhile (its rollout aborted, its step abandoned): then stop evicting.
        const stop = () => (this.isOpen(c.id) ? null : `the install was cancelled (${c.owner === REMEDIATION ? 'its remediation step was abandoned' : 'its rollout stopped'})`);
        const cordoned = (r: string) => store.recordEvent({ object, type: 'Normal', reason: 'Cordoned', message: `${plan.what}: Node ${node} ${r === 'cordoned' ? 'cordoned' : 'already cordoned by an operator'}; draining before installing ${pkg}` });
        const result = await cordonAndDrain(member, node, by, { ...plan.opts, progress: (line) => log.info({ machine: c.machine, node }, line), stop }, cordoned);
        const cancelled = stop();
        if (cancelled !== null) {
          const undone = await member.uncordon(node, by).catch((u: unknown) => `uncordon failed: ${(u as Error).message}`);
          throw new AppError('NK_DRAIN_CANCELLED', `drain of ${node} stopped: ${cancelled}; node ${undone}`);
        }
        store.recordEvent({ object, type: 'Normal', reason: 'Drained', message: `${plan.what}: Node ${node} cordoned and drained before installing ${pkg} (${result.evicted.length} pods evicted${result.skipped.length > 0 ? `; left ${result.skipped.join(', ')}` : ''})` });
        this.released.add(c.id);
        this.draining.delete(c.id);
        commands.sendById(c.id);
      } catch (err) {
        this.draining.delete(c.id);
        // cordonAndDrain has undone its own cordon and says so in the message.
        const e = err instanceof AppError ? err : new AppError('NK_MEMBER_API_ERROR', (err as Error).message, { cause: err });
        const message = `${e.message}${node === null ? '; node not cordoned' : ''}; the install was not started`;
        store.recordEvent({ object, type: 'Warning', reason: drainFailureReason(e.code), message: `${by}: ${message}` });
        log.warn({ machine: c.machine, code: e.code, err: e.message }, 'drain before install stopped');
        if (!this.isOpen(c.id)) return; // cancelled: nothing to fail; the event says the node is uncordoned
        // Refused before anything changed (as the agent refuses an artifact that does not
        // verify): the owner counts a failure but has nothing to roll back on this machine.
        const active = observedVersion(this.deps.fleet.get(c.machine), pkg)?.raw ?? null;
        commands.fail(c.id, { code: e.code, message }, { outcome: 'refused', activeVersion: active, failedStep: 'drain', message });
      }
    })();
  }

  private isOpen(id: string): boolean {
    const c = this.deps.store.getCommand(id);
    return c !== null && (c.state === 'Pending' || c.state === 'Sent' || c.state === 'Running');
  }

  private finished(c: CommandRecord): void {
    if (!this.needsDrain(c)) return;
    this.released.delete(c.id);
    const by = this.marks.get(c.id) ?? this.markOf(c);
    this.marks.delete(c.id);
    if (c.result?.['failedStep'] === 'drain') return; // the failed drain uncordoned already
    if (this.draining.has(c.id)) return; // cancelled mid-drain: the drain stops and uncordons
    void this.uncordon(c.machine, by, `after the install (${c.state})`);
  }

  /** The cordon mark of a command prepared before a restart: its rollout, or its remediation rule's. */
  private markOf(c: CommandRecord): string {
    return c.owner === REMEDIATION ? (this.deps.remediation?.drainFor(c.machine)?.by ?? `${REMEDIATION_DRAIN_MARK}unknown`) : c.owner!;
  }

  private async uncordon(machine: string, by: string, why: string): Promise<void> {
    try {
      await this.deps.member.synced(this.drainTimeoutMs);
      const node = this.nodeOf(machine);
      // Remediation may hold the node for a human by now (CordonAndNotify took the cordon over).
      const keep = () => (by.startsWith(REMEDIATION_DRAIN_MARK) ? (this.deps.remediation?.keepCordon(machine) ?? null) : null);
      const result = await this.deps.member.uncordon(node, by, keep);
      if (result === 'uncordoned') this.deps.store.recordEvent({ object: `machine/${machine}`, type: 'Normal', reason: 'Uncordoned', message: `${by}: Node ${node} uncordoned ${why}` });
    } catch (err) {
      this.deps.store.recordEvent({ object: `machine/${machine}`, type: 'Warning', reason: 'UncordonFailed', message: `${by}: ${(err as Error).message}; the sweep tries again` });
    }
  }

  /**
   * Uncordons Nodes a rollout cordoned whose machine has no open install of that rollout,
   * and Nodes a remediation reinstall cordoned whose machine has no open reinstall (unless
   * remediation now holds the node for a human).
   */
  async sweep(): Promise<void> {
    for (const { node, by } of this.deps.member.cordonedByUs()) {
      const ours = by.startsWith('rollout/') ? (c: CommandRecord) => c.owner === by : by.startsWith(REMEDIATION_DRAIN_MARK) ? (c: CommandRecord) => c.owner === REMEDIATION : null;
      if (ours === null) continue;
      const name = node.metadata?.name ?? '';
      const machine = this.deps.fleet.get(name)?.name ?? this.deps.fleet.list().find((m) => m.machineId === node.status?.nodeInfo?.machineID)?.name;
      if (machine === undefined) continue;
      const open = this.deps.store.openCommands(machine).some((c) => ours(c) && this.needsDrain(c));
      if (!open) await this.uncordon(machine, by, `left behind (no install of ${by.startsWith('rollout/') ? 'that rollout' : 'remediation'} is open)`);
    }
  }
}
