/**
 * On-host packages: what a package is (its manifest), where its artifact is and how it
 * is verified, and the `package.install` command with its result. Shared by the
 * coordinator (which sends installs) and the agent (which runs them).
 */
import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { MAX_SHORT, MAX_TEXT } from './limits.ts';

/** A package name: `kubelet`, `containerd`, `cni-plugins`, or any other on-host package. */
export const PackageName = Type.String({ minLength: 1, maxLength: 63, pattern: '^[a-z][a-z0-9-]*$' });

/** A version as published for a package (semver, with a leading v allowed). */
export const PackageVersion = Type.String({ minLength: 1, maxLength: 64, pattern: '^v?[0-9]+\\.[0-9]+\\.[0-9]+([-+~][0-9A-Za-z.~+-]*)?$' });

/** The packages nodekeeper knows how to probe, in the order a rollout changes them. */
export const COMPONENT_ORDER = ['containerd', 'kubelet', 'cni-plugins'] as const;

export const Sha256 = Type.String({ pattern: '^[0-9a-f]{64}$' });

/** Where an artifact is and what it must hash (and, optionally, be signed) to. */
export const ArtifactRef = Type.Object(
  {
    /** https:// URL (coordinator artifact store or external), or http:// on an insecure setup. */
    url: Type.String({ minLength: 1, maxLength: 2048, pattern: '^https?://' }),
    sha256: Sha256,
    /** Size in bytes; downloads larger than this are cut off. */
    size: Type.Integer({ minimum: 1, maximum: 4 * 1024 ** 3 }),
    /**
     * base64 ed25519 signature over the install statement (install-statement.ts: package,
     * version, sha256, size and manifest, canonical JSON), when signed.
     */
    signature: Type.Optional(Type.String({ maxLength: 256, pattern: '^[A-Za-z0-9+/]+={0,2}$' })),
  },
  { additionalProperties: false },
);
export type ArtifactRef = Static<typeof ArtifactRef>;

/** A file or directory on the host that points into the package's active version. */
export const PackageLink = Type.Object(
  {
    /** Host path, e.g. /usr/bin/kubelet or /opt/cni/bin. */
    path: Type.String({ minLength: 2, maxLength: 512, pattern: '^/' }),
    /**
     * Path inside the version directory, e.g. `kubelet`, or `.` for the whole directory.
     * The schema only bounds it; install-policy.ts refuses `..` and what leaves the directory.
     */
    target: Type.String({ minLength: 1, maxLength: 512, pattern: '^[^/]' }),
  },
  { additionalProperties: false },
);

/** How a package installs on a node. */
export const PackageManifest = Type.Object(
  {
    name: PackageName,
    /** `tar.gz`: an archive unpacked into the version dir; `binary`: one file, named `binaryName`. */
    format: Type.Union([Type.Literal('tar.gz'), Type.Literal('binary')]),
    binaryName: Type.Optional(Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._-]+$' })),
    /** May be empty: the agent itself (`nodekeeper-agent`) is run through `current` by its unit, with no link. */
    links: Type.Array(PackageLink, { minItems: 0, maxItems: 64 }),
    /** The service restarted after the switch (a `*.service` unit on the allow-list: install-policy.ts), or null. */
    service: Type.Union([Type.String({ maxLength: MAX_SHORT }), Type.Null()]),
    /**
     * Which probe decides the package is healthy after the switch. `agent`: the agent
     * itself, healthy once the new version has reconnected and sent its first report
     * (agent/src/self-upgrade/), within healthTimeoutMs or the node switches back.
     */
    healthProbe: Type.Union([Type.Literal('kubelet'), Type.Literal('runtime'), Type.Literal('cni'), Type.Literal('none'), Type.Literal('agent')]),
    /** How long the probe may take to say healthy before the install rolls back. */
    healthTimeoutMs: Type.Integer({ minimum: 1000, maximum: 3_600_000 }),
  },
  { additionalProperties: false },
);
export type PackageManifest = Static<typeof PackageManifest>;

/** Params of the `package.install` command (also used to roll back: an install of the old version). */
export const InstallParams = Type.Object(
  {
    package: PackageName,
    version: PackageVersion,
    artifact: ArtifactRef,
    manifest: PackageManifest,
  },
  { additionalProperties: false },
);
export type InstallParams = Static<typeof InstallParams>;

/** The steps of an install, in order; a failure names the step. */
export const INSTALL_STEPS = ['download', 'verify', 'stage', 'switch', 'restart', 'health', 'commit'] as const;
export type InstallStep = (typeof INSTALL_STEPS)[number];

/** The `result` of a `package.install` command. */
export const InstallResult = Type.Object(
  {
    package: PackageName,
    /** The version active on the node now. */
    activeVersion: Type.Union([Type.String({ maxLength: 64 }), Type.Null()]),
    previousVersion: Type.Union([Type.String({ maxLength: 64 }), Type.Null()]),
    outcome: Type.Union([Type.Literal('installed'), Type.Literal('already-installed'), Type.Literal('rolled-back'), Type.Literal('refused')]),
    failedStep: Type.Optional(Type.String({ maxLength: 32 })),
    message: Type.String({ maxLength: MAX_TEXT }),
  },
  { additionalProperties: false },
);
export type InstallResult = Static<typeof InstallResult>;

/** Command kinds the agent understands. */
export const CommandKind = {
  install: 'package.install',
  rollback: 'package.rollback',
  probeNow: 'probe.now',
  /** Repairs (issue 4): params ServiceRestartParams, ConfigRestoreParams, NodeRebootParams; result RepairResult. */
  serviceRestart: 'service.restart',
  configRestore: 'config.restore',
  nodeReboot: 'node.reboot',
} as const;

/**
 * Params of `package.rollback`: switch the package back to the version that was active
 * before its most recent committed install (the agent knows which directory that is,
 * including an adopted one), restart, wait for health. No download.
 */
export const RollbackParams = Type.Object(
  {
    package: PackageName,
    manifest: PackageManifest,
    /** The version the coordinator expects to return to, as the agent last reported it (informational). */
    expectedVersion: Type.Union([Type.String({ maxLength: 256 }), Type.Null()]),
  },
  { additionalProperties: false },
);
export type RollbackParams = Static<typeof RollbackParams>;

const rollbackParamsCheck = TypeCompiler.Compile(RollbackParams);

/** Validates `package.rollback` params (the agent checks them before acting). */
export function checkRollbackParams(value: unknown): { ok: true; params: RollbackParams } | { ok: false; message: string } {
  if (rollbackParamsCheck.Check(value)) return { ok: true, params: value };
  const first = rollbackParamsCheck.Errors(value).First();
  return { ok: false, message: `params${first?.path ?? ''}: ${first?.message ?? 'do not match RollbackParams'}` };
}

const installParamsCheck = TypeCompiler.Compile(InstallParams);

/**
 * Validates a `package.install` command's params against InstallParams: the params, or
 * the first problem (path and message) for the agent's NK_INSTALL_BAD_PARAMS answer.
 */
export function checkInstallParams(value: unknown): { ok: true; params: InstallParams } | { ok: false; message: string } {
  if (installParamsCheck.Check(value)) return { ok: true, params: value };
  const first = installParamsCheck.Errors(value).First();
  return { ok: false, message: `params${first?.path ?? ''}: ${first?.message ?? 'do not match InstallParams'}` };
}

/**
 * A unit the coordinator may have restarted: a `*.service` (systemd and the supervisor
 * adapter accept it). Targets such as `reboot.target` or `poweroff.target` are refused:
 * starting them would reboot the node round the agent's `--allow-reboot`.
 */
export const UnitName = Type.String({ minLength: 9, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9@._-]*\\.service$' });

/** Params of `service.restart`: restart `unit`, then wait up to `timeoutMs` for its probe. */
export const ServiceRestartParams = Type.Object(
  {
    unit: UnitName,
    /** How long the related probe may take to say healthy after the restart (default 60 s). */
    timeoutMs: Type.Optional(Type.Integer({ minimum: 1000, maximum: 600_000 })),
  },
  { additionalProperties: false },
);
export type ServiceRestartParams = Static<typeof ServiceRestartParams>;

/** The largest config file `config.restore` writes (CNI conflists are a few KiB). */
export const MAX_RESTORED_CONFIG_BYTES = 64 * 1024;

/** Params of `config.restore`: write `content` to `path` atomically, then wait for `healthProbe`. */
export const ConfigRestoreParams = Type.Object(
  {
    /** Host path, e.g. /etc/cni/net.d/10-containerd-net.conflist; must be under an allowed config dir. */
    path: Type.String({ minLength: 2, maxLength: 512, pattern: '^/' }),
    /** The whole file (UTF-8), at most 64 KiB. */
    content: Type.String({ maxLength: MAX_RESTORED_CONFIG_BYTES }),
    /** File mode, e.g. 420 (0644); group/other write bits and special bits are refused. */
    mode: Type.Integer({ minimum: 0, maximum: 0o755 }),
    /** Which probe must say healthy afterwards (default none). */
    healthProbe: Type.Optional(Type.Union([Type.Literal('kubelet'), Type.Literal('runtime'), Type.Literal('cni'), Type.Literal('none')])),
    timeoutMs: Type.Optional(Type.Integer({ minimum: 1000, maximum: 600_000 })),
  },
  { additionalProperties: false },
);
export type ConfigRestoreParams = Static<typeof ConfigRestoreParams>;

/** Params of `node.reboot`: why (logged and recorded). Runs only where the agent's own config allows it. */
export const NodeRebootParams = Type.Object({ reason: Type.String({ minLength: 1, maxLength: MAX_SHORT }) }, { additionalProperties: false });
export type NodeRebootParams = Static<typeof NodeRebootParams>;

/** The `result` of a repair command (service.restart, config.restore, node.reboot). */
export const RepairResult = Type.Object(
  {
    /** `healthy`: done and the probe agrees; `unhealthy`: done, the probe does not agree; `refused`: nothing done; `rebooting`. */
    outcome: Type.Union([Type.Literal('healthy'), Type.Literal('unhealthy'), Type.Literal('refused'), Type.Literal('rebooting')]),
    /** The unit restarted or the path written. */
    target: Type.String({ maxLength: 512 }),
    /** The probe that decided (kubelet, runtime, cni, service, none). */
    probe: Type.String({ maxLength: 32 }),
    /** The probe's reason or message, or why nothing was done. */
    message: Type.String({ maxLength: MAX_TEXT }),
  },
  { additionalProperties: false },
);
export type RepairResult = Static<typeof RepairResult>;

type Checked<T> = { ok: true; params: T } | { ok: false; message: string };

function checker<T extends Parameters<typeof TypeCompiler.Compile>[0]>(schema: T, name: string): (value: unknown) => Checked<Static<T>> {
  const c = TypeCompiler.Compile(schema);
  return (value) => {
    if (c.Check(value)) return { ok: true, params: value as Static<T> };
    const first = c.Errors(value).First();
    return { ok: false, message: `params${first?.path ?? ''}: ${first?.message ?? `do not match ${name}`}` };
  };
}

/** Validates `service.restart` params. */
export const checkServiceRestartParams: (value: unknown) => Checked<ServiceRestartParams> = checker(ServiceRestartParams, 'ServiceRestartParams');
/** Validates `config.restore` params (the path's allow-list is the agent's business). */
export const checkConfigRestoreParams: (value: unknown) => Checked<ConfigRestoreParams> = checker(ConfigRestoreParams, 'ConfigRestoreParams');
/** Validates `node.reboot` params. */
export const checkNodeRebootParams: (value: unknown) => Checked<NodeRebootParams> = checker(NodeRebootParams, 'NodeRebootParams');
