/**
 * Picks the service manager adapter at start-up. Apart from the ServiceManager port
 * (service-manager.ts) so the adapters can implement the port without importing
 * their own factory.
 */
import { existsSync } from 'node:fs';
import { resolveHostPath } from '../probes/config.ts';
import type { CommandRunner } from '../probes/run-command.ts';
import type { ServiceManager } from './service-manager.ts';
import { SupervisorServiceManager } from './supervisor.ts';
import { SystemdServiceManager } from './systemd.ts';

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
