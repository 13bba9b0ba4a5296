/**
 * The Machine object (`/v1/machines`): one per worker node, its identity as spec and
 * what its agent and the coordinator observe as status (docs/nkctl.md, "API").
 */
import { Type, type Static } from '@sinclair/typebox';
import { ServiceState } from '@nodekeeper/protocol';
import { ApiVersionField, Condition, Labels, ListOf, Nullable, ObjectMetaFields, Time } from './meta.ts';

export const Health = Type.Union([Type.Literal('healthy'), Type.Literal('unhealthy'), Type.Literal('unknown')]);

/** Liveness judged on the coordinator's clock (fleet/liveness.ts). */
export const LIVENESS_PHASES = ['Pending', 'Ready', 'NotReady', 'Unknown'] as const;
export const LivenessPhase = Type.Union(LIVENESS_PHASES.map((p) => Type.Literal(p)));
export type LivenessPhase = Static<typeof LivenessPhase>;

/** A version as observed: the raw string verbatim, its semver reading where there is one, and where it came from. */
const VersionFieldsProps = {
  /** Raw version string as found on the node, or null when none was found. */
  version: Nullable(Type.String()),
  /** Present only when the raw string has a semver reading. */
  semver: Type.Optional(Type.String()),
  /** Where the version came from (binary, cri, dpkg, nodekeeper, ...); present with `version`. */
  versionSource: Type.Optional(Type.String()),
};
export const VersionFields = Type.Object(VersionFieldsProps);
export type VersionFields = Static<typeof VersionFields>;

const ProbeFieldsProps = {
  health: Health,
  ...VersionFieldsProps,
  reason: Type.String(),
  message: Type.String(),
  /** When the agent ran the probe, on the agent's clock (informational only). */
  observedAt: Type.String(),
};
export const ProbeFields = Type.Object(ProbeFieldsProps);
export type ProbeFields = Static<typeof ProbeFields>;

export const KubeletObjectStatus = Type.Object({ ...ProbeFieldsProps, service: Nullable(ServiceState) });
export type KubeletObjectStatus = Static<typeof KubeletObjectStatus>;

export const ContainerdObjectStatus = Type.Object({
  ...ProbeFieldsProps,
  runtimeName: Nullable(Type.String()),
  runtimeApiVersion: Nullable(Type.String()),
  conditions: Type.Array(Type.Object({ type: Type.String(), status: Type.Boolean(), reason: Type.String(), message: Type.String() })),
  service: Nullable(ServiceState),
});
export type ContainerdObjectStatus = Static<typeof ContainerdObjectStatus>;

export const CniPluginObject = Type.Object({ ...VersionFieldsProps, type: Type.String(), binary: Nullable(Type.String()), supportedVersions: Type.Array(Type.String()) });
export type CniPluginObject = Static<typeof CniPluginObject>;

export const CniObjectStatus = Type.Object({
  ...ProbeFieldsProps,
  configFile: Nullable(Type.String()),
  networkName: Nullable(Type.String()),
  cniVersion: Nullable(Type.String()),
  plugins: Type.Array(CniPluginObject),
});
export type CniObjectStatus = Static<typeof CniObjectStatus>;

export const HostObjectStatus = Type.Object({
  health: Health,
  reason: Type.String(),
  message: Type.String(),
  observedAt: Type.String(),
  os: Type.String(),
  kernel: Type.String(),
  arch: Type.String(),
  cpus: Type.Integer({ minimum: 0 }),
  memory: Type.Object({ totalBytes: Type.Number(), availableBytes: Type.Number() }),
  uptimeSeconds: Type.Number(),
  disks: Type.Array(Type.Object({ path: Type.String(), totalBytes: Type.Number(), usedBytes: Type.Number(), usedPercent: Type.Number() })),
  pressure: Type.Object({ disk: Type.Boolean(), memory: Type.Boolean(), pid: Type.Boolean() }),
  /** Boot and kernel facts (docs/agent-probes.md); absent when the agent does not report them. */
  bootId: Type.Optional(Nullable(Type.String())),
  newestKernel: Type.Optional(Nullable(Type.String())),
  reboot: Type.Optional(Type.Object({ required: Type.Boolean(), reasons: Type.Array(Type.String()) })),
  readOnlyMounts: Type.Optional(Type.Array(Type.String())),
});
export type HostObjectStatus = Static<typeof HostObjectStatus>;

/** One entry of a Machine's `status.packages[]`: each desired package against what runs (as MCO's node annotations). */
export const MachinePackageObject = Type.Object({
  name: Type.String(),
  current: Nullable(Type.String()),
  desired: Type.String(),
  state: Type.Union([Type.Literal('Converged'), Type.Literal('Updating'), Type.Literal('Degraded'), Type.Literal('Pending')]),
  reason: Type.String(),
});
export type MachinePackageObject = Static<typeof MachinePackageObject>;

/** States of a fault condition (remediation/faults.ts). */
export const FaultObject = Type.Object({
  type: Type.String(),
  status: Type.String({ description: 'Clear, Pending, Active or Clearing' }),
  reason: Type.String(),
  message: Type.String(),
  since: Nullable(Time),
});
export type FaultObject = Static<typeof FaultObject>;

/** What `Machine.status` carries about remediation (absent on coordinators without it). */
export const MachineRemediationSummary = Type.Object({
  phase: Type.String(),
  reason: Type.String(),
  rule: Nullable(Type.String()),
  step: Nullable(Type.Integer()),
  cordoned: Type.Boolean(),
});
export type MachineRemediationSummary = Static<typeof MachineRemediationSummary>;

export const MachineStatus = Type.Object({
  /** Connection-level liveness judged on the coordinator's clock. */
  phase: LivenessPhase,
  phaseReason: Type.String(),
  phaseMessage: Type.String(),
  phaseTransitionTime: Time,
  /** Last message of any kind received, or null when none yet. */
  lastSeenTime: Nullable(Time),
  /** When the reported status last changed, or null before the first report. */
  lastReportTime: Nullable(Time),
  agentVersion: Nullable(Type.String()),
  /** The generation the status reflects (pins and labels apply at once, so the current one). */
  observedGeneration: Type.Optional(Type.Integer({ minimum: 0 })),
  conditions: Type.Array(Condition),
  /** The sections below are absent until the agent's first report. */
  kubelet: Type.Optional(KubeletObjectStatus),
  containerd: Type.Optional(ContainerdObjectStatus),
  cni: Type.Optional(CniObjectStatus),
  host: Type.Optional(HostObjectStatus),
  revoked: Type.Optional(Type.Literal(true)),
  revokedTime: Type.Optional(Time),
  /** Each desired package against what runs (convergence/status.ts). */
  packages: Type.Optional(Type.Array(MachinePackageObject)),
  /** The machine's Node in the member cluster, when the coordinator has the member API. */
  node: Type.Optional(Type.Object({ name: Type.String(), ready: Type.Union([Type.Literal('True'), Type.Literal('False'), Type.Literal('Unknown')]), unschedulable: Type.Boolean(), providerID: Nullable(Type.String()) })),
  /** From the remediation controller, when it runs. */
  remediation: Type.Optional(MachineRemediationSummary),
  faults: Type.Optional(Type.Array(FaultObject)),
});
export type MachineStatus = Static<typeof MachineStatus>;

export const Machine = Type.Object({
  apiVersion: ApiVersionField,
  kind: Type.Literal('Machine'),
  metadata: Type.Object({
    name: Type.String(),
    uid: Type.String(),
    creationTimestamp: Time,
    labels: Labels,
    /** Present when the store's metadata is given (store/object-meta.ts). */
    generation: Type.Optional(ObjectMetaFields.generation),
    resourceVersion: Type.Optional(ObjectMetaFields.resourceVersion),
  }),
  spec: Type.Object({
    machineId: Type.String(),
    hostname: Type.String(),
    addresses: Type.Array(Type.String()),
    zone: Nullable(Type.String()),
    labels: Labels,
    /** Package versions pinned on this machine over the ClusterPackageVersion. */
    packages: Type.Optional(Type.Array(Type.Object({ name: Type.String(), version: Type.String() }))),
  }),
  status: MachineStatus,
});
export type Machine = Static<typeof Machine>;

export const MachineList = ListOf('MachineList', Machine);
export type MachineList = Static<typeof MachineList>;

/** `converged`, `updating`, `degraded` or `pending`: the worst of a machine's package states; `-` without any. */
export function machineConverged(packages: readonly { readonly state: string }[]): string {
  if (packages.length === 0) return '-';
  if (packages.some((p) => p.state === 'Degraded')) return 'degraded';
  if (packages.some((p) => p.state === 'Updating')) return 'updating';
  if (packages.some((p) => p.state === 'Pending')) return 'pending';
  return 'converged';
}

/** The remediation summary and non-Clear faults of a machine; absent fields read as quiet. */
export function machineRemediation(m: Machine): { remediation: MachineRemediationSummary | null; faults: readonly FaultObject[] } {
  return { remediation: m.status.remediation ?? null, faults: (m.status.faults ?? []).filter((f) => f.status !== 'Clear') };
}

/** `DELETE /v1/machines/{name}`. */
export const MachineDeleted = Type.Object({ kind: Type.Literal('MachineDeleted'), name: Type.String(), machineId: Type.String(), commands: Type.Integer(), observations: Type.Integer(), forced: Type.Boolean() });
export type MachineDeleted = Static<typeof MachineDeleted>;

/** Answer of cordon, uncordon and drain (`POST /v1/machines/{name}/cordon|uncordon|drain`). */
export const NodeAction = Type.Object({
  kind: Type.Literal('NodeAction'),
  machine: Type.String(),
  result: Type.String(),
  /** Of a drain: `already-cordoned` when an operator's cordon stood before (left as it is). */
  cordoned: Type.Optional(Type.Union([Type.Literal('cordoned'), Type.Literal('already-cordoned')])),
  evicted: Type.Optional(Type.Array(Type.String())),
  skipped: Type.Optional(Type.Array(Type.String())),
  refused: Type.Optional(Type.Array(Type.String())),
});
export type NodeAction = Static<typeof NodeAction>;
