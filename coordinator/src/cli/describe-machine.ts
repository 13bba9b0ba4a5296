/**
 * `nkctl describe machine NAME`, laid out like `kubectl describe`: aligned
 * `Key:  value` lines, nested sections, small tables with dashed rules, and the
 * recent events last. Everything an operator needs to see why a node is unhealthy
 * without reaching for -o yaml. Pure: objects and a clock in, text out.
 */
import { machineRemediation, type Event as EventObject, type FaultObject, type Machine as MachineObject, type MachineRemediationSummary, type ProbeFields, type VersionFields } from '@nodekeeper/api';
import type { ServiceState } from '@nodekeeper/protocol';
import { ageSince } from './machines-view.ts';
import { nodeCell } from './machines-view.ts';
import { renderTable } from './table.ts';

/** A `Key: value` pair, or a pre-rendered nested block. */
export type Line = readonly [key: string, value: string] | string;

/** Aligned `Key:  value` lines; a plain string is emitted as is (nested blocks). Multi-line values hang under the value column. */
/** The "Events:" section every describe ends with. */
export function eventsSection(events: readonly EventObject[], now: number): string {
  if (events.length === 0) return 'Events:  <none>';
  return 'Events:\n' + renderTable(
    ['Type', 'Reason', 'Age', 'Message'],
    events.map((e) => [e.type, e.reason, ageSince(e.at, now, '<unknown>'), e.message]),
    { describe: true, indent: 2 },
  ).trimEnd();
}

export function block(lines: readonly Line[], indent: number): string {
  const pairs = lines.filter((l): l is readonly [string, string] => typeof l !== 'string');
  const width = Math.max(0, ...pairs.map(([k]) => k.length + 1));
  const pad = ' '.repeat(indent);
  return lines
    .map((l) => {
      if (typeof l === 'string') return l.replace(/\n$/, '');
      const [k, v] = l;
      const value = v === '' ? '<none>' : v;
      const hang = '\n' + ' '.repeat(indent + width + 2);
      return `${pad}${`${k}:`.padEnd(width)}  ${value.split('\n').join(hang)}`.trimEnd();
    })
    .join('\n');
}

/** `<time> (<age> ago)`, or `<never>`. */
export function timeAndAge(time: string | null | undefined, now: number): string {
  if (time === null || time === undefined) return '<never>';
  return `${time} (${ageSince(time, now)} ago)`;
}

function versionText(v: VersionFields): string {
  if (v.version === null) return '<unknown>';
  const extras = [v.semver !== undefined ? `semver ${v.semver}` : 'no semver reading', v.versionSource !== undefined ? `from ${v.versionSource}` : ''];
  return `${v.version} (${extras.filter((e) => e !== '').join(', ')})`;
}

function healthText(p: ProbeFields | { health: string; reason: string }): string {
  return p.reason === '' ? p.health : `${p.health} (${p.reason})`;
}

function serviceText(s: ServiceState | null): string {
  if (s === null) return '<unknown>';
  if (s.manager === 'none') return `${s.unit}: no service manager`;
  const state = [s.activeState ?? '?', s.subState ?? '?'].join('/');
  const restarts = s.restarts === null ? '' : `, ${s.restarts} restarts`;
  return `${s.unit} (${s.manager}): ${state}${restarts}`;
}

function probeLines(p: ProbeFields): Line[] {
  return [
    ['Health', healthText(p)],
    ['Message', p.message],
    ['Version', versionText(p)],
  ];
}

function gib(bytes: number): string {
  return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
}

function uptime(seconds: number): string {
  const d = Math.floor(seconds / 86_400);
  const h = Math.floor((seconds % 86_400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return d > 0 ? `${d}d${h}h` : h > 0 ? `${h}h${m}m` : `${m}m`;
}

/** The faults as a describe table (indented under their section), or `<none>`. */
export function faultsTable(title: string, faults: readonly FaultObject[], now: number, indent: number): string {
  const pad = ' '.repeat(indent);
  if (faults.length === 0) return `${pad}${title}:  <none>`;
  return `${pad}${title}:\n` + renderTable(
    ['Type', 'Status', 'Reason', 'Age', 'Message'],
    faults.map((f) => [f.type, f.status, f.reason, ageSince(f.since, now, '<unknown>'), f.message]),
    { describe: true, indent: indent + 2 },
  ).trimEnd();
}

/** The Remediation section of `describe machine`, or null for a quiet machine (Idle, no fault). */
export function machineRemediationSection(rem: MachineRemediationSummary | null, faults: readonly FaultObject[], now: number): string | null {
  const idle = rem === null || rem.phase === 'Idle';
  if (idle && faults.length === 0) return null;
  const lines: Line[] = rem === null ? [['Phase', '<unknown>']] : [
    ['Phase', rem.phase],
    ['Reason', rem.reason],
    ['Rule', rem.rule ?? ''],
    ['Step', rem.step === null ? '' : String(rem.step + 1)],
    ['Cordoned', rem.cordoned ? 'yes' : 'no'],
  ];
  return 'Remediation:\n' + block([...lines, faultsTable('Faults', faults, now, 2)], 2);
}

function section(title: string, body: string): string {
  return `${title}:\n${body}`;
}

/** The full description of one machine and its recent events (oldest first). */
export function describeMachine(m: MachineObject, events: readonly EventObject[], now: number): string {
  const s = m.status;
  const labels = Object.entries(m.metadata.labels).map(([k, v]) => `${k}=${v}`);
  const out: string[] = [];
  const top: Line[] = [
    ['Name', m.metadata.name],
    ['Machine ID', m.spec.machineId],
    ['Hostname', m.spec.hostname],
    ['Labels', labels.join('\n')],
    ['Addresses', m.spec.addresses.join(', ')],
    ['Zone', m.spec.zone ?? ''],
    ['Enrolled', timeAndAge(m.metadata.creationTimestamp, now)],
    ['Agent Version', s.agentVersion ?? '<unknown>'],
    ['Phase', `${s.phase} since ${timeAndAge(s.phaseTransitionTime, now)}`],
    ['Phase Reason', s.phaseReason === '' ? '' : `${s.phaseReason}: ${s.phaseMessage}`],
    ['Last Seen', timeAndAge(s.lastSeenTime, now)],
    ['Last Report', timeAndAge(s.lastReportTime, now)],
  ];
  if (s.revoked === true) top.push(['Revoked', `${timeAndAge(s.revokedTime, now)}: the agent's credential is refused`]);
  out.push(block(top, 0));

  out.push(
    s.conditions.length === 0
      ? 'Conditions:  <none>'
      : section('Conditions', renderTable(
          ['Type', 'Status', 'Reason', 'Age', 'Message'],
          s.conditions.map((c) => [c.type, c.status, c.reason, ageSince(c.lastTransitionTime, now, '<unknown>'), c.message]),
          { describe: true, indent: 2 },
        )),
  );

  if (s.node !== undefined) {
    out.push(section('Node', block([['Name', s.node.name], ['Status', nodeCell(s.node)], ['Provider ID', s.node.providerID ?? '<none>']], 2)));
  }

  if (s.packages !== undefined && s.packages.length > 0) {
    out.push(section('Packages', renderTable(
      ['Name', 'Current', 'Desired', 'State', 'Reason'],
      s.packages.map((p) => [p.name, p.current ?? '<none>', p.desired, p.state, p.reason]),
      { describe: true, indent: 2 },
    )));
  }

  const rem = machineRemediation(m);
  const remSection = machineRemediationSection(rem.remediation, rem.faults, now);
  if (remSection !== null) out.push(remSection);

  if (s.kubelet === undefined) {
    out.push('Components:  <none> (no report from the agent yet)');
  } else {
    out.push(section('Kubelet', block([...probeLines(s.kubelet), ['Service', serviceText(s.kubelet.service)], ['Observed', `${s.kubelet.observedAt} (agent clock)`]], 2)));
  }
  if (s.containerd !== undefined) {
    const r = s.containerd;
    const runtime = r.runtimeName === null ? '<unknown>' : `${r.runtimeName}${r.runtimeApiVersion === null ? '' : `, CRI API ${r.runtimeApiVersion}`}`;
    const conds = r.conditions.length === 0
      ? '  Conditions:  <none>'
      : '  Conditions:\n' + renderTable(['Type', 'Status', 'Reason', 'Message'], r.conditions.map((c) => [c.type, String(c.status), c.reason, c.message]), { describe: true, indent: 4 });
    out.push(section('Containerd', block([...probeLines(r), ['Runtime', runtime], ['Service', serviceText(r.service)], ['Observed', `${r.observedAt} (agent clock)`], conds], 2)));
  }
  if (s.cni !== undefined) {
    const c = s.cni;
    const network = c.networkName === null ? '' : `${c.networkName}${c.cniVersion === null ? '' : ` (cniVersion ${c.cniVersion})`}`;
    const plugins = c.plugins.length === 0
      ? '  Plugins:  <none>'
      : '  Plugins:\n' + renderTable(
          ['Type', 'Version', 'Supported Versions', 'Binary'],
          c.plugins.map((p) => [p.type, versionText(p), p.supportedVersions.join(','), p.binary ?? '<missing>']),
          { describe: true, indent: 4 },
        );
    out.push(section('CNI', block([...probeLines(c), ['Config File', c.configFile ?? ''], ['Network', network], ['Observed', `${c.observedAt} (agent clock)`], plugins], 2)));
  }
  if (s.host !== undefined) {
    const h = s.host;
    const disks = h.disks.length === 0
      ? '  Disks:  <none>'
      : '  Disks:\n' + renderTable(['Path', 'Used', 'Total', 'Use%'], h.disks.map((d) => [d.path, gib(d.usedBytes), gib(d.totalBytes), `${Math.round(d.usedPercent)}%`]), { describe: true, indent: 4 });
    const p = h.pressure;
    out.push(section('Host', block([
      ['Health', healthText(h)],
      ['Message', h.message],
      ['OS', h.os],
      ['Kernel', h.newestKernel === undefined || h.newestKernel === null || h.newestKernel === h.kernel ? h.kernel : `${h.kernel} (newest installed ${h.newestKernel})`],
      ...(h.bootId === undefined ? [] : [['Boot ID', h.bootId ?? '<unknown>'] as [string, string]]),
      ...(h.reboot === undefined ? [] : [['Reboot Required', h.reboot.required ? `yes: ${h.reboot.reasons.join('; ')}` : 'no'] as [string, string]]),
      ...(h.readOnlyMounts === undefined || h.readOnlyMounts.length === 0 ? [] : [['Read-only', h.readOnlyMounts.join(', ')] as [string, string]]),
      ['Arch', h.arch],
      ['CPUs', String(h.cpus)],
      ['Memory', `${gib(h.memory.availableBytes)} available of ${gib(h.memory.totalBytes)}`],
      ['Uptime', uptime(h.uptimeSeconds)],
      ['Pressure', `disk=${p.disk} memory=${p.memory} pid=${p.pid}`],
      disks,
    ], 2)));
  }

  out.push(eventsSection(events, now));
  return out.map((o) => o.replace(/\n$/, '')).join('\n') + '\n';
}
