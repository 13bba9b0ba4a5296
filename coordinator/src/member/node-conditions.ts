/**
 * The Node conditions nodekeeper keeps on each member Node, and the patch that brings a
 * Node there. Pure: no I/O, no clock reads (the writer, node-conditions-writer.ts,
 * passes `now` and sends the patch).
 *
 * The types are node-problem-detector's, so tools that match on them already
 * (Cluster API MachineHealthCheck, medik8s NHC, draino, alerting rules) work unchanged,
 * plus a few of our own. Polarity follows NPD: a problem type is True when the problem
 * is there; SystemdUnitsReady and NodekeeperManaged are True when good. Unknown when the
 * agent is silent, or when it does not report the fact (an older agent).
 * https://github.com/kubernetes/node-problem-detector/blob/master/config/kernel-monitor.json
 *
 * Fault-based types read the remediation faults (remediation/faults.ts), not the raw
 * report: a fault holds for `forSeconds` before it counts and clears only after
 * `clearSeconds` of health, so a condition does not flap with every probe.
 *
 * The diff: nodekeeper patches only its own types, through the status subresource, with
 * a strategic merge patch keyed by `type` (as the kubelet and NPD do), so the kubelet's
 * Ready, MemoryPressure, DiskPressure, PIDPressure, NetworkUnavailable and anyone else's
 * conditions are never sent, let alone overwritten. `lastTransitionTime` moves only when
 * `status` does; a condition is written only when its status, reason or message changed
 * (its `lastHeartbeatTime` is then the time of that write).
 */
import type { NodeReport, ServiceState } from '@nodekeeper/protocol';
import type { Fault, FaultType } from '../remediation/faults.ts';
import type { RemediationPhase } from '../remediation/types.ts';
import type { LivenessState } from '../model/machine.ts';
import { camelReason } from '../fleet/conditions.ts';

export const NODE_CONDITION_TYPES = [
  'KubeletUnhealthy',
  'ContainerRuntimeUnhealthy',
  'FrequentKubeletRestart',
  'FrequentContainerdRestart',
  'ReadonlyFilesystem',
  'NetworkPluginUnhealthy',
  'SystemdUnitsReady',
  'RebootRequired',
  'NodekeeperManaged',
] as const;
export type NodeConditionType = (typeof NODE_CONDITION_TYPES)[number];
const OWNED: ReadonlySet<string> = new Set(NODE_CONDITION_TYPES);

/** True for the condition types nodekeeper writes; every other type is left alone. */
export function ownsConditionType(type: unknown): boolean {
  return typeof type === 'string' && OWNED.has(type);
}

export type ConditionStatus = 'True' | 'False' | 'Unknown';

/** What one condition should say now (times are the diff's business). */
export interface DesiredCondition {
  readonly type: NodeConditionType;
  readonly status: ConditionStatus;
  readonly reason: string;
  readonly message: string;
}

/** A condition as written to the Node (Kubernetes' NodeCondition, times as RFC 3339 strings). */
export interface WrittenCondition extends DesiredCondition {
  readonly lastHeartbeatTime: string;
  readonly lastTransitionTime: string;
}

/** Everything the conditions of one machine are derived from. */
export interface ConditionFacts {
  /** The machine was revoked: nodekeeper no longer manages the node. */
  readonly revoked: boolean;
  readonly liveness: LivenessState;
  readonly report: NodeReport | null;
  /** Every fault of the machine (Clear ones too) as of the remediation's last tick; null before its first. */
  readonly faults: readonly Fault[] | null;
  readonly remediation: { readonly phase: RemediationPhase; readonly reason: string; readonly message: string } | null;
  readonly agentVersion: string | null;
}

const MAX_MESSAGE = 1024;

/** The conditions one machine's Node should carry now, in NODE_CONDITION_TYPES order. */
export function desiredConditions(f: ConditionFacts): DesiredCondition[] {
  const silent = f.liveness === 'Unknown' || f.liveness === 'Pending' || f.revoked;
  const report = silent ? null : f.report;
  const why = f.revoked ? unknown('MachineRevoked', 'the machine was revoked; nodekeeper no longer watches this node')
    : f.liveness === 'Unknown' ? unknown('AgentSilent', 'the nodekeeper agent stopped reporting')
      : f.liveness === 'Pending' || f.report === null ? unknown('NoReport', 'no report from the nodekeeper agent yet') : null;
  const faults = f.faults === null ? null : new Map(f.faults.map((x) => [x.type, x]));
  const out: Record<NodeConditionType, Omit<DesiredCondition, 'type'>> = {
    KubeletUnhealthy: why ?? faultCondition(faults, ['KubeletNotRunning', 'KubeletUnhealthy'], report!.kubelet.health !== 'unknown' || knownService(report!.kubelet.service),
      { reason: 'KubeletIsHealthy', message: 'kubelet on the node is functioning properly' }),
    ContainerRuntimeUnhealthy: why ?? faultCondition(faults, ['RuntimeNotReady'], report!.runtime.health !== 'unknown',
      { reason: 'ContainerRuntimeIsHealthy', message: 'Container runtime on the node is functioning properly' }),
    FrequentKubeletRestart: why ?? faultCondition(faults, ['FrequentKubeletRestart'], report!.kubelet.service?.restarts != null,
      { reason: 'NoFrequentKubeletRestart', message: 'kubelet is functioning properly' }),
    FrequentContainerdRestart: why ?? faultCondition(faults, ['FrequentRuntimeRestart'], report!.runtime.service?.restarts != null,
      { reason: 'NoFrequentContainerdRestart', message: 'containerd is functioning properly' }),
    ReadonlyFilesystem: why ?? readOnly(report!),
    NetworkPluginUnhealthy: why ?? faultCondition(faults, ['NetworkNotReady'], report!.cni.health !== 'unknown',
      { reason: 'NetworkPluginIsHealthy', message: 'the CNI configuration and plugins are valid and the runtime network is ready' }),
    SystemdUnitsReady: why ?? units(report!),
    RebootRequired: why ?? reboot(report!),
    NodekeeperManaged: f.revoked ? { status: 'False', reason: 'MachineRevoked', message: 'the machine was revoked; nodekeeper no longer manages this node' }
      : why ?? managed(f, report!),
  };
  return NODE_CONDITION_TYPES.map((type) => ({ type, ...out[type], message: clip(out[type].message) }));
}

const unknown = (reason: string, message: string) => ({ status: 'Unknown' as const, reason, message });

function knownService(s: ServiceState | null): boolean {
  return s !== null && s.manager === 'systemd' && s.activeState !== null;
}

/**
 * True while one of the faults is Active or Clearing (a fault clears only after its
 * hysteresis), False when all are Clear or Pending and the fact is reported, Unknown
 * when it is not (or before the remediation's first derivation).
 */
function faultCondition(faults: ReadonlyMap<FaultType, Fault> | null, types: readonly FaultType[], known: boolean, healthy: { reason: string; message: string }): Omit<DesiredCondition, 'type'> {
  const bad = types.map((t) => faults?.get(t)).find((x) => x !== undefined && (x.status === 'Active' || x.status === 'Clearing'));
  if (bad?.status === 'Clearing') {
    // Healthy again, but held True until the fault clears; one message for the whole spell.
    const since = bad.goodSince === null ? '' : ` since ${new Date(bad.goodSince).toISOString()}`;
    return { status: 'True', reason: 'Recovering', message: `healthy again${since}; stays True until healthy for the fault's clear time (--fault-clear)` };
  }
  if (bad !== undefined) return { status: 'True', reason: camelReason(bad.reason, bad.type), message: bad.message || bad.type };
  if (faults === null) return unknown('NotYetObserved', 'faults not derived yet');
  if (!known) return unknown('NotReported', 'the agent does not report this');
  return { status: 'False', ...healthy };
}

function readOnly(report: NodeReport): Omit<DesiredCondition, 'type'> {
  // Optional in the protocol: an older agent leaves it out.
  const mounts = report.host.readOnlyMounts;
  if (mounts == null) return unknown('NotReported', 'the agent does not report read-only mounts (an older agent)');
  if (mounts.length === 0) return { status: 'False', reason: 'FilesystemIsNotReadOnly', message: 'Filesystem is not read-only' };
  return { status: 'True', reason: 'FilesystemIsReadOnly', message: `read-only: ${[...mounts].sort().join(', ')}` };
}

function reboot(report: NodeReport): Omit<DesiredCondition, 'type'> {
  const r = report.host.reboot;
  if (r == null) return unknown('NotReported', 'the agent does not report whether a reboot is required (an older agent)');
  if (!r.required) return { status: 'False', reason: 'NoRebootRequired', message: 'no reboot is required' };
  return { status: 'True', reason: 'RebootRequired', message: r.reasons.length === 0 ? 'a reboot is required' : r.reasons.join('; ') };
}

/**
 * A unit is down when systemd says failed or inactive, or it waits to be started again
 * after a crash (activating, auto-restart). The passing states of an ordinary restart
 * (deactivating, activating) do not count: a restart by remediation or an install must
 * not flap the condition False and back within seconds; a unit stuck starting shows in
 * KubeletUnhealthy (healthz) instead.
 */
function unitDown(s: ServiceState): boolean {
  return s.activeState === 'failed' || s.activeState === 'inactive' || s.subState === 'auto-restart';
}

/**
 * kubelet's and the runtime's units as systemd sees them. Only systemd's word counts (as
 * in the faults): the agent's supervisor, for hosts without systemd, says `inactive` of
 * any unit it does not run, such as a containerd started by other means.
 */
function units(report: NodeReport): Omit<DesiredCondition, 'type'> {
  const seen = [report.kubelet.service, report.runtime.service].filter((s): s is ServiceState => s !== null && s.manager === 'systemd' && s.activeState !== null);
  if (seen.length === 0) return unknown('NotReported', 'systemd does not report the kubelet and runtime units (no systemd on the node, or an agent run without it)');
  const describe = (s: ServiceState) => `${s.unit} is ${s.activeState}${s.subState === null ? '' : ` (${s.subState})`}`;
  const down = seen.filter(unitDown);
  if (down.length > 0) {
    const failed = down.some((s) => s.activeState === 'failed');
    return { status: 'False', reason: failed ? 'UnitFailed' : 'UnitNotActive', message: down.map(describe).join('; ') };
  }
  return { status: 'True', reason: 'UnitsReady', message: seen.map(describe).join('; ') };
}

function managed(f: ConditionFacts, report: NodeReport): Omit<DesiredCondition, 'type'> {
  const version = (p: { version: { raw: string } | null }) => p.version?.raw ?? 'unknown';
  const r = f.remediation;
  const phase = r?.phase ?? 'Idle';
  const parts = [
    `agent ${f.agentVersion ?? 'unknown'}`,
    `kubelet ${version(report.kubelet)}`,
    `${report.runtime.runtimeName ?? 'runtime'} ${version(report.runtime)}`,
    `CNI ${version(report.cni)}`,
  ];
  const story = r === null || phase === 'Idle' ? '' : `; remediation ${phase}: ${r.reason}${r.message ? `: ${r.message}` : ''}`;
  return { status: 'True', reason: phase, message: `${parts.join(', ')}${story}` };
}

function clip(s: string): string {
  return s.length <= MAX_MESSAGE ? s : `${s.slice(0, MAX_MESSAGE - 3)}...`;
}

/** A Kubernetes time: RFC 3339, whole seconds (metav1.Time drops the fraction anyway). */
export function kubeTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

/** A time field as read from the API (client-node gives Date objects, raw JSON strings); NaN when absent or bad. */
function timeOf(v: unknown): number {
  if (v instanceof Date) return v.getTime();
  if (typeof v === 'string') return Date.parse(v);
  return NaN;
}

/**
 * The conditions to send so the Node says `desired`: only nodekeeper's types, only those
 * whose status, reason or message differ (or whose lastTransitionTime is missing, bad,
 * or in the future: a type we own must carry a true one). Empty when nothing changed.
 * `current` is the Node's status.conditions as read, and may hold anything: entries
 * that are not objects or have no string type are skipped, never sent back. With
 * several entries of one of our types, the first decides (it is the one a strategic
 * merge patch updates).
 */
export function planConditionPatch(current: unknown, desired: readonly DesiredCondition[], now: number): WrittenCondition[] {
  const list = Array.isArray(current) ? current : [];
  const byType = new Map<string, Record<string, unknown>>();
  for (const c of list) {
    if (c === null || typeof c !== 'object' || Array.isArray(c)) continue;
    const type = (c as { type?: unknown }).type;
    if (typeof type === 'string' && OWNED.has(type) && !byType.has(type)) byType.set(type, c as Record<string, unknown>);
  }
  const stamp = kubeTime(now);
  const out: WrittenCondition[] = [];
  for (const d of desired) {
    if (!OWNED.has(d.type)) throw new TypeError(`not a nodekeeper condition type: ${d.type}`);
    const before = byType.get(d.type);
    const transition = before === undefined ? NaN : timeOf(before['lastTransitionTime']);
    const validTransition = Number.isFinite(transition) && transition <= now;
    const sameStatus = before !== undefined && before['status'] === d.status;
    if (sameStatus && validTransition && before['reason'] === d.reason && before['message'] === d.message) continue;
    out.push({ ...d, lastHeartbeatTime: stamp, lastTransitionTime: sameStatus && validTransition ? kubeTime(transition) : stamp });
  }
  return out;
}

/** The strategic merge patch body for `conditions` (status.conditions is keyed by type). */
export function conditionPatchBody(conditions: readonly WrittenCondition[]): { status: { conditions: WrittenCondition[] } } {
  return { status: { conditions: [...conditions] } };
}

/** A strategic merge directive that removes every entry of one condition type. */
export interface ConditionRemoval {
  readonly type: NodeConditionType;
  readonly $patch: 'delete';
}

/**
 * The directives that remove nodekeeper's conditions from a Node it no longer manages
 * (its machine was deleted): one per type of ours the Node carries; empty when none.
 */
export function planConditionRemoval(current: unknown): ConditionRemoval[] {
  const list = Array.isArray(current) ? current : [];
  const present = new Set(list.map((c) => (c !== null && typeof c === 'object' ? (c as { type?: unknown }).type : undefined)));
  return NODE_CONDITION_TYPES.filter((t) => present.has(t)).map((type) => ({ type, $patch: 'delete' as const }));
}

/**
 * What the API server does with the patch (a strategic merge on a list keyed by
 * `type`): each sent entry's fields replace those of the first entry of its type, or it
 * is appended. Used by the tests to check the diff; the real server is tested in
 * test/node-conditions.test.ts.
 */
export function applyConditionPatch(current: readonly unknown[], patch: ReadonlyArray<WrittenCondition | ConditionRemoval>): unknown[] {
  let out = [...current];
  for (const p of patch) {
    if ('$patch' in p) {
      out = out.filter((c) => !(c !== null && typeof c === 'object' && (c as { type?: unknown }).type === p.type));
      continue;
    }
    const i = out.findIndex((c) => c !== null && typeof c === 'object' && (c as { type?: unknown }).type === p.type);
    if (i >= 0) out[i] = { ...(out[i] as object), ...p };
    else out.push({ ...p });
  }
  return out;
}
