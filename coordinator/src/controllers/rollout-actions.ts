/**
 * What a rollout's plan asks of the world, recorded: installs and rollbacks as commands
 * (with their parameters and deadlines), reboots through the reboot driver, events; and,
 * when a rollout stops, the commands and reboots it had not sent yet cancelled. Recording
 * happens in the caller's transaction (the new state with it); sending comes after.
 */
import { AppError, type Logger } from '@nodekeeper/common';
import type { InstallParams, PackageManifest, RollbackParams } from '@nodekeeper/protocol';
import { CommandKind } from '@nodekeeper/protocol';
import type { CommandDispatcher } from '../commands/dispatcher.ts';
import type { FleetView } from '../fleet/fleet-view.ts';
import { observedVersion } from '../packages/cluster-package-version.ts';
import { installParamsFor, packageManifest } from '../packages/install-params.ts';
import type { RebootDriver } from '../reboot/driver.ts';
import type { RebootGateChecker } from '../reboot/gates.ts';
import type { RolloutSpec } from '../rollout/spec.ts';
import type { PlanAction } from '../rollout/types.ts';
import type { Store } from '../store/db.ts';
import { rolloutOwner as owner } from './rollout-results.ts';

/** Room for the download and unpack on top of the package's own health timeout. */
const INSTALL_ALLOWANCE_MS = 30 * 60_000;

/** Why a rollout stops on its own: a canary failed, too many machines failed, a rollback or a reboot failed. */
export const FAILURE_REASONS = ['CanaryFailed', 'FailureThreshold', 'RollbackFailed', 'RebootFailed'] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

export interface RolloutActionDeps {
  readonly store: Store;
  readonly fleet: FleetView;
  readonly commands: CommandDispatcher;
  readonly log: Logger;
  /** Runs the reboots of reboot rollouts (null: reboot rollouts are refused). */
  readonly reboots: RebootDriver | null;
  readonly gates: RebootGateChecker | null;
  /** Told each time a rollout stops on failures (for the failures counter of /metrics). */
  readonly failed: (reason: FailureReason) => void;
}

export class RolloutActions {
  readonly #deps: RolloutActionDeps;
  #baseUrl: () => string = () => '';

  constructor(deps: RolloutActionDeps) {
    this.#deps = deps;
  }

  /** The URL agents download pushed artifacts from (set once the server listens). */
  setArtifactBaseUrl(url: () => string): void {
    this.#baseUrl = url;
  }

  /** What an install of `version` of `pkg` sends (NK_ROLLOUT_UNKNOWN_PACKAGE when it cannot be built). */
  installParams(pkg: string, version: string): InstallParams {
    return installParamsFor(this.#deps.store, this.#baseUrl(), pkg, version, 'NK_ROLLOUT_UNKNOWN_PACKAGE');
  }

  /**
   * Records every action of a plan, in the caller's transaction; returns the ids of the
   * commands to send and of the reboots to run once it committed.
   */
  record(r: { readonly name: string; readonly spec: RolloutSpec }, actions: readonly PlanAction[]): { toSend: string[]; toReboot: string[] } {
    const toSend: string[] = [];
    const toReboot: string[] = [];
    for (const a of actions) {
      if (a.kind === 'reboot') {
        toReboot.push(this.#recordReboot(r, a.machine, a.commandId));
        continue;
      }
      const id = this.#recordAction(r.name, a);
      if (id !== null) toSend.push(id);
    }
    return { toSend, toReboot };
  }

  /**
   * A rollout that stopped (aborted, failed) sends nothing more: its installs not sent yet
   * (held behind a drain, or waiting for their agent to connect) are cancelled, and each
   * machine is told as Skipped (the result comes back through onFinished).
   */
  cancelUnsent(name: string, why: string): void {
    const { store, fleet, commands, reboots, gates, log } = this.#deps;
    gates?.forget(name);
    // Reboots not sent yet stop (drain stopped, Node uncordoned); sent ones are seen through.
    for (const rb of reboots?.byOwner(owner(name)) ?? []) reboots?.cancel(rb.id, `the rollout stopped (${why})`);
    for (const c of store.commandsByOwner(owner(name))) {
      if (c.kind !== CommandKind.install || c.sentAt !== null) continue;
      const message = `the install was never sent; the rollout stopped (${why}) first`;
      const activeVersion = observedVersion(fleet.get(c.machine), String(c.params['package']))?.raw ?? null;
      if (commands.cancelUnsent(c.id, { code: 'NK_ROLLOUT_STOPPED', message }, { outcome: 'cancelled', activeVersion, message })) {
        log.info({ rollout: name, machine: c.machine, command: c.id }, 'unsent install cancelled');
      }
    }
  }

  /** Records the reboot of one machine of a reboot rollout; returns its id. */
  #recordReboot(r: { readonly name: string; readonly spec: RolloutSpec }, machine: string, id: string): string {
    const reboot = r.spec.reboot;
    const reboots = this.#deps.reboots;
    if (reboots === null || reboot === undefined) throw new AppError('NK_REBOOT_UNAVAILABLE', `rollout "${r.name}": no reboot driver`);
    reboots.record({ id, machine, owner: owner(r.name), reason: `reboot rollout ${r.name}`, drain: reboot.drain, timeoutMs: reboot.timeoutSeconds * 1000 });
    return id;
  }

  /** Records what an action needs; returns the id of a command to send, if any. */
  #recordAction(name: string, a: PlanAction): string | null {
    const { store, commands } = this.#deps;
    switch (a.kind) {
      case 'install': {
        const params = this.installParams(a.package, a.version);
        commands.record({ id: a.commandId, machine: a.machine, kind: CommandKind.install, params: { ...params }, owner: owner(name), timeoutMs: params.manifest.healthTimeoutMs + INSTALL_ALLOWANCE_MS });
        return a.commandId;
      }
      case 'rollback': {
        const manifest: PackageManifest = packageManifest(store, a.package, 'NK_ROLLOUT_UNKNOWN_PACKAGE');
        const params: RollbackParams = { package: a.package, manifest, expectedVersion: a.version };
        commands.record({ id: a.commandId, machine: a.machine, kind: CommandKind.rollback, params: { ...params }, owner: owner(name), timeoutMs: manifest.healthTimeoutMs * 2 + 60_000 });
        return a.commandId;
      }
      case 'event':
        store.recordEvent({ object: a.object, type: a.type, reason: a.reason, message: a.message });
        return null;
      case 'setPhase':
        // The planner emits the transition's event itself. A failure is counted here: the
        // phase it leads to (RollingBack) can pass between two scrapes.
        if ((FAILURE_REASONS as readonly string[]).includes(a.reason)) this.#deps.failed(a.reason as FailureReason);
        return null;
      case 'reboot':
        return null; // recorded by #recordReboot
      case 'setMachinePhase':
        store.recordEvent({ object: `machine/${a.machine}`, type: a.phase === 'Failed' ? 'Warning' : 'Normal', reason: a.reason, message: `rollout ${name}: ${a.phase}: ${a.message}` });
        return null;
    }
  }
}
