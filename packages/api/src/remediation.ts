/**
 * Remediation (`/v1/remediations`, `/v1/remediationrules`): each machine's repair story,
 * the fleet-wide switches (pause, dry run, storm guard, concurrency) and the rules.
 * The coordinator owns the policy (remediation/); the rule body is validated there
 * against its fault catalogue (remediation/rules.ts).
 */
import { Type, type Static } from '@sinclair/typebox';
import { ApiVersionField, Condition, ListOf, Nullable, Time } from './meta.ts';
import { FaultObject } from './machine.ts';
import { DrainSpecSchema, ObjectName } from './rollout.ts';

export const REMEDIATION_PHASES = ['Idle', 'Running', 'NeedsHuman'] as const;

/** Fault types, in the order remediation prefers them (the runtime first: kubelet needs it). */
export const FAULT_TYPES = [
  'RuntimeNotReady',
  'FrequentRuntimeRestart',
  'KubeletNotRunning',
  'KubeletUnhealthy',
  'FrequentKubeletRestart',
  'NetworkNotReady',
  'DiskPressure',
  'AgentSilent',
] as const;
export type FaultType = (typeof FAULT_TYPES)[number];

/** The steps a rule's ladder may take (docs/remediation.md). */
export const LADDER_ACTIONS = ['RestartService', 'RestoreConfig', 'ReinstallPackage', 'Reboot', 'CordonAndNotify'] as const;
export type LadderAction = (typeof LADDER_ACTIONS)[number];

const TARGET = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9@._-]*$' });

const RuleStepInput = Type.Object(
  {
    action: Type.Union(LADDER_ACTIONS.map((a) => Type.Literal(a))),
    /** A unit (RestartService) or a package (RestoreConfig, ReinstallPackage); defaults from the fault. */
    target: Type.Optional(TARGET),
    timeoutSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 3600 })),
    successWithinSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 6 * 3600 })),
  },
  { additionalProperties: false },
);

/**
 * A RemediationRule as applied (`PUT /v1/remediationrules/{name}`, `nkctl apply -f`): the
 * server validates with this schema, then remediation/rules.ts with the rules a schema
 * cannot say; unset spec fields take RULE_DEFAULTS.
 */
export const RemediationRuleInput = Type.Object(
  {
    apiVersion: ApiVersionField,
    kind: Type.Literal('RemediationRule'),
    metadata: Type.Object({ name: ObjectName }, { additionalProperties: true }),
    spec: Type.Object(
      {
        fault: Type.Union(FAULT_TYPES.map((f) => Type.Literal(f))),
        forSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 24 * 3600 })),
        ladder: Type.Array(RuleStepInput, { minItems: 1, maxItems: 8 }),
        maxAttemptsPerMachine: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
        /** The window maxAttemptsPerMachine counts ladders in. */
        attemptWindowSeconds: Type.Optional(Type.Integer({ minimum: 60, maximum: 30 * 24 * 3600 })),
        cooldownSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 7 * 24 * 3600 })),
        dryRun: Type.Optional(Type.Boolean()),
        /**
         * How the node is drained before a ReinstallPackage step of a disruptive package (and
         * a Reboot): kubectl drain's rules; absent fields are kubectl's defaults.
         */
        drain: Type.Optional(DrainSpecSchema),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: true },
);
export type RemediationRuleInput = Static<typeof RemediationRuleInput>;
export type RemediationPhaseName = (typeof REMEDIATION_PHASES)[number];

/** One line of a machine's remediation story. */
export const HistoryObject = Type.Object({ at: Nullable(Time), rule: Type.String(), step: Type.Integer(), action: Type.String(), result: Type.String() });
export type HistoryObject = Static<typeof HistoryObject>;

export const StormObject = Type.Object({ active: Type.Boolean(), reason: Type.String(), message: Type.String(), since: Nullable(Time) });
export type StormObject = Static<typeof StormObject>;

/** The fleet-wide state: `RemediationList.status`, and the answer of pause/resume/dry-run. */
export const RemediationFleetStatus = Type.Object({
  paused: Type.Boolean(),
  dryRun: Type.Boolean(),
  storm: StormObject,
  inFlight: Type.Integer({ minimum: 0 }),
  maxConcurrent: Type.Integer({ minimum: 0 }),
});
export type RemediationFleetStatus = Static<typeof RemediationFleetStatus>;

export const Remediation = Type.Object({
  kind: Type.Literal('Remediation'),
  machine: Type.String(),
  phase: Type.Union(REMEDIATION_PHASES.map((p) => Type.Literal(p))),
  reason: Type.String(),
  message: Type.String(),
  since: Nullable(Time),
  rule: Nullable(Type.String()),
  /** Index into the rule's ladder (0 is the first step). */
  step: Nullable(Type.Integer()),
  action: Nullable(Type.String()),
  commandId: Nullable(Type.String()),
  /** Ladders started on the machine within the rule's attempt window. */
  attempts: Type.Integer({ minimum: 0 }),
  cooldownUntil: Nullable(Time),
  cordoned: Type.Boolean(),
  paused: Type.Boolean(),
  faults: Type.Array(FaultObject),
  history: Type.Array(HistoryObject),
});
export type Remediation = Static<typeof Remediation>;

export const RemediationList = Type.Composite([ListOf('RemediationList', Remediation), Type.Object({ status: RemediationFleetStatus })]);
export type RemediationList = Static<typeof RemediationList>;

export const RemediationRuleStep = Type.Object({
  action: Type.String(),
  target: Type.Optional(Nullable(Type.String())),
  timeoutSeconds: Type.Optional(Type.Integer()),
  successWithinSeconds: Type.Optional(Type.Integer()),
});
export type RemediationRuleStep = Static<typeof RemediationRuleStep>;

/** Defaults of the fields a RemediationRule's spec leaves out. */
export const RULE_DEFAULTS = Object.freeze({ forSeconds: 60, maxAttemptsPerMachine: 3, attemptWindowSeconds: 24 * 3600, cooldownSeconds: 600, dryRun: false });

/** A RemediationRule as applied (or built in); unset spec fields take RULE_DEFAULTS. */
export const RemediationRule = Type.Object({
  apiVersion: ApiVersionField,
  kind: Type.Literal('RemediationRule'),
  metadata: Type.Object({ name: Type.String(), creationTimestamp: Type.Optional(Time), uid: Type.Optional(Type.String()), generation: Type.Optional(Type.Integer()), resourceVersion: Type.Optional(Type.String()) }),
  spec: Type.Object({
    fault: Type.String(),
    forSeconds: Type.Optional(Type.Integer()),
    ladder: Type.Array(RemediationRuleStep),
    maxAttemptsPerMachine: Type.Optional(Type.Integer()),
    attemptWindowSeconds: Type.Optional(Type.Integer()),
    cooldownSeconds: Type.Optional(Type.Integer()),
    dryRun: Type.Optional(Type.Boolean()),
    drain: Type.Optional(Type.Object({ force: Type.Optional(Type.Boolean()), deleteEmptyDirData: Type.Optional(Type.Boolean()), timeoutSeconds: Type.Optional(Type.Integer()), gracePeriodSeconds: Type.Optional(Type.Integer()) })),
  }),
  status: Type.Optional(Type.Object({
    source: Type.Union([Type.Literal('default'), Type.Literal('applied')]),
    observedGeneration: Type.Optional(Type.Integer()),
    conditions: Type.Optional(Type.Array(Condition)),
  })),
});
export type RemediationRule = Static<typeof RemediationRule>;

export const RemediationRuleList = ListOf('RemediationRuleList', RemediationRule);
export type RemediationRuleList = Static<typeof RemediationRuleList>;
