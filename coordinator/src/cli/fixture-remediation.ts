/**
 * Remediation for the fixture server (test support, not the coordinator's controller):
 * per-machine Remediation objects, the fleet status, and RemediationRules (the shipped
 * defaults plus applied ones, validated by the real `validateRule`), served by the
 * contract in docs/nkctl.md ("API"). Also a sample fleet: a machine with a pending fault,
 * one mid-ladder, one cordoned at NeedsHuman.
 */
import type { MachineObject } from '../api/objects.ts';
import { DEFAULT_RULE_OBJECTS, validateRule } from '../remediation/rules.ts';
import type { FaultObject, Machine as MachineWithRemediation, RemediationFleetStatus, Remediation as RemediationObject, RemediationRule as RemediationRuleObject } from '@nodekeeper/api';

export interface FixtureRemediation {
  status: { paused: boolean; dryRun: boolean; storm: RemediationFleetStatus['storm']; maxConcurrent: number };
  /** Machines with a remediation record; any other machine is Idle without faults. */
  machines: Record<string, RemediationObject>;
  /** Rules applied with PUT; they replace the default rule of the same fault. */
  applied: RemediationRuleObject[];
}

/** The answer of a route: status and JSON body. */
export type Reply = (status: number, body: unknown) => void;

const MIN = 60_000;

function idle(machine: string): RemediationObject {
  return {
    kind: 'Remediation', machine, phase: 'Idle', reason: '', message: '', since: null, rule: null, step: null, action: null,
    commandId: null, attempts: 0, cooldownUntil: null, cordoned: false, paused: false, faults: [], history: [],
  };
}

/**
 * node-1: Idle with a KubeletUnhealthy fault still Pending; node-2: Running step 1 of
 * network-not-ready (RestoreConfig) for its deleted CNI config; node-5: NeedsHuman and
 * cordoned after its crash-looping kubelet spent the ladder.
 */
export function sampleRemediation(now: number): FixtureRemediation {
  const at = (ago: number) => new Date(now - ago).toISOString();
  const fault = (type: string, status: string, reason: string, message: string, ago: number): FaultObject => ({ type, status, reason, message, since: at(ago) });
  return {
    status: { paused: false, dryRun: false, storm: { active: false, reason: '', message: '', since: null }, maxConcurrent: 5 },
    applied: [],
    machines: {
      'node-1': { ...idle('node-1'), faults: [fault('KubeletUnhealthy', 'Pending', 'HealthzFailed', 'healthz answered 500', 10_000)] },
      'node-2': {
        ...idle('node-2'), phase: 'Running', reason: 'StepStarted', message: 'RestoreConfig cni-plugins: restoring the desired config', since: at(MIN),
        rule: 'network-not-ready', step: 0, action: 'RestoreConfig', commandId: 'rem-2f1c9a', attempts: 1,
        faults: [fault('NetworkNotReady', 'Active', 'NoNetworkConfig', 'no network config found in /etc/cni/net.d', 2 * MIN)],
        history: [{ at: at(MIN), rule: 'network-not-ready', step: 0, action: 'RestoreConfig', result: 'started' }],
      },
      'node-5': {
        ...idle('node-5'), phase: 'NeedsHuman', reason: 'LadderExhausted', message: 'kubelet still crash-looping after ReinstallPackage; node cordoned', since: at(5 * MIN),
        rule: 'kubelet-crash-loop', step: 1, action: 'CordonAndNotify', attempts: 1, cordoned: true,
        faults: [fault('FrequentKubeletRestart', 'Active', 'RestartLoop', '7 restarts in 600s', 30 * MIN)],
        history: [
          { at: at(25 * MIN), rule: 'kubelet-crash-loop', step: 0, action: 'ReinstallPackage', result: 'succeeded; fault still Active after 900s' },
          { at: at(5 * MIN), rule: 'kubelet-crash-loop', step: 1, action: 'CordonAndNotify', result: 'cordoned; NeedsHuman' },
        ],
      },
    },
  };
}

/** Machines as the coordinator lists them: with `status.remediation` and their non-Clear `status.faults`. */
export function withRemediation(machines: readonly MachineObject[], rem: FixtureRemediation): MachineWithRemediation[] {
  return machines.map((m) => {
    const r = rem.machines[m.metadata.name] ?? idle(m.metadata.name);
    const remediation = { phase: r.phase, reason: r.reason, rule: r.rule, step: r.step, cordoned: r.cordoned };
    return { ...m, status: { ...m.status, remediation, faults: r.faults.filter((f) => f.status !== 'Clear') } };
  });
}

/** Every rule in force: applied ones, and the default of each fault without an applied rule. */
function rules(rem: FixtureRemediation): RemediationRuleObject[] {
  const faults = new Set(rem.applied.map((r) => r.spec.fault));
  const defaults = DEFAULT_RULE_OBJECTS
    .filter((d) => !faults.has(d.spec.fault))
    .map((d) => ({ ...structuredClone(d), status: { source: 'default' } }) as RemediationRuleObject);
  return [...defaults, ...rem.applied];
}

function fleetStatus(rem: FixtureRemediation): RemediationFleetStatus {
  const inFlight = Object.values(rem.machines).filter((r) => r.phase === 'Running').length;
  return { ...rem.status, inFlight };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function putRule(rem: FixtureRemediation, name: string, body: unknown, reply: Reply): void {
  const invalid = (path: string, why: string) => reply(400, { code: 'NK_REMEDIATION_RULE_INVALID', message: `invalid RemediationRule: ${path}: ${why}` });
  const v = validateRule(body);
  if (!v.ok) {
    reply(400, { code: 'NK_REMEDIATION_RULE_INVALID', message: `invalid RemediationRule: ${v.errors.map((e) => `${e.path}: ${e.message}`).join('; ')}` });
    return;
  }
  if (v.rule.name !== name) return invalid('/metadata/name', `"${v.rule.name}" does not match the URL's "${name}"`);
  const other = rem.applied.find((r) => r.spec.fault === v.rule.fault && r.metadata.name !== name);
  if (other !== undefined) return invalid('/spec/fault', `fault ${v.rule.fault} already has rule "${other.metadata.name}"`);
  const obj = body as RemediationRuleObject;
  // As the coordinator: the same spec again is unchanged (same resourceVersion); a change moves it.
  const before = rem.applied.find((r) => r.metadata.name === name);
  if (before !== undefined && JSON.stringify(before.spec) === JSON.stringify(obj.spec)) return reply(200, before);
  const resourceVersion = String(Number((before?.metadata as { resourceVersion?: string } | undefined)?.resourceVersion ?? 0) + 1);
  const stored = { apiVersion: obj.apiVersion, kind: 'RemediationRule', metadata: { name, resourceVersion }, spec: obj.spec, status: { source: 'applied' } } as RemediationRuleObject;
  rem.applied = [...rem.applied.filter((r) => r.metadata.name !== name), stored];
  reply(before === undefined ? 201 : 200, stored);
}

/**
 * Routes of /v1/remediations and /v1/remediationrules (`parts` without the leading
 * `v1`). True when the request was answered.
 */
export function handleRemediation(rem: FixtureRemediation, machines: readonly MachineObject[], method: string, parts: readonly string[], body: unknown, reply: Reply): boolean {
  if (parts[1] === 'remediationrules') {
    const name = parts[2];
    if (parts.length === 2 && method === 'GET') reply(200, { kind: 'RemediationRuleList', items: rules(rem) });
    else if (parts.length === 3 && name !== undefined && method === 'PUT') putRule(rem, name, body, reply);
    else if (parts.length === 3 && name !== undefined && method === 'DELETE') {
      if (!rem.applied.some((r) => r.metadata.name === name)) {
        reply(404, { code: 'NK_REMEDIATION_RULE_NOT_FOUND', message: `remediationrule "${name}" is not an applied rule` });
      } else {
        rem.applied = rem.applied.filter((r) => r.metadata.name !== name);
        reply(200, { name, deleted: true });
      }
    } else return false;
    return true;
  }
  if (parts[1] !== 'remediations') return false;
  if (parts.length === 2 && method === 'GET') {
    const items = machines
      .map((m) => rem.machines[m.metadata.name] ?? idle(m.metadata.name))
      .filter((r) => r.phase !== 'Idle' || r.faults.some((f) => f.status !== 'Clear'));
    reply(200, { kind: 'RemediationList', status: fleetStatus(rem), items });
    return true;
  }
  const third = parts[2] ?? '';
  if (parts.length === 3 && method === 'POST' && (third === 'pause' || third === 'resume')) {
    rem.status.paused = third === 'pause';
    reply(200, fleetStatus(rem));
    return true;
  }
  if (parts.length === 3 && method === 'POST' && third === 'dry-run') {
    if (!isObject(body) || typeof body['enabled'] !== 'boolean') reply(400, { code: 'NK_HTTP_BAD_REQUEST', message: 'body must be {enabled: boolean}' });
    else {
      rem.status.dryRun = body['enabled'];
      reply(200, fleetStatus(rem));
    }
    return true;
  }
  if (!machines.some((m) => m.metadata.name === third)) {
    reply(404, { code: 'NK_MACHINE_NOT_FOUND', message: `machine "${third}" not found` });
    return true;
  }
  const r = rem.machines[third] ?? idle(third);
  if (parts.length === 3 && method === 'GET') reply(200, r);
  else if (parts.length === 4 && method === 'POST' && (parts[3] === 'pause' || parts[3] === 'resume')) {
    // Idempotent: pausing a paused machine is no conflict.
    rem.machines[third] = { ...r, paused: parts[3] === 'pause' };
    reply(200, rem.machines[third]);
  } else return false;
  return true;
}
