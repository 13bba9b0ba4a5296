/**
 * Reading `systemctl show` output into a ServiceState. Pure; shared by the service probe
 * (probes/service.ts) and the systemd adapter (services/systemd.ts). It lives with the
 * service managers so that probes depend on services and never the reverse.
 */
import type { ServiceState } from '@nodekeeper/protocol';

/** The properties both readers ask `systemctl show --property=` for. */
export const SHOW_PROPERTIES = ['ActiveState', 'SubState', 'NRestarts'] as const;

/**
 * Parses `systemctl show --property=...` output (`Key=Value` lines, in systemd's own
 * order). Unknown keys are kept; a value may itself contain '='.
 */
export function parseSystemctlShow(text: string): Map<string, string> {
  const props = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    props.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  return props;
}

/** Turns parsed properties into a ServiceState; missing or odd values become null. */
export function serviceStateFromProps(unit: string, props: Map<string, string>): ServiceState {
  const text = (key: string): string | null => {
    const v = props.get(key);
    return v === undefined || v === '' ? null : v.slice(0, 256);
  };
  // NRestarts appeared in systemd 235; older managers do not report it.
  const rawRestarts = text('NRestarts');
  const restarts = rawRestarts !== null && /^\d+$/.test(rawRestarts) ? Number(rawRestarts) : null;
  return {
    unit,
    manager: 'systemd',
    activeState: text('ActiveState'),
    subState: text('SubState'),
    restarts: restarts !== null && Number.isSafeInteger(restarts) ? restarts : null,
  };
}
