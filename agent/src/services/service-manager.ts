/**
 * The service manager behind one small interface (kured's style: single-purpose calls):
 * restart a unit, stop it, read its state. `systemd` on real nodes; `supervisor` where
 * there is no systemd (tests, the demo, minimal containers).
 */
import type { ServiceState } from '@nodekeeper/protocol';
import { existsSync } from 'node:fs';
import { resolveHostPath } from '../probes/config.ts';
import type { CommandRunner } from '../probes/run-command.ts';
import { SupervisorServiceManager } from './supervisor.ts';
import { SystemdServiceManager } from './systemd.ts';

export interface ServiceManager {
  readonly kind: 'systemd' | 'supervisor';
  /** Restarts `unit` (starts it when stopped); resolves once the manager has started it. */
  restart(unit: string): Promise<void>;
  /** Stops `unit`; a stopped unit is not an error. */
  stop(unit: string): Promise<void>;
  state(unit: string): Promise<ServiceState>;
}

export type ServiceManagerKind = 'systemd' | 'supervisor' | 'auto';

/**
 * The manager for `kind`; `auto` is systemd when it is the host's init (sd_booted(3):
 * `<hostRoot>/run/systemd/system` exists), else the supervisor.
 */
export function createServiceManager(kind: ServiceManagerKind, opts: { hostRoot: string; run: CommandRunner }): ServiceManager {
  // Synchronous (start-up only), so the agent's constructor can wire it.
  const booted = (): boolean => existsSync(resolveHostPath(opts.hostRoot, '/run/systemd/system'));
  const chosen = kind === 'auto' ? (booted() ? 'systemd' : 'supervisor') : kind;
  return chosen === 'systemd' ? new SystemdServiceManager(opts.run) : new SupervisorServiceManager(opts.hostRoot);
}
