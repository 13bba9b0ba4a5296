/**
 * Every NK_ code the agent raises, with its meaning in one line. Owner of the codes of
 * the agent: enrollment, commands, installs, repairs, its own upgrade.
 * docs/errors.md says what happens with each; test/error-catalog.test.ts reads this
 * catalogue and holds it, the docs and the sources together (a code is in one
 * catalogue only, the one of the package that owns it; codes are never reused).
 */
export const AGENT_CODES = {
  // Agent
  NK_AGENT_MACHINE_ID_MISSING: '`<host root>/etc/machine-id` does not exist',
  NK_AGENT_MACHINE_ID_INVALID: 'machine-id is empty or not 32 lower-case hex characters (machine-id(5))',
  NK_AGENT_MACHINE_ID_UNREADABLE: 'machine-id exists but cannot be read',
  NK_AGENT_NOT_ENROLLED: 'no credential in the state dir and no bootstrap token given',
  NK_AGENT_STATE_CORRUPT: 'the state dir\'s credential file does not hold a credential, or its `machine.key` is not an ed25519 private key',
  NK_AGENT_COORDINATOR_UNREACHABLE: 'the coordinator could not be reached for CA discovery or enrollment',
  NK_AGENT_CA_DISCOVERY_FAILED: 'the coordinator did not serve a valid CA certificate',
  NK_AGENT_CA_PIN_MISMATCH: 'the served CA does not match `--discovery-ca-hash`, or the server\'s certificate was not issued by it; nothing is trusted',
  NK_AGENT_ENROLLMENT_FAILED: 'enrollment failed without a code of the coordinator\'s (e.g. a non-JSON answer)',
  NK_AGENT_PROBE_FAILED: '`probe.now` could not run the probes (answered as the command\'s result)',
  NK_AGENT_COMMAND_UNSUPPORTED: 'the agent received a command kind it does not implement (command result)',
  NK_AGENT_UPGRADE_REVERTED: 'the agent\'s own upgrade did not confirm in time (the new version crashed at start, crash-looped, or never reconnected and reported within `healthTimeoutMs`), so the node switched back to the previous version by itself; answered by the old agent as the `package.install` result (`outcome: rolled-back`, `failedStep: health`), with the guard\'s reason',
  NK_AGENT_UPGRADE_NOT_IN_LAYOUT: 'an install of `nodekeeper-agent` reached an agent that does not run from the package layout (`current` does not name the version it runs: run from the sources, or a hand-made install); nothing was switched',
  NK_AGENT_UPGRADE_NEEDS_SYSTEMD: 'an install of `nodekeeper-agent` reached an agent not running under systemd (service manager `supervisor`): nothing would start the new version after it exits, and no guard would switch back a bad one; nothing was switched',
  // Agent installs
  NK_INSTALL_BAD_PARAMS: 'params do not match InstallParams, `package` differs from `manifest.name`, a binary package lacks `binaryName`, or the command id is unusable',
  NK_INSTALL_BUSY: 'another install of the same package is running',
  NK_INSTALL_DOWNLOAD_FAILED: 'the artifact is unreachable, refused, answered an HTTP error, failed TLS, or is plain http without `--insecure`',
  NK_INSTALL_DOWNLOAD_TIMEOUT: 'the download missed its deadline or stalled past the idle limit',
  NK_INSTALL_TOO_LARGE: 'more bytes were sent or announced than the artifact\'s size',
  NK_INSTALL_TRUNCATED: 'the body ended before the declared size',
  NK_INSTALL_DIGEST_MISMATCH: 'the sha256 differs from the command\'s',
  NK_INSTALL_SIGNATURE_INVALID: 'the signature verifies against none of the trusted keys over the install statement (package, version, sha256, size, manifest): a changed manifest, another version, or a signature over the bare digest; checked before the download and again before an unpacked version is reused; for a `package.rollback`, its manifest differs from the one verified when the version was installed',
  NK_INSTALL_UNSIGNED: 'trusted keys are configured and the artifact is unsigned',
  NK_INSTALL_LINK_PARENT_UNSAFE: 'a directory above a link path is a symlink (or not a directory); nothing is created or linked through it',
  NK_INSTALL_ADOPT_NOT_ALLOWED: 'a first install found a file at a link path that this package may not adopt (only the built-in packages adopt their own binaries); nothing was moved',
  NK_INSTALL_ARCHIVE_UNSAFE: 'the archive holds an absolute or `..` name, a symlink or hard link out of the tree, a device file, a fifo, or a setuid/setgid mode; nothing was unpacked',
  NK_INSTALL_ARCHIVE_TOO_LARGE: 'the archive unpacks to more than the agent\'s bound (2 GiB, 10,000 entries): a gzip bomb',
  NK_INSTALL_DOWNGRADE_REFUSED: '`package.install` of a lower version than the active one, on an agent without `--allow-downgrade` (a `package.rollback` goes back)',
  NK_INSTALL_VERSION_TAMPERED: '`package.rollback`: the unpacked version to return to changed on disk since it was staged (its content hash differs); nothing was changed, reinstall it with `package.install`',
  NK_INSTALL_JOURNAL_CORRUPT: 'the command\'s install journal record was unreadable at start; it was moved to `journal/quarantine/` and the install not recovered (check the package); the other journals were recovered',
  NK_INSTALL_STAGE_FAILED: 'unpacking or adoption failed, or a link target is missing from the artifact',
  NK_INSTALL_LINK_CONFLICT: 'a link path holds a file or directory nodekeeper does not manage',
  NK_INSTALL_VERSION_CONFLICT: 'the requested version is active with a different artifact digest',
  NK_INSTALL_SWITCH_FAILED: 'the atomic swap of `current` failed',
  NK_INSTALL_RESTART_FAILED: 'the service manager could not restart the service',
  NK_INSTALL_HEALTH_TIMEOUT: 'not healthy (at the target version, for the kubelet) within `healthTimeoutMs`',
  NK_INSTALL_COMMIT_FAILED: 'recording the installed version failed',
  NK_INSTALL_ROLLBACK_FAILED: 'switching back failed, or the previous version is not healthy',
  NK_INSTALL_NO_PREVIOUS: '`package.rollback` found no earlier version to return to (none recorded, or its directory is gone); nothing was changed',
  NK_INSTALL_INTERRUPTED: 'the agent died before the switch; recovery cleaned up and nothing changed',
  NK_INSTALL_TRUSTED_KEY_INVALID: 'a `--trusted-key` file is unreadable or not an ed25519 PEM public key',
  NK_INSTALL_STATE_FAILED: 'the journal or command store cannot be written or read (a corrupt record that cannot be moved aside included)',
  NK_SERVICE_COMMAND_FAILED: '`systemctl restart` or `stop` failed',
  NK_SERVICE_UNIT_INVALID: 'a supervised unit file is missing or malformed',
  NK_SERVICE_START_FAILED: 'a supervised process could not be started, or exited at once',
  // Agent repairs
  NK_REPAIR_BAD_PARAMS: 'repair params do not match the schema, or contradict themselves (e.g. a group-writable mode)',
  NK_REPAIR_BUSY: 'another repair of the same unit or path, or a reboot, is running on this agent',
  NK_REPAIR_RESTART_FAILED: 'the service manager could not restart the unit',
  NK_REPAIR_UNHEALTHY: 'the repair was done, but the probe did not say healthy within the timeout',
  NK_REPAIR_PATH_NOT_ALLOWED: 'a `config.restore` path is outside the allowed directories or passes through a symlink; nothing was written',
  NK_REPAIR_WRITE_FAILED: 'writing the restored config failed (disk, permissions, a directory in the way)',
  NK_REPAIR_REBOOT_NOT_ALLOWED: '`node.reboot` reached an agent started without `--allow-reboot`',
  NK_REPAIR_REBOOT_FAILED: '`systemctl reboot` failed',
  NK_REPAIR_STATE_FAILED: 'the repair log or reboot marker under `<stateDir>/repairs/` could not be read or written',
} as const satisfies Readonly<Record<`NK_${string}`, string>>;
export type AgentCode = keyof typeof AGENT_CODES;
