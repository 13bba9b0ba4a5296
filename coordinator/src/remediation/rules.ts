/**
 * RemediationRule objects (`nkctl apply -f`): which fault starts which ladder of steps,
 * with per-machine budgets. Schema, validation with paths, defaults, and the rules
 * shipped by default (docs/remediation.md says why each is what it is).
 */
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { AppError } from '@nodekeeper/common';
import { SERVICE_UNIT } from '@nodekeeper/protocol';
import { API_VERSION, RULE_DEFAULTS, RemediationRuleInput, type LadderAction } from '@nodekeeper/api';
import { drainSpecWithDefaults, type DrainSpec } from '../member/drain-rules.ts';
import type { FaultType } from './faults.ts';

export const RULE_API_VERSION = API_VERSION;

// The schema is the contract's (@nodekeeper/api): what /openapi/v3 documents is what is checked here.
export { LADDER_ACTIONS, type LadderAction, type RemediationRuleInput } from '@nodekeeper/api';
export const RemediationRuleSchema = RemediationRuleInput;

/** One step with its defaults applied. */
export interface LadderStep {
  readonly action: LadderAction;
  /** Unit or package; null for Reboot and CordonAndNotify. */
  readonly target: string | null;
  readonly timeoutSeconds: number;
  readonly successWithinSeconds: number;
}

/** A rule with every default applied: what the policy reads and the store keeps. */
export interface RemediationRule {
  readonly name: string;
  readonly fault: FaultType;
  readonly forSeconds: number;
  readonly ladder: readonly LadderStep[];
  readonly maxAttemptsPerMachine: number;
  readonly attemptWindowSeconds: number;
  readonly cooldownSeconds: number;
  readonly dryRun: boolean;
  /** force and deleteEmptyDirData always set; timeoutSeconds and gracePeriodSeconds only when given. */
  readonly drain: DrainSpec;
}

/** Defaults of fields a rule leaves out: the contract's, so nkctl shows the same. */
export { RULE_DEFAULTS };

/** Per action: the command timeout and the time the fault has to clear after it. */
export const STEP_DEFAULTS: Readonly<Record<LadderAction, { timeoutSeconds: number; successWithinSeconds: number }>> = Object.freeze({
  RestartService: { timeoutSeconds: 60, successWithinSeconds: 180 },
  RestoreConfig: { timeoutSeconds: 60, successWithinSeconds: 180 },
  ReinstallPackage: { timeoutSeconds: 600, successWithinSeconds: 900 },
  Reboot: { timeoutSeconds: 900, successWithinSeconds: 1200 },
  CordonAndNotify: { timeoutSeconds: 60, successWithinSeconds: 60 },
});

/** The unit a fault's RestartService restarts when the step names none. */
const DEFAULT_UNIT: Partial<Record<FaultType, string>> = {
  KubeletNotRunning: 'kubelet.service', KubeletUnhealthy: 'kubelet.service', FrequentKubeletRestart: 'kubelet.service',
  RuntimeNotReady: 'containerd.service', FrequentRuntimeRestart: 'containerd.service', NetworkNotReady: 'containerd.service',
};
/** The package a fault's RestoreConfig / ReinstallPackage acts on when the step names none. */
const DEFAULT_PACKAGE: Partial<Record<FaultType, string>> = {
  KubeletNotRunning: 'kubelet', KubeletUnhealthy: 'kubelet', FrequentKubeletRestart: 'kubelet',
  RuntimeNotReady: 'containerd', FrequentRuntimeRestart: 'containerd', NetworkNotReady: 'cni-plugins',
};

export interface RuleError {
  /** JSON pointer into the object, e.g. `/spec/ladder/1/target`. */
  readonly path: string;
  readonly message: string;
}

export type RuleValidation = { readonly ok: true; readonly rule: RemediationRule } | { readonly ok: false; readonly errors: readonly RuleError[] };

const check = TypeCompiler.Compile(RemediationRuleSchema);

/** Checks a RemediationRule object and applies the defaults; every problem comes with its path. */
export function validateRule(obj: unknown): RuleValidation {
  if (!check.Check(obj)) return { ok: false, errors: [...check.Errors(obj)].slice(0, 20).map((e) => ({ path: e.path === '' ? '/' : e.path, message: e.message })) };
  const s = obj.spec;
  const errors: RuleError[] = [];
  const ladder: LadderStep[] = s.ladder.map((st, i) => {
    const path = `/spec/ladder/${i}`;
    const needsTarget = st.action === 'RestartService' || st.action === 'RestoreConfig' || st.action === 'ReinstallPackage';
    const fallback = st.action === 'RestartService' ? DEFAULT_UNIT[s.fault] : DEFAULT_PACKAGE[s.fault];
    const target = needsTarget ? (st.target ?? fallback ?? null) : null;
    if (needsTarget && target === null) errors.push({ path: `${path}/target`, message: `${st.action} needs a target: fault ${s.fault} has no default one` });
    if (!needsTarget && st.target !== undefined) errors.push({ path: `${path}/target`, message: `${st.action} takes no target` });
    // Only services: restarting reboot.target or poweroff.target would reboot round the agent's --allow-reboot.
    if (st.action === 'RestartService' && target !== null && !SERVICE_UNIT.test(target)) errors.push({ path: `${path}/target`, message: `RestartService restarts a *.service unit, not ${JSON.stringify(target)}` });
    if (st.action === 'CordonAndNotify' && i !== s.ladder.length - 1) errors.push({ path: `${path}/action`, message: 'CordonAndNotify ends the ladder: it must be the last step' });
    // A silent agent cannot receive a command: only a human can act on AgentSilent.
    if (s.fault === 'AgentSilent' && st.action !== 'CordonAndNotify') errors.push({ path: `${path}/action`, message: 'an AgentSilent machine cannot receive commands: only CordonAndNotify applies' });
    const d = STEP_DEFAULTS[st.action];
    return { action: st.action, target, timeoutSeconds: st.timeoutSeconds ?? d.timeoutSeconds, successWithinSeconds: st.successWithinSeconds ?? d.successWithinSeconds };
  });
  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    rule: {
      name: obj.metadata.name,
      fault: s.fault,
      forSeconds: s.forSeconds ?? RULE_DEFAULTS.forSeconds,
      ladder,
      maxAttemptsPerMachine: s.maxAttemptsPerMachine ?? RULE_DEFAULTS.maxAttemptsPerMachine,
      attemptWindowSeconds: s.attemptWindowSeconds ?? RULE_DEFAULTS.attemptWindowSeconds,
      cooldownSeconds: s.cooldownSeconds ?? RULE_DEFAULTS.cooldownSeconds,
      dryRun: s.dryRun ?? RULE_DEFAULTS.dryRun,
      drain: drainSpecWithDefaults(s.drain),
    },
  };
}

/** Like validateRule, but throws NK_REMEDIATION_RULE_INVALID listing every problem (HTTP 400). */
export function parseRule(obj: unknown): RemediationRule {
  const r = validateRule(obj);
  if (r.ok) return r.rule;
  throw new AppError('NK_REMEDIATION_RULE_INVALID', `invalid RemediationRule: ${r.errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`, { context: { errors: r.errors } });
}

/**
 * Checks a set of rules together: names unique, at most one rule per fault (two ladders
 * for one fault would race for the same machine). Throws NK_REMEDIATION_RULE_INVALID.
 */
export function checkRuleSet(rules: readonly RemediationRule[]): void {
  const names = new Set<string>();
  const faults = new Map<FaultType, string>();
  const errors: RuleError[] = [];
  rules.forEach((r, i) => {
    if (names.has(r.name)) errors.push({ path: `/${i}/metadata/name`, message: `rule "${r.name}" is defined twice` });
    const other = faults.get(r.fault);
    if (other !== undefined) errors.push({ path: `/${i}/spec/fault`, message: `fault ${r.fault} already has rule "${other}"` });
    names.add(r.name);
    faults.set(r.fault, r.name);
  });
  if (errors.length > 0) throw new AppError('NK_REMEDIATION_RULE_INVALID', `invalid RemediationRule set: ${errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`, { context: { errors } });
}

const rule = (name: string, fault: FaultType, ladder: readonly LadderAction[], extra: Record<string, unknown> = {}): RemediationRuleInput => ({
  apiVersion: RULE_API_VERSION,
  kind: 'RemediationRule',
  metadata: { name },
  spec: { fault, ladder: ladder.map((action) => ({ action })), ...extra },
});

/**
 * The rules shipped by default, as objects an operator can `nkctl get -o yaml`, edit and
 * apply. No default ladder reboots (a reboot drains everything on the node; an operator
 * adds it where the workloads allow). Crash loops skip the restart: the service manager
 * is already restarting the service, one more restart tells nothing. DiskPressure and
 * AgentSilent ship no rule: nodekeeper cannot free a disk safely, and a silent agent
 * can receive nothing (and many at once is a partition, not a node fault).
 */
export const DEFAULT_RULE_OBJECTS: readonly RemediationRuleInput[] = Object.freeze([
  rule('kubelet-not-running', 'KubeletNotRunning', ['RestartService', 'ReinstallPackage', 'CordonAndNotify']),
  rule('kubelet-unhealthy', 'KubeletUnhealthy', ['RestartService', 'ReinstallPackage', 'CordonAndNotify']),
  rule('kubelet-crash-loop', 'FrequentKubeletRestart', ['ReinstallPackage', 'CordonAndNotify'], { forSeconds: 0 }),
  rule('runtime-not-ready', 'RuntimeNotReady', ['RestartService', 'ReinstallPackage', 'CordonAndNotify']),
  rule('runtime-crash-loop', 'FrequentRuntimeRestart', ['ReinstallPackage', 'CordonAndNotify'], { forSeconds: 0 }),
  rule('network-not-ready', 'NetworkNotReady', ['RestoreConfig', 'ReinstallPackage', 'CordonAndNotify']),
]);

/** The default rules, validated (a broken default is a bug: it throws). */
export function defaultRules(): RemediationRule[] {
  const rules = DEFAULT_RULE_OBJECTS.map(parseRule);
  checkRuleSet(rules);
  return rules;
}
