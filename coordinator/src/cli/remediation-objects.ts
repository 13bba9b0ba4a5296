/**
 * The remediation objects of the API as nkctl reads them (docs/nkctl.md, "API"): each
 * machine's Remediation, the fleet's RemediationList with its status (pause, dry run,
 * storm guard, concurrency), RemediationRule objects, and the summary a Machine carries.
 * The coordinator owns the policy; nkctl renders it and asks for pause, resume, dry run.
 */
import type { MachineObject } from '../api/objects.ts';

export type FaultStatusName = 'Clear' | 'Pending' | 'Active' | 'Clearing';

/** One fault condition of a machine, as the API shows it. */
export interface FaultObject {
  readonly type: string;
  readonly status: FaultStatusName | string;
  readonly reason: string;
  readonly message: string;
  readonly since: string | null;
}

/** One line of a machine's remediation story. */
export interface HistoryObject {
  readonly at: string;
  readonly rule: string;
  readonly step: number;
  readonly action: string;
  readonly result: string;
}

export interface StormObject {
  readonly active: boolean;
  readonly reason: string;
  readonly message: string;
  readonly since: string | null;
}

/** The fleet-wide state: `RemediationList.status`, and the answer of pause/resume/dry-run. */
export interface RemediationFleetStatus {
  readonly paused: boolean;
  readonly dryRun: boolean;
  readonly storm: StormObject;
  readonly inFlight: number;
  readonly maxConcurrent: number;
}

export interface RemediationObject {
  readonly kind: 'Remediation';
  readonly machine: string;
  readonly phase: 'Idle' | 'Running' | 'NeedsHuman' | string;
  readonly reason: string;
  readonly message: string;
  readonly since: string | null;
  readonly rule: string | null;
  /** Index into the rule's ladder (0 is the first step). */
  readonly step: number | null;
  readonly action: string | null;
  readonly commandId: string | null;
  /** Ladders started on the machine within the rule's attempt window. */
  readonly attempts: number;
  readonly cooldownUntil: string | null;
  readonly cordoned: boolean;
  readonly paused: boolean;
  readonly faults: readonly FaultObject[];
  readonly history: readonly HistoryObject[];
}

export interface RemediationList {
  readonly kind: 'RemediationList';
  readonly status: RemediationFleetStatus;
  readonly items: RemediationObject[];
}

export interface RemediationRuleStep {
  readonly action: string;
  readonly target?: string | null;
  readonly timeoutSeconds?: number;
  readonly successWithinSeconds?: number;
}

/** A RemediationRule as stored; unset spec fields take the coordinator's defaults. */
export interface RemediationRuleObject {
  readonly apiVersion: string;
  readonly kind: 'RemediationRule';
  readonly metadata: { readonly name: string; readonly creationTimestamp?: string };
  readonly spec: {
    readonly fault: string;
    readonly forSeconds?: number;
    readonly ladder: readonly RemediationRuleStep[];
    readonly maxAttemptsPerMachine?: number;
    readonly attemptWindowSeconds?: number;
    readonly cooldownSeconds?: number;
    readonly dryRun?: boolean;
  };
  readonly status?: { readonly source: 'default' | 'applied' | string };
}

export interface RemediationRuleList {
  readonly kind: 'RemediationRuleList';
  readonly items: RemediationRuleObject[];
}

/** What `Machine.status` carries about remediation (absent on coordinators without it). */
export interface MachineRemediationSummary {
  readonly phase: string;
  readonly reason: string;
  readonly rule: string | null;
  readonly step: number | null;
  readonly cordoned: boolean;
}

/** A Machine with the remediation fields it gained in issue 4. */
export type MachineWithRemediation = MachineObject & {
  readonly status: MachineObject['status'] & {
    readonly remediation?: MachineRemediationSummary;
    readonly faults?: readonly FaultObject[];
  };
};

/** The remediation summary and non-Clear faults of a machine; absent fields read as quiet. */
export function machineRemediation(m: MachineObject): { remediation: MachineRemediationSummary | null; faults: readonly FaultObject[] } {
  const s = (m as MachineWithRemediation).status;
  return { remediation: s.remediation ?? null, faults: (s.faults ?? []).filter((f) => f.status !== 'Clear') };
}
