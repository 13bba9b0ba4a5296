/**
 * systemd: `systemctl restart|stop UNIT`, and the state the probes already read.
 * In a container the host's systemd bus must be reachable, as for the service probe.
 */
import { AppError } from '@nodekeeper/common';
import type { ServiceState } from '@nodekeeper/protocol';
import { describeFailure, type CommandRunner } from '../probes/run-command.ts';
import { SHOW_PROPERTIES, parseSystemctlShow, serviceStateFromProps } from './systemd-show.ts';
import type { ServiceManager } from './service-manager.ts';

const SYSTEMCTL = '/usr/bin/systemctl';
/** A unit's own start timeout is systemd's business; this only bounds a hung systemctl. */
const SYSTEMCTL_TIMEOUT_MS = 120_000;
const ENV = { SYSTEMD_PAGER: '', LC_ALL: 'C' };

export class SystemdServiceManager implements ServiceManager {
  readonly kind = 'systemd' as const;
  private readonly run: CommandRunner;

  constructor(run: CommandRunner) {
    this.run = run;
  }

  async restart(unit: string): Promise<void> {
    await this.systemctl('restart', unit);
  }

  async stop(unit: string): Promise<void> {
    await this.systemctl('stop', unit);
  }

  async state(unit: string): Promise<ServiceState> {
    const r = await this.run(SYSTEMCTL, ['show', `--property=${SHOW_PROPERTIES.join(',')}`, '--', unit], { timeoutMs: 5000, env: ENV });
    if (r.code !== 0 || r.spawnError !== null) return { unit, manager: 'systemd', activeState: null, subState: null, restarts: null };
    return serviceStateFromProps(unit, parseSystemctlShow(r.stdout));
  }

  private async systemctl(verb: 'restart' | 'stop', unit: string): Promise<void> {
    const r = await this.run(SYSTEMCTL, [verb, '--', unit], { timeoutMs: SYSTEMCTL_TIMEOUT_MS, env: ENV });
    if (r.code !== 0 || r.spawnError !== null) {
      throw new AppError('NK_SERVICE_COMMAND_FAILED', `systemctl ${verb} ${unit} failed: ${describeFailure(SYSTEMCTL, r)}`, { context: { unit, verb } });
    }
  }
}
