/**
 * The service manager's view of a unit (kubelet.service, containerd.service). Where
 * systemd runs we ask `systemctl show`; elsewhere, a unit the agent's supervisor adapter
 * runs (services/supervisor.ts) is reported with the supervisor's state and start count
 * (manager 'none' on the wire); otherwise (containers, the test machine) the state is
 * "no service manager", which is not a fault of the node.
 */
import { access } from 'node:fs/promises';
import type { ServiceState } from '@nodekeeper/protocol';
import { resolveHostPath } from './config.ts';
import type { ProbeContext } from './context.ts';
import { SupervisorServiceManager } from '../services/supervisor.ts';
import { SHOW_PROPERTIES, parseSystemctlShow, serviceStateFromProps } from '../services/systemd-show.ts';

const SYSTEMCTL = '/usr/bin/systemctl';
const SYSTEMCTL_TIMEOUT_MS = 3000;

/**
 * True when systemd is the running init of the host: sd_booted(3) checks that
 * /run/systemd/system exists, and so do we (under the host root).
 */
export async function systemdBooted(hostRoot: string): Promise<boolean> {
  try {
    await access(resolveHostPath(hostRoot, '/run/systemd/system'));
    return true;
  } catch {
    return false;
  }
}

/**
 * The unit's state. Never throws for node faults: when systemctl fails, the manager
 * is still 'systemd' but every field is null (unknown).
 *
 * In a container the host's /run/systemd must be mounted at <hostRoot>/run/systemd and
 * reachable by systemctl, or the answer would be the container's own manager's.
 */
export async function probeService(unit: string, ctx: ProbeContext): Promise<ServiceState> {
  if (!(await systemdBooted(ctx.config.hostRoot))) {
    const supervisor = new SupervisorServiceManager(ctx.config.hostRoot);
    if (await supervisor.defines(unit)) return supervisor.state(unit);
    return { unit, manager: 'none', activeState: null, subState: null, restarts: null };
  }
  const result = await ctx.run(
    SYSTEMCTL,
    ['show', `--property=${SHOW_PROPERTIES.join(',')}`, '--', unit],
    { timeoutMs: SYSTEMCTL_TIMEOUT_MS, env: { SYSTEMD_PAGER: '', LC_ALL: 'C' } },
  );
  if (result.code !== 0 || result.spawnError !== null) {
    return { unit, manager: 'systemd', activeState: null, subState: null, restarts: null };
  }
  return serviceStateFromProps(unit, parseSystemctlShow(result.stdout));
}
