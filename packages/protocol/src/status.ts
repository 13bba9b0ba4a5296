/**
 * What an agent observes on its node: the typed results of its probes. These shapes
 * are shared by the wire protocol, the coordinator's store and nkctl's output.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { MAX_LABELS, MAX_NAME, MAX_SHORT, MAX_TEXT } from './limits.ts';

const Short = (opts: object = {}) => Type.String({ maxLength: MAX_SHORT, ...opts });
const Text = () => Type.String({ maxLength: MAX_TEXT });
const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

/** ISO-8601 timestamp on the agent's clock: informational only, never compared with ours. */
export const Timestamp = Type.String({ maxLength: 40, pattern: '^\\d{4}-\\d{2}-\\d{2}T' });

export const Health = Type.Union([
  Type.Literal('healthy'),
  Type.Literal('unhealthy'),
  Type.Literal('unknown'),
]);
export type Health = Static<typeof Health>;

/**
 * A version as found on the node. `raw` is kept verbatim (`Kubernetes v1.31.2`,
 * `1.6.20~ds1`); `semver` is its best semver reading, or null when it has none.
 */
export const VersionInfo = Type.Object(
  {
    raw: Short(),
    semver: Nullable(Short()),
    /** Where the version came from: binary, cri, dpkg, nodekeeper, config, ... */
    source: Short(),
  },
  { additionalProperties: false },
);
export type VersionInfo = Static<typeof VersionInfo>;

/** Fields every probe result carries. */
const ProbeFields = {
  health: Health,
  /** CamelCase machine-readable reason, e.g. `HealthzRefused`, `NoNetworkConfig`. */
  reason: Short(),
  message: Text(),
  version: Nullable(VersionInfo),
  observedAt: Timestamp,
};

/** State of a service as the node's service manager sees it (systemd or none). */
export const ServiceState = Type.Object(
  {
    unit: Short(),
    manager: Type.Union([Type.Literal('systemd'), Type.Literal('none')]),
    activeState: Nullable(Short()),
    subState: Nullable(Short()),
    restarts: Nullable(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
);
export type ServiceState = Static<typeof ServiceState>;

export const KubeletStatus = Type.Object(
  { ...ProbeFields, service: Nullable(ServiceState) },
  { additionalProperties: false },
);
export type KubeletStatus = Static<typeof KubeletStatus>;

/** One CRI RuntimeCondition (RuntimeReady, NetworkReady). */
export const RuntimeCondition = Type.Object(
  { type: Short(), status: Type.Boolean(), reason: Short(), message: Text() },
  { additionalProperties: false },
);
export type RuntimeCondition = Static<typeof RuntimeCondition>;

export const RuntimeStatus = Type.Object(
  {
    ...ProbeFields,
    /** `containerd`, from CRI Version.runtime_name. */
    runtimeName: Nullable(Short()),
    /** CRI API version the runtime speaks, e.g. `v1`. */
    runtimeApiVersion: Nullable(Short()),
    conditions: Type.Array(RuntimeCondition, { maxItems: 16 }),
    service: Nullable(ServiceState),
  },
  { additionalProperties: false },
);
export type RuntimeStatus = Static<typeof RuntimeStatus>;

export const CniPlugin = Type.Object(
  {
    type: Short(),
    /** Absolute path of the binary found, or null when no bin dir has it. */
    binary: Nullable(Short()),
    /** CNI spec versions the plugin says it supports (CNI_COMMAND=VERSION). */
    supportedVersions: Type.Array(Short(), { maxItems: 32 }),
    version: Nullable(VersionInfo),
  },
  { additionalProperties: false },
);
export type CniPlugin = Static<typeof CniPlugin>;

export const CniStatus = Type.Object(
  {
    ...ProbeFields,
    /** The config file chosen the way containerd chooses it, or null when none is valid. */
    configFile: Nullable(Short()),
    networkName: Nullable(Short()),
    cniVersion: Nullable(Short()),
    plugins: Type.Array(CniPlugin, { maxItems: 64 }),
  },
  { additionalProperties: false },
);
export type CniStatus = Static<typeof CniStatus>;

export const Pressure = Type.Object(
  { disk: Type.Boolean(), memory: Type.Boolean(), pid: Type.Boolean() },
  { additionalProperties: false },
);

export const DiskUsage = Type.Object(
  {
    path: Short(),
    totalBytes: Type.Number({ minimum: 0 }),
    usedBytes: Type.Number({ minimum: 0 }),
    /** Percent used, 0-100. */
    usedPercent: Type.Number({ minimum: 0, maximum: 100 }),
  },
  { additionalProperties: false },
);

export const RebootRequired = Type.Object(
  { required: Type.Boolean(), reasons: Type.Array(Short(), { maxItems: 8 }) },
  { additionalProperties: false },
);

export const HostStatus = Type.Object(
  {
    ...ProbeFields,
    os: Short(),
    kernel: Short(),
    arch: Short(),
    cpus: Type.Integer({ minimum: 0 }),
    memoryTotalBytes: Type.Number({ minimum: 0 }),
    memoryAvailableBytes: Type.Number({ minimum: 0 }),
    uptimeSeconds: Type.Number({ minimum: 0 }),
    disks: Type.Array(DiskUsage, { maxItems: 16 }),
    pressure: Pressure,
    // Boot and kernel facts (issue 12). Optional: older agents leave them out, which means unknown.
    /** The running boot's id (/proc/sys/kernel/random/boot_id): a reboot changes it. */
    bootId: Type.Optional(Nullable(Type.String({ minLength: 8, maxLength: 64, pattern: '^[0-9a-f-]+$' }))),
    /** Whether the host wants a reboot, and every reason it knows (the sentinel file, a check command, a newer kernel). */
    reboot: Type.Optional(RebootRequired),
    /** The newest kernel release installed (what a reboot should boot), or null when unknown. */
    newestKernel: Type.Optional(Nullable(Short())),
    /** The watched data dirs (/ and the kubelet's and runtime's) whose mount is read-only. */
    readOnlyMounts: Type.Optional(Type.Array(Short(), { maxItems: 16 })),
  },
  { additionalProperties: false },
);
export type HostStatus = Static<typeof HostStatus>;

/** Identity facts the agent reads on the node (never trusted for authentication). */
export const MachineIdentity = Type.Object(
  {
    machineId: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9-]+$' }),
    hostname: Type.String({ minLength: 1, maxLength: MAX_NAME }),
    addresses: Type.Array(Short(), { maxItems: 32 }),
    zone: Nullable(Short()),
    labels: Type.Record(Type.String({ maxLength: MAX_NAME }), Short(), { maxProperties: MAX_LABELS }),
  },
  { additionalProperties: false },
);
export type MachineIdentity = Static<typeof MachineIdentity>;

/** The full picture an agent reports. Deltas carry any subset of these sections. */
export const NodeReport = Type.Object(
  {
    identity: MachineIdentity,
    kubelet: KubeletStatus,
    runtime: RuntimeStatus,
    cni: CniStatus,
    host: HostStatus,
  },
  { additionalProperties: false },
);
export type NodeReport = Static<typeof NodeReport>;
export const NodeReportDelta = Type.Partial(NodeReport, { additionalProperties: false });
export type NodeReportDelta = Static<typeof NodeReportDelta>;

export const REPORT_SECTIONS = ['identity', 'kubelet', 'runtime', 'cni', 'host'] as const;
export type ReportSection = (typeof REPORT_SECTIONS)[number];
