/**
 * The Rollout object (`/v1/rollouts`): the spec an operator writes (these schemas are
 * what the server validates with, rollout/spec.ts adds the rules a schema cannot say and
 * the defaults), and the object the API serves: the stored spec, defaults applied, and
 * a status built from the planner's persisted state (docs/rollouts.md).
 */
import { Type, type Static } from '@sinclair/typebox';
import { PackageName, PackageVersion } from '@nodekeeper/protocol';
import { ApiVersionField, Condition, ListOf, Nullable, ObjectMetaFields, Time } from './meta.ts';

/** Phases of a rollout. */
export const ROLLOUT_PHASES = ['Pending', 'Canary', 'Soaking', 'Progressing', 'Paused', 'Completed', 'RollingBack', 'RolledBack', 'Failed'] as const;
export type RolloutPhase = (typeof ROLLOUT_PHASES)[number];
/** Phases a rollout never leaves by itself; `status -w` stops at these and at Paused. */
export const TERMINAL_ROLLOUT_PHASES: ReadonlySet<string> = new Set<RolloutPhase>(['Completed', 'RolledBack', 'Failed']);

/** Phases of one machine within a rollout. */
export const ROLLOUT_MACHINE_PHASES = ['Waiting', 'Installing', 'Soaking', 'Succeeded', 'Failed', 'RollingBack', 'RolledBack', 'Skipped'] as const;
export type RolloutMachinePhase = (typeof ROLLOUT_MACHINE_PHASES)[number];

/** The transitions an operator can ask for: `POST /v1/rollouts/{name}/{action}`. */
export const ROLLOUT_ACTIONS = ['pause', 'resume', 'abort', 'rollback'] as const;
export type RolloutAction = (typeof ROLLOUT_ACTIONS)[number];

/** An absolute number, or a percent written `"10%"` (Kubernetes' IntOrString). */
export const IntOrPercent = Type.Union([Type.Integer({ minimum: 0 }), Type.String({ pattern: '^[0-9]{1,3}%$' })]);
export type IntOrPercent = Static<typeof IntOrPercent>;

const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'] as const;
// maxLength says what the pattern already does; it bounds the host CRD's CEL cost.
const HHMM = Type.String({ maxLength: 5, pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$' });
/** An object name (DNS subdomain). */
export const ObjectName = Type.String({ minLength: 1, maxLength: 253, pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$' });

export const WindowSchema = Type.Object(
  {
    days: Type.Optional(Type.Array(Type.Union(DAYS.map((d) => Type.Literal(d))), { minItems: 1, maxItems: 7 })),
    start: HHMM,
    end: HHMM,
    /** An IANA time zone (`Europe/Berlin`); default UTC. Checked against the runtime's tz database. */
    timeZone: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  },
  { additionalProperties: false },
);

/** The strategy fields (also the ClusterPackageVersion's updateStrategy; host CRDs are generated from both). */
export const StrategySchema = Type.Object(
  {
    canary: Type.Optional(Type.Object({ count: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000 })), percent: Type.Optional(Type.Integer({ minimum: 0, maximum: 100 })) }, { additionalProperties: false })),
    soakSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 7 * 24 * 3600 })),
    batches: Type.Optional(Type.Array(Type.Integer({ minimum: 1, maximum: 100 }), { minItems: 1, maxItems: 100 })),
    batchSize: Type.Optional(Type.Integer({ minimum: 1 })),
    maxUnavailable: Type.Optional(IntOrPercent),
    maxFailures: Type.Optional(IntOrPercent),
    onFailure: Type.Optional(Type.Union([Type.Literal('Pause'), Type.Literal('Rollback')])),
    maxPerZone: Type.Optional(Type.Integer({ minimum: 1 })),
    window: Type.Optional(WindowSchema),
  },
  { additionalProperties: false },
);

/**
 * The drain options as a rollout spec, a remediation rule or `POST /v1/machines/{name}/drain`
 * writes them (all optional). timeoutSeconds absent: the coordinator's --drain-timeout;
 * gracePeriodSeconds absent: each pod's own terminationGracePeriodSeconds.
 */
export const DrainSpecSchema = Type.Object(
  {
    force: Type.Optional(Type.Boolean()),
    deleteEmptyDirData: Type.Optional(Type.Boolean()),
    timeoutSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400 })),
    gracePeriodSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 86_400 })),
  },
  { additionalProperties: false },
);
export type DrainSpecInput = Static<typeof DrainSpecSchema>;

/** A Kubernetes label selector in its string form (`app=db,tier!=cache`), as kured's --blocking-pod-selector. */
const LABEL_SELECTOR = Type.String({ minLength: 1, maxLength: 1024, pattern: '^[A-Za-z0-9._/=!,() -]+$' });

/** What the drain before a reboot may do (the shared drain options). */
const RebootDrainSchema = Type.Object(
  {
    force: Type.Optional(Type.Boolean()),
    deleteEmptyDirData: Type.Optional(Type.Boolean()),
    timeoutSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 24 * 3600 })),
    gracePeriodSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 24 * 3600 })),
  },
  { additionalProperties: false },
);

/** A reboot rollout: `spec.reboot` instead of `spec.packages` (docs/kubernetes.md, Reboots). */
export const RebootSchema = Type.Object(
  {
    /** Only machines whose agent reports that a reboot is required (sentinel, kernel, command). */
    onlyRequired: Type.Optional(Type.Boolean()),
    /** Pods matching this selector on a machine's Node hold that machine's reboot. */
    blockingPods: Type.Optional(LABEL_SELECTOR),
    /** Firing alerts hold the rollout; alerts whose alertname matches alertFilter are ignored. */
    prometheus: Type.Optional(Type.Object(
      {
        url: Type.String({ minLength: 1, maxLength: 2048, pattern: '^https?://' }),
        alertFilter: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
      },
      { additionalProperties: false },
    )),
    drain: Type.Optional(RebootDrainSchema),
    /** How long a machine may take to come back on a new boot, Ready (default 900). */
    timeoutSeconds: Type.Optional(Type.Integer({ minimum: 10, maximum: 24 * 3600 })),
  },
  { additionalProperties: false },
);

/** The spec as written: most fields optional. */
export const RolloutSpecInputSchema = Type.Object(
  {
    /** Exactly one of `packages` (an install rollout) and `reboot` (a reboot rollout). */
    packages: Type.Optional(Type.Array(Type.Object({ package: PackageName, version: PackageVersion }, { additionalProperties: false }), { minItems: 1, maxItems: 16 })),
    reboot: Type.Optional(RebootSchema),
    /** Absent: every machine. */
    selector: Type.Optional(Type.Object(
      {
        matchLabels: Type.Optional(Type.Record(Type.String({ minLength: 1, maxLength: 317 }), Type.String({ maxLength: 63 }))),
        names: Type.Optional(Type.Array(ObjectName, { minItems: 1, maxItems: 100_000 })),
      },
      { additionalProperties: false },
    )),
    strategy: Type.Optional(StrategySchema),
    allowDowngrade: Type.Optional(Type.Boolean()),
    /** How disruptive installs drain their node first (kubectl drain's rules; docs/rollouts.md). */
    drain: Type.Optional(DrainSpecSchema),
    /** true holds the rollout as `nkctl rollout pause` does; false (the default) lets it run (docs/declarative.md). */
    paused: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type RolloutSpecInput = Static<typeof RolloutSpecInputSchema>;
export type RolloutStrategyInput = Static<typeof StrategySchema>;

/** The whole object, Kubernetes-style: the body of `POST /v1/rollouts` and `PUT /v1/rollouts/{name}`. */
export const RolloutObjectInputSchema = Type.Object(
  {
    apiVersion: ApiVersionField,
    kind: Type.Literal('Rollout'),
    metadata: Type.Object({ name: ObjectName }, { additionalProperties: true }),
    spec: RolloutSpecInputSchema,
  },
  { additionalProperties: true },
);
export type RolloutObjectInput = Static<typeof RolloutObjectInputSchema>;

/** The stored spec, every default applied (rollout/spec.ts): what the planner reads. */
export const RolloutSpecView = Type.Object({
  /** Empty for a reboot rollout. */
  packages: Type.Array(Type.Object({ package: Type.String(), version: Type.String() })),
  reboot: Type.Optional(Type.Object({
    onlyRequired: Type.Boolean(),
    blockingPods: Nullable(Type.String()),
    prometheus: Nullable(Type.Object({ url: Type.String(), alertFilter: Nullable(Type.String()) })),
    drain: Type.Object({ force: Type.Boolean(), deleteEmptyDirData: Type.Boolean(), timeoutSeconds: Type.Integer(), gracePeriodSeconds: Nullable(Type.Integer()) }),
    timeoutSeconds: Type.Integer(),
  })),
  selector: Type.Object({ matchLabels: Type.Record(Type.String(), Type.String()), names: Type.Optional(Type.Array(Type.String())) }),
  strategy: Type.Object({
    canary: Type.Union([Type.Object({ count: Type.Integer() }), Type.Object({ percent: Type.Integer() })]),
    soakSeconds: Type.Integer(),
    /** Exactly one of `batches` (cumulative percents ending at 100) and `batchSize`. */
    batches: Type.Optional(Type.Array(Type.Integer())),
    batchSize: Type.Optional(Type.Integer()),
    maxUnavailable: IntOrPercent,
    maxFailures: IntOrPercent,
    onFailure: Type.Union([Type.Literal('Pause'), Type.Literal('Rollback')]),
    maxPerZone: Type.Optional(Type.Integer()),
    window: Type.Optional(Type.Object({ days: Type.Optional(Type.Array(Type.String())), start: Type.String(), end: Type.String(), timeZone: Type.String() })),
  }),
  allowDowngrade: Type.Boolean(),
  drain: Type.Object({ force: Type.Boolean(), deleteEmptyDirData: Type.Boolean(), timeoutSeconds: Type.Optional(Type.Integer()), gracePeriodSeconds: Type.Optional(Type.Integer()) }),
  /** Present only when true. */
  paused: Type.Optional(Type.Literal(true)),
});
export type RolloutSpecView = Static<typeof RolloutSpecView>;

export const RolloutCounts = Type.Object({
  total: Type.Integer(),
  waiting: Type.Integer(),
  inProgress: Type.Integer(),
  succeeded: Type.Integer(),
  failed: Type.Integer(),
  rollingBack: Type.Integer(),
  rolledBack: Type.Integer(),
  skipped: Type.Integer(),
});
export type RolloutCounts = Static<typeof RolloutCounts>;

/** One machine's line in a rollout's status. */
export const RolloutMachineStatus = Type.Object({
  name: Type.String(),
  phase: Type.Union(ROLLOUT_MACHINE_PHASES.map((p) => Type.Literal(p))),
  /** `node` on a reboot rollout. */
  package: Nullable(Type.String()),
  fromVersion: Nullable(Type.String()),
  /** `rebooted` on a reboot rollout. */
  toVersion: Nullable(Type.String()),
  /** e.g. `install kubelet 1.31.3`, or null when none runs. */
  step: Nullable(Type.String()),
  /** The install step that failed (download, verify, ..., health), when one did. */
  failedStep: Nullable(Type.String()),
  reason: Type.String(),
  message: Type.String(),
  since: Nullable(Time),
});
export type RolloutMachineStatus = Static<typeof RolloutMachineStatus>;

export const RolloutStatus = Type.Object({
  observedGeneration: Type.Integer({ minimum: 0 }),
  conditions: Type.Array(Condition),
  phase: Type.Union(ROLLOUT_PHASES.map((p) => Type.Literal(p))),
  reason: Type.String(),
  message: Type.String(),
  /** The nkctl command that moves a stopped rollout on, or null. */
  continueWith: Nullable(Type.String()),
  batch: Type.Object({ index: Type.Integer(), total: Type.Integer() }),
  counts: RolloutCounts,
  /** The canary machines. */
  canary: Type.Array(Type.String()),
  machines: Type.Array(RolloutMachineStatus),
  startedTime: Nullable(Time),
  completedTime: Nullable(Time),
  lastTransitionTime: Nullable(Time),
});
export type RolloutStatus = Static<typeof RolloutStatus>;

export const Rollout = Type.Object({
  apiVersion: ApiVersionField,
  kind: Type.Literal('Rollout'),
  metadata: Type.Object({
    name: Type.String(),
    creationTimestamp: Nullable(Time),
    uid: Type.Optional(ObjectMetaFields.uid),
    generation: Type.Optional(ObjectMetaFields.generation),
    resourceVersion: Type.Optional(ObjectMetaFields.resourceVersion),
  }),
  spec: RolloutSpecView,
  status: RolloutStatus,
});
export type Rollout = Static<typeof Rollout>;

export const RolloutList = ListOf('RolloutList', Rollout);
export type RolloutList = Static<typeof RolloutList>;
