/**
 * Cordon and drain before a disruptive install, uncordon after it: the rollout's install
 * command of a disruptive package (kubelet, containerd by default) is recorded as
 * usual, but the dispatcher's gate holds it back until the machine's Node in the member
 * cluster is cordoned and drained (Eviction API, PodDisruptionBudgets honoured).
 *   - drained: the command is sent;
 *   - the drain cannot finish (a budget refuses past --drain-timeout, the Node is
 *     missing): the command fails with that reason without being sent, as a refused
 *     install (the rollout counts a failure and pauses or rolls back as its spec says;
 *     this machine's package is untouched, so it has nothing to roll back);
 *   - the command finished (any outcome): the Node is uncordoned.
 * Nothing here needs persisting: after a restart, an open command never sent is drained
 * again before it is sent (cordon and drain are idempotent; one sent already was drained
 * before, and is re-sent as it is), and a sweep uncordons every
 * Node a rollout cordoned that has no open install of that rollout any more, so no
 * node is ever left cordoned by nodekeeper, whatever was killed when.
 */
import { AppError, type Logger } from '@nodekeeper/common';
import { CommandKind } from '@nodekeeper/protocol';
import type { CommandDispatcher } from '../commands/dispatcher.ts';
import type { FleetView } from '../fleet/fleet-view.ts';
import type { MemberCluster } from '../member/member-cluster.ts';
import { observedVersion } from '../packages/cluster-package-version.ts';
import type { Store } from '../store/db.ts';
import type { CommandRecord } from '../store/types.ts';

/** How often Nodes cordoned by rollouts are checked for a cordon left behind. */
export const UNCORDON_SWEEP_MS = 30_000;

export interface DrainGateDeps {
  readonly store: Store;
  readonly fleet: FleetView;
  readonly commands: CommandDispatcher;
  readonly member: MemberCluster;
  readonly log: Logger;
}

export class DrainGate {
  private readonly deps: DrainGateDeps;
  private readonly packages: ReadonlySet<string>;
  /** Commands whose Node is drained: the gate lets them through. */
  private readonly released = new Set<string>();
  private readonly draining = new Set<string>();
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

  needsDrain(c: CommandRecord): boolean {
    return c.kind === CommandKind.install && c.owner !== null && c.owner.startsWith('rollout/') && this.packages.has(String(c.params['package']));
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

  private prepare(c: CommandRecord): void {
    if (this.draining.has(c.id)) return;
    this.draining.add(c.id);
    const { member, commands, store, log } = this.deps;
    const by = c.owner!;
    const object = `machine/${c.machine}`;
    void (async () => {
      let node: string | null = null;
      try {
        await member.synced(this.drainTimeoutMs);
        node = this.nodeOf(c.machine);
        await member.cordon(node, by);
        // The install may be cancelled meanwhile (its rollout aborted): then stop evicting.
        const stop = () => (this.isOpen(c.id) ? null : 'the install was cancelled (its rollout stopped)');
        const result = await member.drain(node, (line) => log.info({ machine: c.machine, node }, line), undefined, stop);
        const cancelled = stop();
        if (cancelled !== null) throw new AppError('NK_DRAIN_CANCELLED', `drain of ${node} stopped: ${cancelled}`);
        store.recordEvent({ object, type: 'Normal', reason: 'Drained', message: `${by}: Node ${node} cordoned and drained before installing ${String(c.params['package'])} (${result.evicted.length} pods evicted${result.skipped.length > 0 ? `; left ${result.skipped.join(', ')}` : ''})` });
        this.released.add(c.id);
        this.draining.delete(c.id);
        commands.sendById(c.id);
      } catch (err) {
        this.draining.delete(c.id);
        const e = err instanceof AppError ? err : new AppError('NK_MEMBER_API_ERROR', (err as Error).message, { cause: err });
        const undone = node === null ? 'not cordoned' : await member.uncordon(node, by).catch((u: unknown) => `uncordon failed: ${(u as Error).message}`);
        const message = `${e.message}; the install was not started; node ${undone}`;
        store.recordEvent({ object, type: 'Warning', reason: 'DrainStopped', message: `${by}: ${message}` });
        log.warn({ machine: c.machine, code: e.code, err: e.message }, 'drain before install stopped');
        if (!this.isOpen(c.id)) return; // cancelled: nothing to fail; the event says the node is uncordoned
        // Refused before anything changed (as the agent refuses an artifact that does not
        // verify): the rollout counts a failure but has nothing to roll back on this machine.
        const active = observedVersion(this.deps.fleet.get(c.machine), String(c.params['package']))?.raw ?? null;
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
    if (c.result?.['failedStep'] === 'drain') return; // the failed drain uncordoned already
    if (this.draining.has(c.id)) return; // cancelled mid-drain: the drain stops and uncordons
    void this.uncordon(c.machine, c.owner!, `after the install (${c.state})`);
  }

  private async uncordon(machine: string, by: string, why: string): Promise<void> {
    try {
      await this.deps.member.synced(this.drainTimeoutMs);
      const node = this.nodeOf(machine);
      const result = await this.deps.member.uncordon(node, by);
      if (result === 'uncordoned') this.deps.store.recordEvent({ object: `machine/${machine}`, type: 'Normal', reason: 'Uncordoned', message: `${by}: Node ${node} uncordoned ${why}` });
    } catch (err) {
      this.deps.store.recordEvent({ object: `machine/${machine}`, type: 'Warning', reason: 'UncordonFailed', message: `${by}: ${(err as Error).message}; the sweep tries again` });
    }
  }

  /** Uncordons Nodes a rollout cordoned whose machine has no open install of that rollout. */
  async sweep(): Promise<void> {
    for (const { node, by } of this.deps.member.cordonedByUs()) {
      if (!by.startsWith('rollout/')) continue;
      const name = node.metadata?.name ?? '';
      const machine = this.deps.fleet.get(name)?.name ?? this.deps.fleet.list().find((m) => m.machineId === node.status?.nodeInfo?.machineID)?.name;
      if (machine === undefined) continue;
      const open = this.deps.store.openCommands(machine).some((c) => c.owner === by && this.needsDrain(c));
      if (!open) await this.uncordon(machine, by, 'left behind (no install of that rollout is open)');
    }
  }
}
