/**
 * Drives each reboot of a machine through its steps (types.ts): cordon, drain, the
 * agent's node.reboot, a new boot with the expected kernel and the Node Ready
 * (verify.ts), uncordon. Reboot rollouts and the remediation Reboot rung both start
 * reboots here, so there is one path and one set of checks.
 *
 * Every step is saved before the next begins, and the reboot command is recorded in the
 * same transaction as the step that sends it, so a coordinator killed at any point
 * resumes each open reboot where it was: cordon and drain are idempotent and run again;
 * a reboot already recorded is never recorded again (its id is fixed, and the agent
 * runs an id once and keeps a boot-id marker), the coordinator only waits for the boot.
 * A reboot that fails is never retried from here: the owner decides (a reboot rollout
 * halts, RebootFailed, until an operator resumes it).
 */
import { AppError, type Logger } from '@nodekeeper/common';
import { CommandKind } from '@nodekeeper/protocol';
import type { Clock } from '../clock.ts';
import type { CommandDispatcher } from '../commands/dispatcher.ts';
import type { FleetView } from '../fleet/fleet-view.ts';
import type { MemberCluster } from '../member/member-cluster.ts';
import type { RebootDrain } from '../rollout/spec.ts';
import type { Store } from '../store/db.ts';
import type { CommandRecord } from '../model/commands.ts';
import { drainForReboot } from './drain.ts';
import { REBOOT_TRANSITIONS, type RebootOutcome, type RebootState, type RebootStep } from './types.ts';
import { judgeBoot, type BootFacts } from './verify.ts';

/** How often reboots waiting for their machine are judged. */
const TICK_MS = 1_000;
/** The agent's own allowance for `systemctl reboot` to return (the command's timeout). */
const REBOOT_COMMAND_TIMEOUT_MS = 60_000;

/** A reboot as others see it. */
export interface RebootView {
  readonly id: string;
  readonly machine: string;
  readonly owner: string;
  readonly state: RebootState;
}

export interface RebootRequest {
  /** Deterministic (a rollout's command id for the machine's step): asking twice is one reboot. */
  readonly id: string;
  readonly machine: string;
  /** `rollout/<name>` or `remediation/<machine>`. */
  readonly owner: string;
  readonly reason: string;
  readonly drain: RebootDrain;
  readonly timeoutMs: number;
}

export interface RebootDriverDeps {
  readonly store: Store;
  readonly fleet: FleetView;
  readonly commands: CommandDispatcher;
  /** Null without --member-kubeconfig: no cordon, no drain, no Node Ready check. */
  readonly member: MemberCluster | null;
  readonly clock: Clock;
  readonly log: Logger;
}

/** Host facts of the agent's report the driver reads (optional: older agents omit them). */
interface HostFacts {
  readonly kernel?: string;
  readonly bootId?: string | null;
  readonly newestKernel?: string | null;
}

/** The cordon annotation's value for a reboot: not `rollout/...`, so the drain gate's sweep leaves it alone. */
export const cordonOwner = (owner: string) => `reboot/${owner}`;

export class RebootDriver {
  private readonly d: RebootDriverDeps;
  private readonly running = new Set<string>();
  private readonly listeners = new Set<(r: RebootView) => void>();
  private timer: NodeJS.Timeout | null = null;

  constructor(deps: RebootDriverDeps) {
    this.d = deps;
    deps.commands.onFinished((c) => this.commandFinished(c));
  }

  /** Told once per reboot when it is Done (its outcome set). */
  onFinished(listener: (r: RebootView) => void): void {
    this.listeners.add(listener);
  }

  /**
   * Records a reboot (idempotent by id) and returns it. Call inside the caller's
   * transaction, then run() after the commit.
   */
  record(req: RebootRequest): RebootView {
    const state: RebootState = {
      step: 'Cordoning', since: this.d.clock(), reason: req.reason, drain: req.drain, timeoutMs: req.timeoutMs,
      node: null, cordoned: false, bootBefore: null, kernelBefore: null, expectedKernel: null, rebootAt: null, ackAt: null, reconnectedAt: null,
      outcome: null, message: 'about to cordon',
    };
    const known = this.d.store.getReboot(req.id);
    const created = known ?? this.d.store.createReboot({ id: req.id, machine: req.machine, owner: req.owner, state });
    if (known === null) this.event(req.machine, 'Normal', 'RebootRequested', `${req.owner}: ${req.reason}`);
    return toView(created);
  }

  /** Reboots of one owner (finished ones too). */
  byOwner(owner: string): RebootView[] {
    return this.d.store.rebootsByOwner(owner).map(toView);
  }

  get(id: string): RebootView | null {
    const r = this.d.store.getReboot(id);
    return r === null ? null : toView(r);
  }

  /** Resumes every open reboot (what was I doing when I died?) and starts judging. */
  start(): void {
    const each = (only: RebootStep | null) => {
      try {
        for (const r of this.d.store.openReboots()) if (only === null || (r.state as RebootState).step === only) this.run(r.id);
      } catch (err) {
        // A store fault (disk full, locked) must not crash the coordinator: the next tick retries.
        this.d.log.error({ err }, 'cannot read open reboots; retrying');
      }
    };
    each(null);
    this.timer = setInterval(() => each('WaitingForBoot'), TICK_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * Stops a reboot whose node.reboot was not sent yet (its rollout was aborted): the
   * drain stops, the Node is uncordoned, the outcome is Cancelled. Once the reboot is
   * recorded, it is seen through. Returns true when it will stop.
   */
  cancel(id: string, why: string): boolean {
    const r = this.d.store.getReboot(id);
    if (r === null || r.finishedAt !== null) return false;
    const s = r.state as RebootState;
    if (s.rebootAt !== null || s.outcome !== null) return false;
    this.save(r.id, s, { outcome: { ok: false, reason: 'Cancelled', message: `not rebooted: ${why}` } });
    this.run(id);
    return true;
  }

  /** The agent of `machine` connected: a reboot waiting on it notes when (old-boot detection). */
  machineConnected(machine: string): void {
    try {
      for (const r of this.d.store.openReboots()) {
        const s = r.state as RebootState;
        if (r.machine !== machine || s.step !== 'WaitingForBoot' || s.ackAt === null) continue;
        this.save(r.id, s, { reconnectedAt: this.d.clock() });
        this.run(r.id);
      }
    } catch (err) {
      this.d.log.error({ err, machine }, 'cannot note a reconnect for a reboot');
    }
  }

  /** Runs a reboot's steps until it waits or is done; one runner per reboot at a time. */
  run(id: string): void {
    if (this.running.has(id)) return;
    this.running.add(id);
    void this.steps(id).catch((err: unknown) => {
      this.d.log.error({ err, reboot: id }, 'reboot step failed; will retry');
    }).finally(() => this.running.delete(id));
  }

  private async steps(id: string): Promise<void> {
    for (;;) {
      const r = this.d.store.getReboot(id);
      if (r === null || r.finishedAt !== null) return;
      const s = r.state as RebootState;
      const moved = await this.step(r.id, r.machine, r.owner, s);
      if (!moved) return;
    }
  }

  /** Does one step; true when it moved on (run the next), false when it waits. */
  private async step(id: string, machine: string, owner: string, s: RebootState): Promise<boolean> {
    const { member } = this.d;
    // A decided outcome (a failure, a cancel) skips what is left but the uncordon.
    if (s.outcome !== null && s.step !== 'Uncordoning' && s.step !== 'Done') return this.go(id, s, 'Uncordoning', {});
    switch (s.step) {
      case 'Cordoning': {
        if (member === null) return this.go(id, s, 'Rebooting', { message: 'no member cluster: no cordon, no drain' });
        try {
          await member.synced(30_000);
          const node = this.nodeOf(machine);
          const done = await member.cordon(node, cordonOwner(owner));
          if (done === 'cordoned' && !s.cordoned) this.event(machine, 'Normal', 'Cordoned', `${owner}: Node ${node} cordoned before its reboot`);
          return this.go(id, s, 'Draining', { node, cordoned: done === 'cordoned', message: `draining Node ${node}` });
        } catch (err) {
          return this.fail(id, machine, owner, s, 'DrainStopped', 'cordon', `cordon before the reboot failed: ${(err as Error).message}; not rebooted`);
        }
      }
      case 'Draining': {
        const node = s.node!;
        const stop = () => {
          const now = this.d.store.getReboot(id);
          return now === null || (now.state as RebootState).outcome !== null ? 'the reboot was cancelled' : null;
        };
        try {
          const result = await drainForReboot(member!, node, s.drain, (line) => this.d.log.info({ machine, node }, line), stop);
          if (stop() !== null) return this.go(id, s, 'Uncordoning', {});
          this.event(machine, 'Normal', 'Drained', `${owner}: Node ${node} drained before its reboot (${result.evicted.length} pods evicted${result.skipped.length > 0 ? `; left ${result.skipped.join(', ')}` : ''})`);
          return this.go(id, s, 'Rebooting', { message: 'drained; rebooting' });
        } catch (err) {
          const current = this.d.store.getReboot(id);
          if (current !== null && (current.state as RebootState).outcome !== null) return this.go(id, current.state as RebootState, 'Uncordoning', {});
          return this.fail(id, machine, owner, s, 'DrainStopped', 'drain', `${(err as Error).message}; not rebooted`);
        }
      }
      case 'Rebooting':
        return this.sendReboot(id, machine, owner, s);
      case 'WaitingForBoot': {
        const v = judgeBoot(s, this.facts(machine), this.d.clock());
        if (v.kind === 'wait') {
          if (v.message !== s.message) this.save(id, s, { message: v.message });
          return false;
        }
        if (v.kind === 'failed') return this.fail(id, machine, owner, s, 'RebootFailed', 'boot', `${machine} ${v.message}`);
        this.event(machine, 'Normal', 'RebootSucceeded', `${owner}: ${machine} ${v.message}`);
        return this.go(id, s, 'Uncordoning', { outcome: { ok: true, reason: 'Rebooted', message: `${machine} ${v.message}` }, message: 'back; uncordoning' });
      }
      case 'Uncordoning': {
        let note = '';
        if (member !== null && s.cordoned && s.node !== null) {
          try {
            const done = await member.uncordon(s.node, cordonOwner(owner));
            if (done === 'uncordoned') this.event(machine, 'Normal', 'Uncordoned', `${owner}: Node ${s.node} uncordoned after its reboot${s.outcome?.ok === true ? '' : ` (${s.outcome?.reason ?? 'stopped'})`}`);
          } catch (err) {
            note = `; uncordon failed: ${(err as Error).message} (uncordon ${s.node} by hand)`;
            this.event(machine, 'Warning', 'UncordonFailed', `${owner}: ${(err as Error).message}`);
          }
        }
        const outcome: RebootOutcome = s.outcome ?? { ok: false, reason: 'RebootFailed', message: 'stopped without an outcome' };
        this.go(id, s, 'Done', { outcome: { ...outcome, message: `${outcome.message}${note}` }, message: outcome.message });
        const done = this.d.store.getReboot(id);
        if (done !== null) for (const l of this.listeners) l(toView(done));
        return false;
      }
      case 'Done':
        return false;
    }
  }

  /**
   * Records the boot id and kernels as they are now, and the node.reboot command, in one
   * transaction; then sends it. Without a boot id from the agent a reboot could not be
   * verified, so it is not done.
   */
  private sendReboot(id: string, machine: string, owner: string, s: RebootState): boolean {
    if (s.rebootAt !== null) return this.go(id, s, 'WaitingForBoot', {});
    const host = this.host(machine);
    const bootBefore = host?.bootId ?? null;
    if (bootBefore === null) {
      return this.fail(id, machine, owner, s, 'RebootFailed', 'reboot', `${machine}'s agent does not report its boot id (an older agent?), so a reboot could not be verified; not rebooted. Upgrade the agent`);
    }
    const now = this.d.clock();
    this.d.store.transaction(() => {
      this.d.commands.record({ id, machine, kind: CommandKind.nodeReboot, params: { reason: s.reason.slice(0, 200) }, owner: `reboot/${owner}`, timeoutMs: REBOOT_COMMAND_TIMEOUT_MS });
      this.save(id, s, { step: 'WaitingForBoot', since: now, bootBefore, kernelBefore: host?.kernel ?? null, expectedKernel: host?.newestKernel ?? null, rebootAt: now, message: 'reboot sent; waiting for a new boot' });
      this.event(machine, 'Normal', 'RebootStarted', `${owner}: node.reboot sent (boot ${bootBefore.slice(0, 8)}, kernel ${host?.kernel ?? 'unknown'}${host?.newestKernel ? `, expecting ${host.newestKernel}` : ''})`);
    });
    this.d.commands.sendById(id);
    return false;
  }

  /** The agent answered the reboot command: `rebooting` (or `healthy`: re-delivered after the reboot) or a refusal. */
  private commandFinished(c: CommandRecord): void {
    if (c.kind !== CommandKind.nodeReboot || c.owner === null || !c.owner.startsWith('reboot/')) return;
    try {
      this.answered(c);
    } catch (err) {
      this.d.log.error({ err, reboot: c.id }, 'cannot take the reboot command result; the boot verdict decides');
    }
  }

  private answered(c: CommandRecord): void {
    const r = this.d.store.getReboot(c.id);
    if (r === null || r.finishedAt !== null) return;
    const s = r.state as RebootState;
    if (s.step !== 'WaitingForBoot') return;
    const outcome = c.result?.['outcome'];
    if (c.state === 'Succeeded' && (outcome === 'rebooting' || outcome === 'healthy')) {
      this.save(r.id, s, { ackAt: this.d.clock() });
      this.run(r.id);
      return;
    }
    if (c.state === 'TimedOut') return; // the boot verdict (or its timeout) decides
    const why = c.error?.message ?? c.message;
    // Refused before anything happened (no --allow-reboot, systemctl failed): nothing to wait for.
    if (this.facts(r.machine).bootId !== s.bootBefore) return; // rebooted anyway: the boot verdict decides
    this.fail(r.id, r.machine, r.owner, s, 'RebootFailed', 'reboot', `${r.machine} did not reboot: ${why}`);
    this.run(r.id);
  }

  private facts(machine: string): BootFacts {
    const rec = this.d.fleet.get(machine);
    const host = this.host(machine);
    const node = this.d.member === null ? null : this.d.member.node(machine, rec?.machineId ?? null);
    return {
      connected: this.d.fleet.isConnected(machine),
      bootId: host?.bootId ?? null,
      kernel: host?.kernel ?? null,
      nodeReady: this.d.member === null ? null : node?.ready ?? 'Unknown',
    };
  }

  private host(machine: string): HostFacts | undefined {
    return this.d.fleet.get(machine)?.report?.host as HostFacts | undefined;
  }

  private nodeOf(machine: string): string {
    const node = this.d.member!.findNode(machine, this.d.fleet.get(machine)?.machineId ?? null);
    if (node?.metadata?.name === undefined) throw new AppError('NK_MEMBER_NODE_NOT_FOUND', `no Node in the member cluster for machine ${machine} (by name, kubernetes.io/hostname label or machine id)`);
    return node.metadata.name;
  }

  private fail(id: string, machine: string, owner: string, s: RebootState, reason: string, failedStep: string, message: string): boolean {
    this.event(machine, 'Warning', reason, `${owner}: ${message}`);
    this.d.log.warn({ machine, reboot: id, reason }, message);
    return this.go(id, s, 'Uncordoning', { outcome: { ok: false, reason, message, failedStep } });
  }

  private go(id: string, s: RebootState, step: RebootStep, patch: Partial<RebootState>): true {
    if (step !== s.step && !REBOOT_TRANSITIONS[s.step].includes(step)) throw new RangeError(`reboot ${id}: no step ${s.step} -> ${step}`);
    this.save(id, s, { ...patch, step, since: step === s.step ? s.since : this.d.clock() });
    return true;
  }

  private save(id: string, s: RebootState, patch: Partial<RebootState>): void {
    const latest = (this.d.store.getReboot(id)?.state as RebootState | undefined) ?? s;
    const next = { ...latest, ...patch };
    this.d.store.saveReboot(id, next, next.step === 'Done');
  }

  private event(machine: string, type: 'Normal' | 'Warning', reason: string, message: string): void {
    this.d.store.recordEvent({ object: `machine/${machine}`, type, reason, message });
  }
}

function toView(r: { id: string; machine: string; owner: string; state: unknown }): RebootView {
  return { id: r.id, machine: r.machine, owner: r.owner, state: r.state as RebootState };
}
